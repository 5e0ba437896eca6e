"""End to end: automatic replacement after permanent failure (``--permanentFailureTimeout``), with the
real ``es-framework`` process, real ZooKeeper and the development master. A node whose agent stops
answering is replaced on another agent with the same id only after the scheduler marked that agent
gone (``--markAgentGoneAfterTimeout``); without the opt-in it stays reserved past the timeout."""

from __future__ import annotations

import time
from pathlib import Path

from es_framework.dev.devcluster import DevMaster
from es_framework.dev.zookeeper import ZooKeeperServer
from tests.harness.e2e import Scheduler, new_cluster_name, running_tasks, three_running, wait_for, wait_replaced

TIMEOUT = ("--permanentFailureTimeout", "5", "--replacementInterval", "1")


def agent_status(master: DevMaster, agent_id: str) -> str:
    return str(next(a for a in master.state()["agents"] if a["id"] == agent_id)["status"])


def test_a_node_unreachable_past_the_timeout_is_replaced_after_its_agent_is_marked_gone(
    master: DevMaster, zookeeper: ZooKeeperServer, tmp_path: Path
) -> None:
    scheduler = Scheduler(
        master, zookeeper, new_cluster_name(), tmp_path, extra=(*TIMEOUT, "--markAgentGoneAfterTimeout", "true")
    )
    try:
        scheduler.start()
        tasks = wait_for("nodes 1, 2, 3 running", lambda: three_running(master), scheduler)
        agent_2 = tasks[2]["agent_id"]
        master.lose_agent(agent_2)
        lost_at = time.monotonic()
        wait_for("node 2 unreachable", lambda: "node 2 stays reserved" in scheduler.log(), scheduler)
        relaunched = wait_replaced(master, scheduler, 2, tasks[2]["task_id"], timeout=60)
        # Not before the timeout, on another agent, with the same id, and only once the agent is gone.
        assert time.monotonic() - lost_at >= 5
        assert relaunched[2]["agent_id"] != agent_2 and relaunched[2]["name"] == tasks[2]["name"]
        assert agent_status(master, agent_2) == "GONE"
        log = scheduler.log()
        assert f"node 2 task {tasks[2]['task_id']}" in log and "marking agent" in log and agent_2 in log
        assert "replaced automatically" in log
        assert log.index("is marked gone in Mesos (fenced)") < log.index("replaced automatically")
    finally:
        scheduler.stop()


def test_without_the_opt_in_a_node_unreachable_past_the_timeout_stays_reserved(
    master: DevMaster, zookeeper: ZooKeeperServer, tmp_path: Path
) -> None:
    scheduler = Scheduler(master, zookeeper, new_cluster_name(), tmp_path, extra=TIMEOUT)
    try:
        scheduler.start()
        tasks = wait_for("nodes 1, 2, 3 running", lambda: three_running(master), scheduler)
        agent_2 = tasks[2]["agent_id"]
        master.lose_agent(agent_2)
        wait_for(
            "the timeout said",
            lambda: "NOT replaced until Mesos reports its task gone" in scheduler.log(),
            scheduler,
            timeout=60,
        )
        time.sleep(6)  # a further monitor round or so: still nothing
        assert agent_status(master, agent_2) == "UNREACHABLE"
        assert 2 not in running_tasks(master) or running_tasks(master)[2]["task_id"] == tasks[2]["task_id"]
        assert "replaced automatically" not in scheduler.log() and "marking agent" not in scheduler.log()
    finally:
        scheduler.stop()
