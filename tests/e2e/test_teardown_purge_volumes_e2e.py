"""End to end: ``es-framework teardown --purge-volumes --yes --purge``. The real ``es-framework``
process and ZooKeeper; the development master's agents run the executor as a local process (demo
nodes) and answer ``docker volume rm`` from their stand-in driver, whose volumes are the directories
``<workdir>/volumes/<name>``. Every node must be stopped before the first volume task starts, all
six volumes go, then the framework is torn down and the state deleted."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient

from es_framework.dev.devcluster import DevMaster
from es_framework.dev.zookeeper import ZooKeeperServer
from identity.task_ids import TaskKind, parse_task_id
from tests.harness.demo_agents import demo_agent, demo_cluster
from tests.harness.e2e import FW, Scheduler, new_cluster_name, three_running, wait_for

VOLUMES = {f"{FW}{n}{role}" for n in (1, 2, 3) for role in ("config", "data")}


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return tmp_path / "work"


@pytest.fixture
def process_master(work: Path) -> Iterator[DevMaster]:
    """Four agents that mount external volumes (``filesystem/linux,docker/volume``, as a REX-Ray agent
    is configured), each with two reserved ports for one demo node."""
    with demo_cluster(work, [demo_agent(n) for n in range(1, 5)]) as dev:
        yield dev


def _task_updates(master: DevMaster) -> list[tuple[str, str]]:
    """(task id, state) of every status update the master sent, oldest first."""
    out = []
    for event in master.events(event_type="UPDATE"):
        status = event["update"]["status"]
        out.append((status["task_id"]["value"], status["state"]))
    return out


def is_volume_task_id(task_id: str) -> bool:
    return parse_task_id(task_id, FW).kind is TaskKind.VOLUMES


def _volume_dirs(work: Path) -> set[str]:
    volumes = work / "volumes"
    return {p.name for p in volumes.iterdir()} if volumes.is_dir() else set()


def test_purge_volumes_stops_every_node_then_removes_every_volume_then_tears_down_and_purges(
    process_master: DevMaster, zookeeper: ZooKeeperServer, work: Path, tmp_path: Path
) -> None:
    master = process_master
    scheduler = Scheduler(master, zookeeper, new_cluster_name(), tmp_path, 3)
    try:
        scheduler.start()
        running: dict[int, dict[str, Any]] = wait_for(
            "nodes 1, 2, 3 running", lambda: three_running(master), scheduler, timeout=90
        )
        wait_for("the six volumes", lambda: _volume_dirs(work) >= VOLUMES, scheduler, timeout=30)
        (framework_id,) = (f["id"] for f in master.state()["frameworks"])
        assert scheduler.signal(signal.SIGTERM) == 0
        node_tasks = {t["task_id"] for t in running.values()}

        result = scheduler.run("teardown", "--purge-volumes", "--yes", "--purge")
        assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
        out = result.stdout
        for name in sorted(VOLUMES):
            assert f"       {name}" in out, out  # listed in what is confirmed
        assert "confirmed by --yes" in out
        assert "nodes stopped: node 1 (task" in out and "volumes removed: 3 of 3 node id(s)" in out, out
        assert f"framework {framework_id} torn down" in out
        assert "deleted (--purge)" in out

        # Every node's task ended before the first volume task started.
        updates = _task_updates(master)
        volume_updates = [i for i, (task_id, _) in enumerate(updates) if is_volume_task_id(task_id)]
        node_ends = [
            i for i, (task_id, state) in enumerate(updates) if task_id in node_tasks and state == "TASK_KILLED"
        ]
        assert len(node_ends) >= 3 and volume_updates, updates
        assert max(node_ends) < min(volume_updates), "a volume task ran before every node had stopped"
        finished = {task_id for task_id, state in updates if is_volume_task_id(task_id) and state == "TASK_FINISHED"}
        assert len(finished) == 3, updates  # one removal task per node id, each succeeded

        assert not VOLUMES & _volume_dirs(work), sorted(_volume_dirs(work))
        assert framework_id in master.state()["removed_frameworks"]
        assert not master.state()["tasks"]
        assert "removing volumes elasticsearch1config, elasticsearch1data" in result.stderr
        assert "released by teardown" in result.stderr

        client = KazooClient(hosts=zookeeper.hosts)
        client.start(timeout=10)
        try:
            root = f"/{FW}/{scheduler.cluster}"
            assert client.exists(f"{root}/cluster") is None and client.exists(f"{root}/state") is None
        finally:
            client.stop()
            client.close()
    finally:
        scheduler.stop()
