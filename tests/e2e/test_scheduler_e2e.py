"""End to end: the real ``es-framework`` process, real ZooKeeper, and the development Mesos master
with four agents (fake executors). Each test uses its own cluster name, so state never leaks."""

from __future__ import annotations

import json
import signal
import time
from typing import Any

import requests

from es_framework.core.node_tls import is_auto
from es_framework.dev.devcluster import DevMaster
from es_framework.dev.zookeeper import ZooKeeperServer
from tests.harness.e2e import FW, Scheduler, running_tasks, stored_state, three_running, wait_for, wait_replaced

#: Mesos task states of a task that may still run.
LIVE = frozenset({"TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING"})


def test_three_nodes_on_three_agents_then_replacement_failover_and_a_switch_to_auto(
    master: DevMaster, zookeeper: ZooKeeperServer, scheduler: Scheduler
) -> None:
    scheduler.start()
    tasks = wait_for("nodes 1, 2, 3 running", lambda: three_running(master), scheduler)
    assert len({t["agent_id"] for t in tasks.values()}) == 3
    for node_id, task in tasks.items():
        assert task["name"] == f"{FW}{node_id}"
    framework_ids = {f["id"] for f in master.state()["frameworks"]}
    assert len(framework_ids) == 1
    framework_id = framework_ids.pop()

    # The state in ZooKeeper holds the framework id and each node's task and volumes.
    cluster = scheduler.args[scheduler.args.index("--elasticsearchClusterName") + 1]
    document = json.dumps(stored_state(zookeeper, cluster))
    assert framework_id in document
    for node_id, task in tasks.items():
        assert task["task_id"] in document
        assert f"{FW}{node_id}data" in document and f"{FW}{node_id}config" in document

    # Node 2 fails: its replacement is node 2 again (new task id), nodes 1 and 3 are untouched.
    old_task_2 = tasks[2]["task_id"]
    master.fail_task(old_task_2, message="Elasticsearch exited with code 1")
    replaced = wait_replaced(master, scheduler, 2, old_task_2, timeout=40)
    assert replaced[1]["task_id"] == tasks[1]["task_id"] and replaced[3]["task_id"] == tasks[3]["task_id"]
    assert "node 2" in scheduler.log() and "failed" in scheduler.log()

    # SIGKILL the scheduler and start it again: same framework, no new task, ids unchanged.
    (old_stream,) = [f["stream_id"] for f in master.state()["frameworks"] if f["id"] == framework_id]
    scheduler.signal(signal.SIGKILL)
    before = {n: t["task_id"] for n, t in replaced.items()}
    all_tasks_before = {t["task_id"] for t in master.state()["tasks"]}
    # Started again without --elasticsearchSecurity (the harness gave off): the cluster keeps the off
    # its state records, not a new cluster's default auto, and says so at every start.
    flag = scheduler.args.index("--elasticsearchSecurity")
    del scheduler.args[flag : flag + 2]
    scheduler.start()
    # A new subscription: the master may still count the killed scheduler's stream as connected.
    wait_for(
        "re-registration",
        lambda: any(
            f["connected"] and f["stream_id"] != old_stream
            for f in master.state()["frameworks"]
            if f["id"] == framework_id
        ),
        scheduler,
    )
    time.sleep(3)  # let reconciliation and a few offer rounds pass
    assert {f["id"] for f in master.state()["frameworks"]} == {framework_id}
    after = running_tasks(master)
    assert {n: t["task_id"] for n, t in after.items()} == before
    assert {t["task_id"] for t in master.state()["tasks"]} == all_tasks_before, "a task was launched after failover"
    stored = stored_state(zookeeper, cluster)
    assert stored["security_mode"] == "off" and stored["certificate_authority"] is None
    assert "security stays off for this cluster (the framework state records it)" in scheduler.log()

    # SIGTERM stops the scheduler only: the nodes keep running and the framework is not torn down.
    assert scheduler.signal(signal.SIGTERM) == 0
    time.sleep(2)
    assert {n: t["task_id"] for n, t in running_tasks(master).items()} == before
    assert framework_id not in master.state()["removed_frameworks"]
    assert "nodes keep running" in scheduler.log()

    # Switched to auto only when asked explicitly: a full cluster restart. Every node from before has
    # ended before the first launch, then all three come back on their agents with TLS.
    still_live: list[set[str]] = []  # at each launch: the tasks from before that Mesos still runs
    accepted: list[dict[str, Any]] = []
    handle_call = master.handle_call

    def recording(call: object, stream_id: str | None) -> None:
        if isinstance(call, dict) and call.get("type") == "ACCEPT":
            for operation in (call.get("accept") or {}).get("operations") or []:
                launched = (operation.get("launch") or {}).get("task_infos") or []
                accepted.extend(launched)
                if launched:
                    tasks_now = master.state()["tasks"]
                    still_live.append({t["task_id"] for t in tasks_now if t["state"] in LIVE} & set(before.values()))
        handle_call(call, stream_id)

    master.handle_call = recording  # type: ignore[method-assign]
    # Node 3's agent is unreachable: its task may still run, so it holds the switch until marked gone.
    master.lose_agent(replaced[3]["agent_id"])
    scheduler.args += ["--elasticsearchSecurity", "auto", "--elasticsearchSecuritySwitch", "fullRestart"]
    scheduler.start()
    wait_for(
        "nodes 1, 2 stopped and offers declined for node 3",
        lambda: (
            not {1, 2} & set(running_tasks(master)) and "security_switch: switching security off" in scheduler.log()
        ),
        scheduler,
    )
    assert "FULL CLUSTER RESTART" in scheduler.log()
    assert accepted == [], "a node was launched while node 3 from before the switch may still run"
    master.gone_agent(replaced[3]["agent_id"])
    wait_for(
        "all three nodes relaunched",
        lambda: (t := three_running(master)) and not {x["task_id"] for x in t.values()} & set(before.values()) and t,
        scheduler,
        timeout=60,
    )
    assert len(accepted) == 3 and all(is_auto(task_info) for task_info in accepted)
    assert not any(still_live), f"launched while nodes from before ran: {still_live}"
    stored = stored_state(zookeeper, cluster)
    assert stored["security_mode"] == "auto" and stored["security_switch"] is None
    assert stored["certificate_authority"] is not None
    assert requests.get(scheduler.api + "/v1/cluster/ca.pem", timeout=5).status_code == 200


