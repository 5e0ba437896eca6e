"""The development master running real executors: pymesos scheduler → DevMaster → es-mesos-executor
process (pymesos executor driver) → demo Elasticsearch node, volumes stood in for by directories."""

from __future__ import annotations

import base64
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from pymesos import MesosSchedulerDriver

from es_framework.config import resolve_config
from es_framework.core.cluster_view import ClusterView
from es_framework.core.failures import FailureKind, classify_failure
from es_framework.core.node_state import TaskState
from es_framework.core.offers import parse_offer
from es_framework.core.status_updates import StatusUpdate
from es_framework.core.task_builder import build_task_info, task_ports
from es_framework.dev.devcluster import AgentSpec, DevMaster, ProcessExecutorBackend
from es_framework.dev.devcluster.executors import AgentSide, ExecutorRef
from es_framework.dev.devcluster.processes import ProcessRecord, volume_mounts
from es_framework.dev.ports import free_port
from identity.task_ids import new_launch_id
from tests.dev.devcluster.conftest import FAST
from tests.dev.devcluster.test_pymesos import RecordingScheduler
from tests.harness.demo_nodes import DEMO_COMMAND, get
from tests.harness.devcluster import wait_for

CONFIG = resolve_config(
    {"frameworkName": "elasticsearch", "elasticsearchRam": "512", "externalVolumeDriver": "rexray"}, {}
)


