"""End to end: a hundred nodes at once, and ``es-framework teardown [--purge]``. The real
``es-framework`` process, real ZooKeeper, the development master (fake executors)."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient

from es_framework.dev.devcluster import DevMaster
from es_framework.dev.zookeeper import ZooKeeperServer
from identity import node_id_from_task_id
from tests.harness.e2e import FW, Scheduler, dev_master, new_cluster_name, stored_state, three_running, wait_for

NODES = 100


@pytest.fixture(params=[100, 104], ids=lambda n: f"{n}agents")
def big_master(request: pytest.FixtureRequest) -> Iterator[DevMaster]:
    with dev_master(request.param) as dev:
        yield dev


def test_a_hundred_nodes_at_once(big_master: DevMaster, zookeeper: ZooKeeperServer, tmp_path: Path) -> None:
    spare_agents = len(big_master.state()["agents"]) - NODES
    scheduler = Scheduler(big_master, zookeeper, new_cluster_name(), tmp_path, nodes=NODES)
    started = time.monotonic()
    try:
        scheduler.start()

        def all_running() -> bool:
            tasks = big_master.state()["tasks"]
            return len(tasks) >= NODES and all(t["state"] == "TASK_RUNNING" for t in tasks)

        wait_for(f"{NODES} nodes running", all_running, scheduler, timeout=30)
        wait_for(
            "offers suppressed",
            lambda: all(f["suppressed"] for f in big_master.state()["frameworks"]),
            scheduler,
            timeout=10,
        )
        elapsed = time.monotonic() - started
        tasks = big_master.state()["tasks"]
        ids = sorted(node_id_from_task_id(t["task_id"], FW) for t in tasks)
        assert ids == list(range(1, NODES + 1)), "node ids are not exactly 1..100, once each"
        assert len({t["agent_id"] for t in tasks}) == NODES, "two nodes on one agent"

        def stored_running() -> dict[str, Any] | None:
            document = stored_state(zookeeper, scheduler.cluster)
            return document if all(n["state"] == "TASK_RUNNING" for n in document["nodes"]) else None

        stored = wait_for("every stored node RUNNING", stored_running, scheduler, timeout=20)
        assert sorted(n["node_id"] for n in stored["nodes"]) == ids
        assert {n["task_id"] for n in stored["nodes"]} == {t["task_id"] for t in tasks}
        # The offers of spare agents are declined with a long filter, then offers are suppressed.
        log = scheduler.log()
        assert f"suppressing offers: all {NODES} node(s) placed" in log
        assert log.count("declined for 300s: cluster_full") >= spare_agents
        assert elapsed < 30, f"{NODES} nodes took {elapsed:.1f}s"
        offers_after = len(big_master.events(event_type="OFFERS"))
        time.sleep(2)  # two allocation rounds: nothing is offered to a suppressed framework
        assert len(big_master.events(event_type="OFFERS")) == offers_after
    finally:
        scheduler.stop()


def test_teardown_kills_the_nodes_keeps_the_volumes_and_fences_the_state(
    master: DevMaster, zookeeper: ZooKeeperServer, scheduler: Scheduler
) -> None:
    scheduler.start()
    wait_for("nodes 1, 2, 3 running", lambda: three_running(master), scheduler)
    (framework_id,) = (f["id"] for f in master.state()["frameworks"])
    assert scheduler.signal(signal.SIGTERM) == 0

    result = scheduler.run("teardown")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"framework {framework_id} torn down" in out
    volumes = ", ".join(f"{FW}{n}config, {FW}{n}data" for n in (1, 2, 3))
    assert f"volumes kept (not deleted): {volumes}" in out
    assert "nodes killed: node 1 (task" in out
    wait_for("the framework removed", lambda: framework_id in master.state()["removed_frameworks"], scheduler)
    assert not master.state()["tasks"], "tasks survived the teardown"
    torn_down_at = stored_state(zookeeper, scheduler.cluster)["torn_down_at"]
    assert isinstance(torn_down_at, float)

    # A scheduler on the torn-down state refuses to start, and registers nothing.
    scheduler.start()
    assert scheduler.wait(timeout=20) == 2
    assert "was torn down" in scheduler.log() and "--purge" in scheduler.log()
    assert not master.state()["frameworks"]

    # A second teardown is harmless; --purge deletes the state.
    client = KazooClient(hosts=zookeeper.hosts)
    client.start(timeout=10)
    try:
        root = f"/{FW}/{scheduler.cluster}"
        assert client.exists(f"{root}/cluster") is not None and len(client.get_children(f"{root}/nodes")) == 3
        again = scheduler.run("teardown", "--purge")
        assert again.returncode == 0, again.stderr
        assert "already marked torn down" in again.stdout and "deleted (--purge)" in again.stdout
        # Every znode of the state goes: the cluster znode, the node znodes and their parent, and the
        # ``state`` tombstone; only the lock recipe's parent may stay.
        for path in ("cluster", "nodes", "state"):
            assert client.exists(f"{root}/{path}") is None, path
        assert set(client.get_children(root)) <= {"leader"}
    finally:
        client.stop()
        client.close()

    # After the purge a scheduler starts a new framework; nodes 1, 2, 3 come back (same volume names).
    scheduler.start()
    wait_for("nodes 1, 2, 3 running again", lambda: three_running(master), scheduler)
    assert {f["id"] for f in master.state()["frameworks"]} != {framework_id}
