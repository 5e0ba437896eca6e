"""End to end: normal mode (local disk) and external volumes under the Mesos containerizer, against
agents configured as real Mesos agents are. The real ``es-framework`` process, real ZooKeeper, the
development master (fake executors) whose agents refuse what a Mesos 1.12 agent with their
``--isolation`` refuses (``es_framework/dev/devcluster/isolation.py``)."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from es_framework.dev.devcluster import DevMaster, FakeExecutorBackend
from es_framework.dev.devcluster.executors import AgentSide, ExecutorRef
from es_framework.dev.devcluster.isolation import DEFAULT_ISOLATION, DOCKER_VOLUME_ISOLATION
from es_framework.dev.zookeeper import ZooKeeperServer
from tests.harness.e2e import Scheduler, agents, new_cluster_name, three_running, wait_for

MESOS_CONTAINERIZER = (
    "--frameworkUseDocker",
    "false",
    "--elasticsearchBinaryUrl",
    "https://artifacts.example.com/elasticsearch-8.15.0.tar.gz",
)
DATA_DIR = "/var/lib/mesos/slave/elasticsearch"
REFUSAL = "Failed to launch container: Volumes in ContainerInfo is not supported"


class RecordingBackend(FakeExecutorBackend):
    """Fake executors that keep the TaskInfo of every launch that reached an executor."""

    def __init__(self) -> None:
        super().__init__()
        self.launched: list[dict[str, Any]] = []

    def launch(self, agent: AgentSide, ref: ExecutorRef, task_info: Mapping[str, Any]) -> None:
        self.launched.append(copy.deepcopy(dict(task_info)))
        super().launch(agent, ref, task_info)


@contextlib.contextmanager
def cluster(isolation: str) -> Iterator[tuple[DevMaster, RecordingBackend]]:
    """Four agents with this ``--isolation``."""
    specs = [dataclasses.replace(a, isolation=isolation) for a in agents(4)]
    backend = RecordingBackend()
    dev = DevMaster(specs, backend=backend, heartbeat_interval=1.0, status_update_resend_interval=1.0).start()
    try:
        yield dev, backend
    finally:
        dev.stop()


def env_of(task_info: Mapping[str, Any]) -> dict[str, str]:
    variables = task_info["executor"]["command"]["environment"]["variables"]
    return {v["name"]: v["value"] for v in variables if "value" in v}


def test_normal_mode_runs_three_nodes_on_agents_with_mesos_default_isolation(
    zookeeper: ZooKeeperServer, tmp_path: Path
) -> None:
    """Mesos' default isolation (filesystem/posix) fails any ContainerInfo volume: the nodes run only
    because the executor is given the agent directory itself."""
    cluster_name = new_cluster_name()
    with cluster(DEFAULT_ISOLATION) as (master, backend):
        scheduler = Scheduler(master, zookeeper, cluster_name, tmp_path, driver=None, extra=MESOS_CONTAINERIZER)
        try:
            scheduler.start()
            tasks = wait_for("nodes 1, 2, 3 running", lambda: three_running(master), scheduler)
            assert len({t["agent_id"] for t in tasks.values()}) == 3
            assert len(backend.launched) == 3, "a launch failed before the nodes ran"
            for task_info in backend.launched:
                assert task_info["executor"]["container"] == {"type": "MESOS"}
                assert env_of(task_info)["ELASTICSEARCH_DATA_PATH"] == f"{DATA_DIR}/elasticsearch/{cluster_name}"
            assert "failed (" not in scheduler.log()
        finally:
            scheduler.stop()


def test_external_volumes_on_the_mesos_containerizer_need_a_docker_volume_agent(
    zookeeper: ZooKeeperServer, tmp_path: Path
) -> None:
    """On Mesos' default isolation the DOCKER_VOLUME launch fails the way a real agent fails it, and the
    scheduler names an agent configuration error, not a volume driver one; agents configured as a
    REX-Ray agent is (filesystem/linux,docker/volume) run the nodes."""
    flags = (*MESOS_CONTAINERIZER, "--externalVolumeMethod", "dockerVolume")
    with cluster(DEFAULT_ISOLATION) as (master, backend):
        scheduler = Scheduler(master, zookeeper, new_cluster_name(), tmp_path / "posix", extra=flags)
        (tmp_path / "posix").mkdir()
        try:
            scheduler.start()
            wait_for(
                "a launch refused by the agent",
                lambda: f"failed (agent_config): {REFUSAL}" in scheduler.log(),
                scheduler,
            )
            assert backend.launched == [] and three_running(master) is None
            assert "failed (volume)" not in scheduler.log()
        finally:
            scheduler.stop()
    with cluster(DOCKER_VOLUME_ISOLATION) as (master, backend):
        scheduler = Scheduler(master, zookeeper, new_cluster_name(), tmp_path / "linux", extra=flags)
        (tmp_path / "linux").mkdir()
        try:
            scheduler.start()
            wait_for("nodes 1, 2, 3 running", lambda: three_running(master), scheduler)
            sources = [v["source"]["type"] for t in backend.launched for v in t["executor"]["container"]["volumes"]]
            assert sources == ["DOCKER_VOLUME"] * 6
        finally:
            scheduler.stop()
