"""End to end, the hard cases: the scheduler crashing between its state write and its ACCEPT (and
after the ACCEPT), a pymesos callback that raises, two schedulers on one state, and ZooKeeper down
for 20 s. The real ``es-framework`` process, real ZooKeeper, the development master (fake executors).

After each, :func:`assert_consistent` checks the identity invariants on both sides: nodes 1, 2, 3
run, each id is held by exactly one live task, the master runs no task of ours that the stored
state does not account for, and the stored state names exactly the running tasks."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from es_framework.dev.devcluster import DevMaster
from es_framework.dev.scheduler import TEST_CRASH_STATUS, TEST_CRASH_VAR, TEST_RAISE_VAR
from es_framework.dev.zookeeper import ZooKeeperServer
from identity import node_id_from_task_id
from tests.harness.e2e import FW, Scheduler, new_cluster_name, stored_state, three_running, wait_for, wait_replaced

TERMINAL = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST", "TASK_DROPPED", "TASK_GONE"}


def consistent(master: DevMaster, zookeeper: ZooKeeperServer, scheduler: Scheduler) -> str | None:
    """``None`` when the invariants hold, else what is wrong (polled until it holds)."""
    state = master.state()
    if len(state["frameworks"]) != 1:
        return f"{len(state['frameworks'])} frameworks"
    live = [t for t in state["tasks"] if t["state"] not in TERMINAL]
    by_node: dict[int, list[str]] = {}
    for task in live:
        by_node.setdefault(node_id_from_task_id(task["task_id"], FW), []).append(task["task_id"])
    if sorted(by_node) != [1, 2, 3] or any(len(ids) != 1 for ids in by_node.values()):
        return f"live tasks by node: {by_node}"
    if any(t["state"] != "TASK_RUNNING" for t in live):
        return f"not all running: {[(t['task_id'], t['state']) for t in live]}"
    document = stored_state(zookeeper, scheduler.cluster)
    stored = {n["node_id"]: n for n in document["nodes"]}
    if sorted(stored) != [1, 2, 3]:
        return f"stored nodes {sorted(stored)}"
    for node_id, (task_id,) in by_node.items():
        if stored[node_id]["task_id"] != task_id or stored[node_id]["state"] != "TASK_RUNNING":
            return f"node {node_id}: stored {stored[node_id]['task_id']} {stored[node_id]['state']}, master {task_id}"
    known = {n["task_id"] for n in document["nodes"]}
    leaked = {t["task_id"] for t in live} - known
    if leaked:
        return f"tasks the state does not account for: {leaked}"
    return None


def assert_consistent(master: DevMaster, zookeeper: ZooKeeperServer, scheduler: Scheduler) -> None:
    problems: list[str | None] = []

    def check() -> bool:
        problems.append(consistent(master, zookeeper, scheduler))
        return problems[-1] is None

    wait_for("a consistent cluster (last problem shown below)", check, scheduler, timeout=30)


@pytest.mark.parametrize("point", ["after_launch_write", "after_accept"])
def test_a_crash_around_the_accept_leaks_no_id_and_duplicates_no_node(
    point: str, master: DevMaster, zookeeper: ZooKeeperServer, scheduler: Scheduler
) -> None:
    scheduler.start(hooks={TEST_CRASH_VAR: point})
    assert scheduler.wait(timeout=30) == TEST_CRASH_STATUS, scheduler.log()
    assert "TEST HOOKS ARMED" in scheduler.log() and f"test hook {TEST_CRASH_VAR}={point}" in scheduler.log()
    document = stored_state(zookeeper, scheduler.cluster)
    launching = {n["task_id"] for n in document["nodes"] if n["state"] == "LAUNCHING"}
    assert launching, "the crash came before any launch was recorded"
    tasks = {t["task_id"] for t in master.state()["tasks"]}
    if point == "after_launch_write":
        assert not tasks, "an ACCEPT went out before the crash"
    else:
        assert len(tasks) == 1 and tasks <= launching

    scheduler.start()
    assert_consistent(master, zookeeper, scheduler)
    if point == "after_launch_write":
        assert "the launch never reached Mesos" in scheduler.log()
    if point == "after_accept":
        # The task the master took is kept (adopted by reconciliation), not replaced.
        (accepted,) = tasks
        assert accepted in {t["task_id"] for t in master.state()["tasks"] if t["state"] == "TASK_RUNNING"}
    # Ids recorded but never launched were freed and reused, not leaked: still exactly 1, 2, 3.
    assert sorted(n["node_id"] for n in stored_state(zookeeper, scheduler.cluster)["nodes"]) == [1, 2, 3]


@pytest.mark.parametrize("callback", ["statusUpdate", "resourceOffers"])
def test_a_callback_that_raises_does_not_tear_the_framework_down(
    callback: str, master: DevMaster, zookeeper: ZooKeeperServer, scheduler: Scheduler
) -> None:
    scheduler.start(hooks={TEST_RAISE_VAR: callback})
    wait_for("nodes 1, 2, 3 running", lambda: three_running(master), scheduler)
    assert f"test hook {TEST_RAISE_VAR}={callback}: raising inside the callback" in scheduler.log()
    assert f"the {callback} callback failed" in scheduler.log()
    assert_consistent(master, zookeeper, scheduler)
    (framework,) = master.state()["frameworks"]
    assert framework["connected"] and not master.state()["removed_frameworks"]
    assert scheduler.process is not None and scheduler.process.poll() is None


def test_two_schedulers_on_one_state_only_the_leader_acts(
    master: DevMaster, zookeeper: ZooKeeperServer, tmp_path: Path
) -> None:
    cluster = new_cluster_name()
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    first = Scheduler(master, zookeeper, cluster, tmp_path / "first")
    second = Scheduler(master, zookeeper, cluster, tmp_path / "second")
    try:
        first.start()
        tasks = wait_for("nodes 1, 2, 3 running", lambda: three_running(master), first)
        (framework_id,) = (f["id"] for f in master.state()["frameworks"])
        second.start()
        wait_for("the second scheduler waiting", lambda: "waiting to lead" in second.log(), second)
        time.sleep(2)
        assert "leading cluster" not in second.log()
        assert len(master.state()["frameworks"]) == 1

        task_ids = {t["task_id"] for t in master.state()["tasks"]}
        first.signal(signal.SIGKILL)
        wait_for("the second scheduler leading", lambda: "leading cluster" in second.log(), second, timeout=20)
        wait_for(
            "the second scheduler registered as the same framework",
            lambda: (
                f"registered as {framework_id}" in second.log()
                and all(f["connected"] for f in master.state()["frameworks"])
            ),
            second,
        )
        time.sleep(3)  # reconciliation and a few offer rounds
        assert {f["id"] for f in master.state()["frameworks"]} == {framework_id}
        assert {t["task_id"] for t in master.state()["tasks"]} == task_ids, "the new leader launched a task"
        assert {n: t["task_id"] for n, t in (three_running(master) or {}).items()} == {
            n: t["task_id"] for n, t in tasks.items()
        }
        assert_consistent(master, zookeeper, second)
    finally:
        first.stop()
        second.stop()


def test_while_zookeeper_is_down_nothing_is_launched_or_freed(
    master: DevMaster, zookeeper: ZooKeeperServer, scheduler: Scheduler
) -> None:
    scheduler.start()
    tasks = wait_for("nodes 1, 2, 3 running", lambda: three_running(master), scheduler)
    old_task_2 = tasks[2]["task_id"]
    outage_s = 20.0
    with zookeeper.outage(outage_s):
        wait_for("leadership suspended", lambda: "-> suspended" in scheduler.log(), scheduler, timeout=10)
        master.fail_task(old_task_2, message="Elasticsearch exited with code 1")
        deadline = time.monotonic() + outage_s - 3
        while time.monotonic() < deadline:
            node_2: list[dict[str, Any]] = [
                t for t in master.state()["tasks"] if node_id_from_task_id(t["task_id"], FW) == 2
            ]
            assert [t["task_id"] for t in node_2] == [old_task_2], "node 2 relaunched while ZooKeeper was down"
            # The FAILED update stays unacknowledged, so the master keeps re-sending it.
            assert node_2[0]["unacknowledged"], "the FAILED update was acknowledged while ZooKeeper was down"
            time.sleep(0.3)
        assert "left unacknowledged: state store not available" in scheduler.log()
    back = wait_replaced(master, scheduler, 2, old_task_2, timeout=30)
    assert back[1]["task_id"] == tasks[1]["task_id"] and back[3]["task_id"] == tasks[3]["task_id"]
    assert "re-reading state before acting" in scheduler.log()
    assert_consistent(master, zookeeper, scheduler)
