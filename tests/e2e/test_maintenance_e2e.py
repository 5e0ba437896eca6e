"""End to end: Mesos maintenance with the real ``es-framework`` process, ZooKeeper and the development
master (four agents, fake executors). The operator schedules maintenance for the agent of node 1:
the scheduler declines the inverse offer while node 1 is there, and once node 1 has left (here: its
task failed) it is launched again on another agent: the agent under maintenance is declined. The
master sends no new inverse offer to a framework with nothing left on the agent (as Mesos: inverse
offers go to frameworks with resources there), so the last answer stays DECLINE; the accept is
covered by tests/shell/test_shell_maintenance.py and tests/core/test_engine_maintenance.py."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

from es_framework.dev.devcluster import DevMaster
from es_framework.dev.zookeeper import ZooKeeperServer
from tests.harness.devcluster import request
from tests.harness.e2e import Scheduler, running_tasks, three_running, wait_for


def operator(master: DevMaster, document: dict[str, Any]) -> Any:
    status, _, body = request(
        master.address, "POST", "/api/v1", json.dumps(document).encode(), {"Content-Type": "application/json"}
    )
    assert status == 200, body
    return json.loads(body) if body else None


def answers(master: DevMaster) -> list[str]:
    """Our framework's answers in GET_MAINTENANCE_STATUS (one machine is draining)."""
    status = operator(master, {"type": "GET_MAINTENANCE_STATUS"})["get_maintenance_status"]["status"]
    return [s["status"] for m in status.get("draining_machines", []) for s in m.get("statuses", [])]


def metrics(scheduler: Scheduler) -> str:
    with urllib.request.urlopen(f"{scheduler.api}/metrics", timeout=5) as answer:
        return str(answer.read().decode())


def test_the_inverse_offer_is_declined_while_our_node_is_there_and_nothing_new_lands_there(
    master: DevMaster, zookeeper: ZooKeeperServer, scheduler: Scheduler
) -> None:
    scheduler.start()
    tasks = wait_for("nodes 1, 2, 3 running", lambda: three_running(master), scheduler)
    agent = tasks[1]["agent_id"]
    machine = {"hostname": agent.removesuffix("-S0") + ".example.com", "ip": "127.0.0.1"}
    window = {"start": {"nanoseconds": time.time_ns()}, "duration": {"nanoseconds": 3_600_000_000_000}}
    operator(
        master,
        {
            "type": "UPDATE_MAINTENANCE_SCHEDULE",
            "update_maintenance_schedule": {
                "schedule": {"windows": [{"machine_ids": [machine], "unavailability": window}]}
            },
        },
    )
    wait_for("the inverse offer declined", lambda: answers(master) == ["DECLINE"], scheduler)
    assert f"maintenance of agent {agent}" in scheduler.log()
    assert f"node 1 (task {tasks[1]['task_id']}) still on agent {agent}" in scheduler.log()

    master.fail_task(tasks[1]["task_id"], message="Elasticsearch exited with code 1")
    # Node 1 is launched again elsewhere: the agent under maintenance is offered and declined.
    moved = wait_for(
        "node 1 running again",
        lambda: (r := running_tasks(master)).get(1, {}).get("task_id") not in (None, tasks[1]["task_id"]) and r,
        scheduler,
    )
    assert moved[1]["agent_id"] != agent
    wait_for("an offer declined under maintenance", lambda: 'reason="maintenance"' in metrics(scheduler), scheduler)
    time.sleep(2)  # a few offer rounds: nothing of ours lands on the agent under maintenance
    assert all(t["agent_id"] != agent for t in running_tasks(master).values())
