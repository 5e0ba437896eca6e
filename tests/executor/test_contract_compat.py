"""Compatibility with release 0.1.0 (contract 1), from the fixtures in ``tests/fixtures/v0.1.0``.

During an upgrade a new scheduler meets executors and task definitions of the previous release, and
reads its state document: (i) this executor runs a task definition 0.1.0's scheduler built;
(ii) 0.1.0's executor, as a real process, runs a node this release's scheduler launches, and its
reports and the new seed-hosts messages are understood both ways, and it refuses an
``--elasticsearchSecurity auto`` task (contract 3) before it starts anything, rather than run the
node without TLS; (iii) 0.1.0's state documents read.
"""

from __future__ import annotations

import base64
import json
import sys
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymesos import MesosSchedulerDriver, Scheduler

from es_framework import contract
from es_framework.config import resolve_config
from es_framework.contract import NodeReport, SeedHosts
from es_framework.core.cluster_view import ClusterView
from es_framework.core.node_state import TaskState
from es_framework.core.node_tls import with_node_tls
from es_framework.core.offers import parse_offer
from es_framework.core.state_document import state_from_json, state_to_json
from es_framework.core.task_builder import build_task_info, task_ports
from es_framework.dev.devcluster import AgentSpec, DevMaster, ProcessExecutorBackend
from es_framework.dev.ports import free_port
from es_framework.executor.node_executor import NodeExecutor
from es_framework.executor.settings import NodeSettings
from identity.task_ids import new_launch_id
from tests.executor.test_executor import RecordingDriver, reported
from tests.harness.demo_nodes import DEMO_COMMAND, get, wait_until

#: Development master intervals short enough for a test (as tests/dev/devcluster uses).
FAST: dict[str, Any] = {
    "heartbeat_interval": 0.5,
    "allocation_interval": 0.05,
    "status_update_resend_interval": 0.3,
    "default_refuse_seconds": 0.3,
    "tick": 0.02,
}
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "v0.1.0"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: Runs the demo node whatever the executor's own PYTHONPATH (0.1.0's executor has the old tree on it).
DEMO_ANYWHERE = f"env PYTHONPATH={PROJECT_ROOT} {DEMO_COMMAND}"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def variables(task: dict[str, Any]) -> dict[str, str]:
    return {v["name"]: v.get("value", "") for v in task["executor"]["command"]["environment"]["variables"]}


# ---------------------------------------------------------------------- (i) 0.1.0's task definition, this executor


def test_the_v010_task_definitions_are_contract_1_and_read_in_full(tmp_path: Path) -> None:
    mesos = fixture("task-info-mesos.json")
    assert contract.ENV_CONTRACT_VERSION not in variables(mesos)
    settings = NodeSettings.from_task(mesos, {"MESOS_SANDBOX": str(tmp_path)})
    assert settings.contract == 1
    # The release before is still driven: dropping contract 1 must be a decision, not an accident.
    assert contract.OLDEST_SUPPORTED_CONTRACT <= settings.contract < contract.CONTRACT_VERSION
    assert (settings.node_id, settings.node_name, settings.cluster_name) == ("1", "elasticsearch1", "compat")
    assert (settings.http_port, settings.transport_port, settings.publish_host) == (31000, 31001, "agent1.example.com")
    assert settings.initial_master_nodes == ("elasticsearch1",) and settings.seed_hosts == ()
    assert settings.roles == ("master", "data", "ingest") and not settings.security_enabled
    assert settings.data_path == tmp_path / "data" and settings.config_path == tmp_path / "config-volume" / "config"

    secured = NodeSettings.from_task(fixture("task-info-docker-security.json"), {"MESOS_SANDBOX": str(tmp_path)})
    assert secured.contract == 1 and secured.security_enabled
    assert secured.elastic_password == "compat-password"  # a VALUE secret in the TaskInfo
    assert secured.certificates == tmp_path / "elastic-certificates.p12"
    assert secured.seed_hosts == ("agent1.example.com:31001", "agent2.example.com:31001")
    assert secured.user_settings == {"indices.memory.index_buffer_size": "20%", "path.repo": ["/backups"]}
    assert str(secured.data_path) == "/usr/share/elasticsearch/data"