def test_an_unreachable_node_keeps_its_id_and_comes_back(
    master: DevMaster, zookeeper: ZooKeeperServer, scheduler: Scheduler
) -> None:
    scheduler.start()
    tasks = wait_for("nodes 1, 2, 3 running", lambda: three_running(master), scheduler)
    agent_2 = tasks[2]["agent_id"]
    master.lose_agent(agent_2)
    wait_for(
        "node 2 unreachable in the log",
        lambda: "agent unreachable; node 2 stays reserved" in scheduler.log(),
        scheduler,
    )
    time.sleep(4)  # several offer rounds with a free fourth agent
    launched = {t["task_id"] for t in master.state()["tasks"]}
    assert launched == {t["task_id"] for t in tasks.values()}, "a substitute for node 2 was launched"
    master.return_agent(agent_2)
    back = wait_for("node 2 back", lambda: three_running(master), scheduler)
    assert back[2]["task_id"] == tasks[2]["task_id"]


def test_an_unreachable_node_declared_gone_is_relaunched_elsewhere_with_its_id(
    master: DevMaster, zookeeper: ZooKeeperServer, scheduler: Scheduler
) -> None:
    scheduler.start()
    tasks = wait_for("nodes 1, 2, 3 running", lambda: three_running(master), scheduler)
    agent_2 = tasks[2]["agent_id"]
    master.lose_agent(agent_2)
    wait_for("node 2 unreachable", lambda: "node 2 stays reserved" in scheduler.log(), scheduler)
    master.gone_agent(agent_2)
    relaunched = wait_replaced(master, scheduler, 2, tasks[2]["task_id"], timeout=40)
    assert relaunched[2]["agent_id"] != agent_2
    assert relaunched[2]["name"] == f"{FW}2"
    assert relaunched[1]["task_id"] == tasks[1]["task_id"] and relaunched[3]["task_id"] == tasks[3]["task_id"]


def test_a_node_lost_while_no_scheduler_runs_is_replaced_with_its_id(
    master: DevMaster, zookeeper: ZooKeeperServer, scheduler: Scheduler
) -> None:
    scheduler.start()
    tasks = wait_for("nodes 1, 2, 3 running", lambda: three_running(master), scheduler)
    assert scheduler.signal(signal.SIGTERM) == 0
    master.fail_task(tasks[3]["task_id"], message="Elasticsearch exited with code 137")
    scheduler.start()
    back = wait_replaced(master, scheduler, 3, tasks[3]["task_id"], timeout=40)
    assert back[1]["task_id"] == tasks[1]["task_id"] and back[2]["task_id"] == tasks[2]["task_id"]
    assert back[3]["name"] == f"{FW}3"