class Launcher:
    """Offer policy: launch the queued nodes (node id, extra environment) on the next offers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queue: list[tuple[int, dict[str, str]]] = []
        self.launched: list[dict[str, Any]] = []

    def add(self, node_id: int, **env: str) -> None:
        with self.lock:
            self.queue.append((node_id, env))

    def __call__(self, driver: Any, offers: list[Any]) -> None:
        with self.lock:
            while self.queue and offers:
                node_id, env = self.queue.pop(0)
                offer = offers.pop(0)
                task = build_task_info(
                    parse_offer(json.loads(json.dumps(offer))),
                    node_id,
                    CONFIG,
                    ClusterView(desired_nodes=1),
                    launch_id=new_launch_id(),
                )
                variables = task["executor"]["command"]["environment"]["variables"]
                variables.extend({"name": k, "value": v} for k, v in env.items())
                self.launched.append(task)
                driver.launchTasks(offer.id, [task])
        if offers:
            driver.declineOffer([o.id for o in offers], filters={"refuse_seconds": 0.1})

    def last_task_id(self) -> str:
        with self.lock:
            return str(self.launched[-1]["task_id"]["value"]) if self.launched else ""

    def wait_launch(self, previous: str = "") -> str:
        """The task id of the next launch after ``previous``."""

        def launched() -> str | None:
            task_id = self.last_task_id()
            return task_id if task_id and task_id != previous else None

        return wait_for(launched, what="a launch")


def node_env(command: str = DEMO_COMMAND) -> dict[str, str]:
    return {
        "ELASTICSEARCH_COMMAND": command,
        "ELASTICSEARCH_INITIAL_MASTER_NODES": "elasticsearch1",
        "ELASTICSEARCH_NETWORK_HOST": "127.0.0.1",
    }


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[DevMaster, ProcessExecutorBackend, RecordingScheduler, Launcher, Any]]:
    ports = sorted({free_port() for _ in range(4)})
    assert len(ports) >= 2
    agent = AgentSpec(
        id="agent-p-S0", hostname="127.0.0.1", cpus=4, mem=4096, ports=tuple((p, p) for p in ports), ip="127.0.0.1"
    )
    backend = ProcessExecutorBackend(tmp_path / "work")
    master = DevMaster([agent], backend=backend, **FAST).start()
    launcher = Launcher()
    scheduler = RecordingScheduler(launcher)
    info = {
        "user": "root",
        "name": "es-process-backend-test",
        "failover_timeout": 60.0,
        "checkpoint": True,
        "capabilities": [{"type": "PARTITION_AWARE"}],
    }
    driver = MesosSchedulerDriver(
        scheduler, info, master.address, use_addict=True, implicit_acknowledgements=False, failover=True
    )
    driver.start()
    try:
        wait_for(lambda: scheduler.of("registered"), what="registration")
        yield master, backend, scheduler, launcher, driver
    finally:
        driver.stop(failover=True)
        driver.join()
        master.stop()


def states(scheduler: RecordingScheduler, task_id: str) -> list[str]:
    return [str(s.state) for s in scheduler.statuses(task_id) if s.get("source") == "SOURCE_EXECUTOR"]


def wait_state(scheduler: RecordingScheduler, task_id: str, state: str, timeout: float = 20.0) -> Any:
    return wait_for(
        lambda: next((s for s in scheduler.statuses(task_id) if s.state == state), None),
        timeout=timeout,
        what=f"{state} of {task_id}",
    )


def test_running_after_http_killed_gracefully_and_volume_survives_relaunch(
    cluster: tuple[DevMaster, ProcessExecutorBackend, RecordingScheduler, Launcher, Any],
) -> None:
    master, backend, scheduler, launcher, driver = cluster
    launcher.add(1, **node_env())
    task_id = launcher.wait_launch()
    running = wait_state(scheduler, task_id, "TASK_RUNNING")
    (executor,) = master.state()["executors"]
    assert executor["task_id"] == task_id
    assert executor["subscribed"] is True
    assert executor["pid"] and executor["exit_code"] is None
    assert states(scheduler, task_id)[:2] == ["TASK_STARTING", "TASK_RUNNING"]
    assert running.healthy is True
    http_port, _ = task_ports(launcher.launched[-1])
    status, root = get(f"http://127.0.0.1:{http_port}/")
    assert status == 200
    assert root["name"] == "elasticsearch1"
    assert root["tagline"].startswith("es-mesos demo node")
    cluster_uuid = root["cluster_uuid"]
    assert cluster_uuid != "_na_"

    data = backend.volume_dir("elasticsearch1data")
    assert (data / "node.lock").exists()
    (data / "marker").write_text("written by node 1")
    assert (backend.volume_dir("elasticsearch1config") / "config" / "elasticsearch.yml").exists()
    sandbox = next((backend.workdir / "agents").rglob("es-mesos-executor.log"))
    assert f"node 1 task {task_id}" in sandbox.read_text()

    driver.killTask({"value": task_id})
    killed = wait_state(scheduler, task_id, "TASK_KILLED")
    assert "stopped gracefully (exit code 0)" in killed.message
    wait_for(lambda: not (data / "node.lock").exists() or _unlocked(data / "node.lock"), what="the lock released")

    launcher.add(1, **node_env())
    second = launcher.wait_launch(task_id)
    wait_state(scheduler, second, "TASK_RUNNING")
    http_port, _ = task_ports(launcher.launched[-1])
    assert get(f"http://127.0.0.1:{http_port}/")[1]["cluster_uuid"] == cluster_uuid
    assert (data / "marker").read_text() == "written by node 1"
    assert scheduler.errors == []


def _unlocked(path: Path) -> bool:
    import fcntl

    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def test_bootstrap_check_failure_is_reported_with_its_line(
    cluster: tuple[DevMaster, ProcessExecutorBackend, RecordingScheduler, Launcher, Any],
) -> None:
    _, _, scheduler, launcher, _ = cluster
    launcher.add(1, **node_env(DEMO_COMMAND + " -Edemo.fail_bootstrap_check=true"))
    task_id = launcher.wait_launch()
    failed = wait_state(scheduler, task_id, "TASK_FAILED")
    assert "exited with code 78: bootstrap check failure [1] of [1]: max virtual memory areas" in failed.message
    assert "TASK_RUNNING" not in states(scheduler, task_id)
    update = StatusUpdate(task_id=task_id, state=TaskState.FAILED, message=failed.message)
    assert classify_failure(update) is FailureKind.BOOTSTRAP_CHECK


def test_teardown_shuts_the_executor_and_the_node_down(
    cluster: tuple[DevMaster, ProcessExecutorBackend, RecordingScheduler, Launcher, Any],
) -> None:
    master, backend, scheduler, launcher, _driver = cluster
    launcher.add(1, **node_env())
    task_id = launcher.wait_launch()
    wait_state(scheduler, task_id, "TASK_RUNNING")
    http_port, _ = task_ports(launcher.launched[-1])
    framework_id = master.state()["frameworks"][0]["id"]
    master.handle_call(
        {"type": "TEARDOWN", "framework_id": {"value": framework_id}},
        master.state()["frameworks"][0]["stream_id"],
    )

    def node_gone() -> bool:
        try:
            get(f"http://127.0.0.1:{http_port}/")
        except OSError:
            return True
        return False

    wait_for(node_gone, timeout=20, what="the demo node to stop after SHUTDOWN")
    log = next((backend.workdir / "agents").rglob("es-mesos-executor.log")).read_text()
    assert "shutdown requested by the agent" in log


def test_framework_messages_reach_the_executor_and_rewrite_seed_hosts(
    cluster: tuple[DevMaster, ProcessExecutorBackend, RecordingScheduler, Launcher, Any],
) -> None:
    _, backend, scheduler, launcher, driver = cluster
    launcher.add(1, **node_env())
    task_id = launcher.wait_launch()
    wait_state(scheduler, task_id, "TASK_RUNNING")
    executor_id = launcher.launched[-1]["executor"]["executor_id"]
    hosts = backend.volume_dir("elasticsearch1config") / "config" / "unicast_hosts.txt"
    for version, seeds in ((3, ["10.0.0.3:9300"]), (2, ["stale:1"])):
        data = base64.b64encode(json.dumps({"version": version, "seed_hosts": seeds}).encode()).decode()
        driver.sendFrameworkMessage(executor_id, {"value": "agent-p-S0"}, data)
    wait_for(lambda: hosts.read_text().splitlines()[1:] == ["10.0.0.3:9300"], what="unicast_hosts.txt rewritten")
    log = next((backend.workdir / "agents").rglob("es-mesos-executor.log"))
    wait_for(lambda: "ignoring seed hosts version 2" in log.read_text(), what="the stale version ignored")


def test_an_executor_that_dies_fails_its_task(tmp_path: Path) -> None:
    crash = [sys.executable, "-c", "import sys; sys.stderr.write('executor blew up\\n'); sys.exit(3)"]
    backend = ProcessExecutorBackend(tmp_path / "work", commands={"es-mesos-executor": crash})
    agent = AgentSpec(
        id="agent-c-S0", hostname="127.0.0.1", ports=tuple((p, p) for p in sorted({free_port(), free_port()}))
    )
    with DevMaster([agent], backend=backend, **FAST) as master:
        launcher = Launcher()
        scheduler = RecordingScheduler(launcher)
        info = {
            "user": "root",
            "name": "crash",
            "failover_timeout": 60.0,
            "capabilities": [{"type": "PARTITION_AWARE"}],
        }
        driver = MesosSchedulerDriver(
            scheduler, info, master.address, use_addict=True, implicit_acknowledgements=False, failover=True
        )
        driver.start()
        try:
            launcher.add(1, **node_env())
            task_id = launcher.wait_launch()
            failed = wait_state(scheduler, task_id, "TASK_FAILED")
            assert failed.reason == "REASON_EXECUTOR_TERMINATED"
            assert "exit code 3: executor blew up" in failed.message
        finally:
            driver.stop(failover=True)
            driver.join()


def test_volume_forms_of_every_containerizer_map_to_volume_directories() -> None:
    docker = {
        "executor": {
            "container": {
                "docker": {
                    "parameters": [
                        {"key": "volume-driver", "value": "rexray"},
                        {"key": "volume", "value": "es1config:/var/lib/es-mesos/config"},
                        {"key": "mount", "value": "type=volume,source=es1data,target=/data,volume-driver=rexray"},
                    ]
                }
            }
        }
    }
    assert volume_mounts(docker) == [
        ("volume", "es1config", "/var/lib/es-mesos/config"),
        ("volume", "es1data", "/data"),
    ]
    mesos = {
        "executor": {
            "container": {
                "volumes": [
                    {"container_path": "data", "source": {"type": "DOCKER_VOLUME", "docker_volume": {"name": "d"}}},
                    {"container_path": "data2", "host_path": "/var/lib/x"},
                ]
            },
            "command": {
                "environment": {
                    "variables": [
                        {"name": "DVDI_VOLUME_NAME1", "value": "dv"},
                        {"name": "DVDI_VOLUME_CONTAINERPATH1", "value": "/mnt/dv"},
                    ]
                }
            },
        }
    }
    assert volume_mounts(mesos) == [
        ("volume", "d", "data"),
        ("host", "/var/lib/x", "data2"),
        ("volume", "dv", "/mnt/dv"),
    ]


def test_an_absolute_data_path_is_the_agents_disk_under_the_mesos_containerizer(tmp_path: Path) -> None:
    """Without an image the Mesos containerizer's executor shares the agent's filesystem (normal mode
    passes ``<dataDir>/<framework>/<cluster>`` itself); inside a Docker container the path would vanish
    with the container."""
    backend = ProcessExecutorBackend(tmp_path / "work")
    flags = {"frameworkUseDocker": "false", "elasticsearchBinaryUrl": "https://example.com/es.tar.gz"}
    raw = {
        "id": {"value": "o1"},
        "agent_id": {"value": "agent-p-S0"},
        "hostname": "127.0.0.1",
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 4.0}, "role": "*"},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 4096.0}, "role": "*"},
            {"name": "disk", "type": "SCALAR", "scalar": {"value": 9000.0}, "role": "*"},
            {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 31009}]}, "role": "*"},
        ],
    }
    paths: dict[str, str] = {}
    for use_docker in ("false", "true"):
        config = resolve_config({**flags, "frameworkUseDocker": use_docker}, {})
        task = build_task_info(parse_offer(raw), 1, config, ClusterView(desired_nodes=1), launch_id=new_launch_id())
        ref = ExecutorRef("f1", "agent-p-S0", task["executor"]["executor_id"]["value"])
        record = ProcessRecord(ref, cast(AgentSide, None), task, backend.sandbox_of(ref), 1.0)  # no agent needed
        env = {v["name"]: v["value"] for v in task["executor"]["command"]["environment"]["variables"]}
        paths[use_docker] = backend._volume_env(record, env)["ELASTICSEARCH_DATA_PATH"]
        if use_docker == "false":
            assert not Path(paths["false"]).exists()  # the executor creates it, as on a real agent
    agent_dir = backend.host_path_dir("agent-p-S0", "/var/lib/mesos/slave/elasticsearch/elasticsearch/mesos-ha")
    # The same directory the Docker containerizer's host_path volume of that agent is.
    assert paths == {"false": str(agent_dir), "true": str(agent_dir)}