def test_this_executor_runs_a_node_from_the_v010_task_definition(tmp_path: Path) -> None:
    # The fixture's ports and hostname are an imaginary agent's: the process environment (which an
    # agent may adapt, and which wins) moves them to this host; everything else is 0.1.0's.
    environ = {
        "MESOS_SANDBOX": str(tmp_path),
        contract.ENV_COMMAND: DEMO_COMMAND,
        contract.ENV_NETWORK_HOST: "127.0.0.1",
        contract.ENV_PUBLISH_HOST: "127.0.0.1",
        contract.ENV_HTTP_PORT: str(free_port()),
        contract.ENV_TRANSPORT_PORT: str(free_port()),
    }
    executor = NodeExecutor(environ)
    driver = RecordingDriver()
    task = fixture("task-info-mesos.json")
    executor.launchTask(driver, task)
    try:
        report = wait_until(lambda: reported(driver), 20, "TASK_RUNNING with a cluster uuid")
        assert report.cluster_uuid and report.node_name == "elasticsearch1"
        assert report.contract == contract.CONTRACT_VERSION  # what the new scheduler learns of its executor
        executor.apply_message(base64.b64encode(SeedHosts(1, ("127.0.0.1:9",)).encode()).decode())
        hosts = tmp_path / "config-volume" / "config" / "unicast_hosts.txt"
        assert hosts.read_text().splitlines()[1:] == ["127.0.0.1:9"]
    finally:
        executor.killTask(driver, task["task_id"])
        assert executor.finished.wait(15)
    assert driver.states()[-1] == "TASK_KILLED"


# ---------------------------------------------------------------------- (ii) this scheduler's task, 0.1.0's executor


class OneNodeScheduler(Scheduler):  # type: ignore[misc]
    """A pymesos scheduler that launches one node built by this release's task_builder and records
    what comes back (the parts of the real scheduler this test needs; pymesos' Scheduler ignores the
    other callbacks)."""

    def __init__(self, flags: dict[str, str] | None = None) -> None:
        self.lock = threading.Lock()
        flags = {"frameworkName": "elasticsearch", "externalVolumeDriver": "rexray", **(flags or {})}
        self.config = resolve_config(flags, {})
        self.task: dict[str, Any] | None = None
        self.updates: list[Any] = []

    def resourceOffers(self, driver: Any, offers: list[Any]) -> None:
        with self.lock:
            if self.task is None and offers:
                offer = offers.pop(0)
                view = ClusterView(desired_nodes=1, initial_master_nodes=("elasticsearch1",))
                task = build_task_info(
                    parse_offer(json.loads(json.dumps(offer))), 1, self.config, view, launch_id=new_launch_id()
                )
                if self.config.creates_ca:
                    # What the scheduler's NodeIssuer (app/node_certificates.py) adds before the ACCEPT.
                    task = with_node_tls(task, **AUTO_MATERIAL)
                self.task = task
                driver.launchTasks(offer.id, [self.task])
        if offers:
            driver.declineOffer([o.id for o in offers], filters={"refuse_seconds": 0.1})

    def statusUpdate(self, driver: Any, status: Any) -> None:
        with self.lock:
            self.updates.append(status)
        driver.acknowledgeStatusUpdate(status)

    def running(self) -> list[Any]:
        with self.lock:
            return [s for s in self.updates if s.state == "TASK_RUNNING"]

    def states(self) -> list[str]:
        with self.lock:
            return [str(s.state) for s in self.updates]


#: An auto node's material (placeholders: the old executor must refuse before it reads any of it).
AUTO_MATERIAL = {
    "certificate_pem": "-----BEGIN CERTIFICATE-----\nnode\n-----END CERTIFICATE-----\n",
    "ca_pem": "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n",
    "key_pem": "-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n",
    "password": "generated-elastic-password",
    "task_token": "the-task-token",
    "credentials_url": "http://127.0.0.1:9/v1/executor/credentials",
}


@pytest.fixture
def old_executor(tmp_path: Path) -> list[str]:
    """The command that runs 0.1.0's executor: its modules, extracted from the fixture, alone on PYTHONPATH."""
    old = tmp_path / "v0.1.0"
    with tarfile.open(FIXTURES / "executor.tar.gz") as archive:
        archive.extractall(old, filter="data")
    assert (old / "es_framework" / "executor.py").is_file()
    return ["env", f"PYTHONPATH={old}", sys.executable, "-m", "es_framework.executor"]


@pytest.fixture
def old_cluster(
    tmp_path: Path, old_executor: list[str], request: pytest.FixtureRequest
) -> Iterator[tuple[ProcessExecutorBackend, Any, Any]]:
    """0.1.0's executor on one development agent, and a scheduler of this release launching one node
    (with the flags of an indirect parameter, if any)."""
    ports = sorted({free_port() for _ in range(4)})
    agent = AgentSpec(id="agent-v010-S0", hostname="127.0.0.1", ports=tuple((p, p) for p in ports), ip="127.0.0.1")
    # What a development agent adds to every executor's environment, not the task definition.
    dev_env = {contract.ENV_COMMAND: DEMO_ANYWHERE, contract.ENV_NETWORK_HOST: "127.0.0.1"}
    backend = ProcessExecutorBackend(tmp_path / "work", commands={"es-mesos-executor": old_executor}, extra_env=dev_env)
    master = DevMaster([agent], backend=backend, **FAST).start()
    scheduler = OneNodeScheduler(getattr(request, "param", None))
    info = {"user": "root", "name": "es-v010-compat", "failover_timeout": 60.0, "checkpoint": True}
    driver = MesosSchedulerDriver(scheduler, info, master.address, use_addict=True, implicit_acknowledgements=False)
    driver.start()
    try:
        yield backend, scheduler, driver
    finally:
        driver.stop()
        driver.join()
        master.stop()


def test_a_v010_executor_runs_a_node_this_scheduler_launches(old_cluster: tuple[Any, Any, Any]) -> None:
    backend, scheduler, driver = old_cluster
    running = wait_until(lambda: [s for s in scheduler.running() if s.get("data")], 40, "TASK_RUNNING with data")
    task = scheduler.task
    assert variables(task)[contract.ENV_CONTRACT_VERSION] == str(contract.CONTRACT_VERSION)

    report = NodeReport.decode_wire(running[-1].data)
    assert report is not None and report.cluster_uuid and report.node_name == "elasticsearch1"
    assert report.contract is None  # 0.1.0's executor does not name its contract: it really ran
    http_port, _ = task_ports(task)
    assert get(f"http://127.0.0.1:{http_port}/")[1]["cluster_uuid"] == report.cluster_uuid

    hosts = backend.volume_dir("elasticsearch1config") / "config" / "unicast_hosts.txt"
    message = SeedHosts(7, ("127.0.0.1:9", "127.0.0.2:9")).encode()
    driver.sendFrameworkMessage(
        task["executor"]["executor_id"], task["agent_id"], base64.b64encode(message).decode("ascii")
    )
    wait_until(
        lambda: hosts.read_text().splitlines()[1:] == ["127.0.0.1:9", "127.0.0.2:9"], 15, "the seed hosts applied"
    )
    driver.killTask(task["task_id"])
    wait_until(lambda: any(s.state == "TASK_KILLED" for s in scheduler.updates), 20, "TASK_KILLED")


@pytest.mark.parametrize("old_cluster", [{"elasticsearchSecurity": "auto"}], indirect=True)
def test_a_v010_executor_refuses_an_auto_task_before_it_starts_anything(old_cluster: tuple[Any, Any, Any]) -> None:
    # contract.py: the scheduler cannot choose its executor's contract, so an executor older than
    # AUTO_SECURITY_CONTRACT must fail an auto task loudly, never start the node without TLS.
    backend, scheduler, _ = old_cluster
    wait_until(lambda: "TASK_FAILED" in scheduler.states(), 30, "TASK_FAILED")
    task = scheduler.task
    env = variables(task)
    assert env[contract.ENV_SECURITY] == contract.SECURITY_AUTO and contract.ENV_TLS_CERTIFICATE in env
    assert contract.executor_contract(env) >= contract.AUTO_SECURITY_CONTRACT > contract.OLDEST_SUPPORTED_CONTRACT
    # Failed before TASK_STARTING: no Elasticsearch was started, with or without TLS (a resent
    # TASK_FAILED may follow the first).
    assert set(scheduler.states()) == {"TASK_FAILED"}
    failed = scheduler.updates[0]
    assert f"{contract.ENV_SECURITY}='auto'" in failed.message
    assert not (backend.volume_dir("elasticsearch1config") / "config" / "elasticsearch.yml").exists()


# ---------------------------------------------------------------------- (iii) 0.1.0's state documents


@pytest.mark.parametrize("name", ["state-bootstrapping.json", "state-formed.json"])
def test_v010_state_documents_read(name: str) -> None:
    document = fixture(name)
    state = state_from_json(document, "elasticsearch")
    assert set(state.nodes) == {1, 2, 3}
    assert state.framework_id == "fw-0.1.0"
    assert state_from_json(state_to_json(state), "elasticsearch") == state
    if name == "state-bootstrapping.json":
        assert state.bootstrap_masters == ("elasticsearch1", "elasticsearch2", "elasticsearch3")
        assert state.cluster_uuid is None
        assert state.nodes[3].state is TaskState.LAUNCHING
    else:
        assert state.bootstrap_masters == () and state.cluster_uuid == "c0mpatClusterUuid00001"
        assert {r.cluster_uuid for r in state.nodes.values() if r.seen_running} == {state.cluster_uuid}
        assert state.nodes[2].outdated and state.nodes[2].stopping == "restart"
        assert state.nodes[3].last_reason == "REASON_EXECUTOR_TERMINATED"
        assert state.pins[3].agent_id == "agent-3-S0"
        assert state.config is not None and state.config_changes[0]["outdated_nodes"] == [1, 2]
