"""End to end through the REST API: the real ``es-framework`` process, real ZooKeeper, the development
master with fake executors. Scale up, restart, replace and gone keep node ids and volumes; the desired
count survives a scheduler restart. (Scale-down needs real nodes with shards: test_scaling_e2e.py.)"""

from __future__ import annotations

import signal
import time
from typing import Any

import requests

from es_framework.dev.devcluster import DevMaster
from es_framework.dev.zookeeper import ZooKeeperServer
from es_framework.shell.monitor import INTERVAL_S as MONITOR_INTERVAL_S
from tests.harness.e2e import FW, Scheduler, running_tasks, stored_state, three_running, wait_for, wait_replaced


def get(scheduler: Scheduler, path: str) -> Any:
    response = requests.get(scheduler.api + path, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def post(scheduler: Scheduler, path: str, body: Any = None, method: str = "POST") -> requests.Response:
    return requests.request(method, scheduler.api + path, json=body, timeout=30)


def api_up(scheduler: Scheduler) -> bool:
    try:
        return requests.get(scheduler.api + "/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_api_scale_up_persists_and_restart_replace_keep_ids(
    master: DevMaster, zookeeper: ZooKeeperServer, scheduler: Scheduler
) -> None:
    scheduler.start()
    tasks = wait_for("nodes 1, 2, 3 running", lambda: three_running(master), scheduler)
    wait_for("the API", lambda: api_up(scheduler), scheduler)
    health = get(scheduler, "/health")
    assert health["registered"] is True
    # The API shows the engine's state as of its last finished event: the master may see the tasks
    # run before the engine thread is through the offer cycle that launched them.
    listed = wait_for(
        "the API to list nodes 1, 2, 3",
        lambda: (t := get(scheduler, "/v1/tasks")) and sorted(x["node_id"] for x in t) == [1, 2, 3] and t,
        scheduler,
    )
    assert {t["volumes"]["data"] for t in listed} == {f"{FW}1data", f"{FW}2data", f"{FW}3data"}
    assert get(scheduler, "/v1/cluster")["security_warning"]

    # Bad requests change nothing.
    for bad in ({"value": 0}, {"value": -1}, {"value": "5"}, {"nodes": 5}):
        assert post(scheduler, "/v1/cluster/elasticsearchNodes", bad, "PUT").status_code == 400
    assert get(scheduler, "/v1/cluster/elasticsearchNodes") == {"value": 3}

    # Scale 3 -> 4: the lowest free id launches, and the count survives a scheduler restart.
    assert post(scheduler, "/v1/cluster/elasticsearchNodes", {"value": 4}, "PUT").status_code == 200
    wait_for("node 4 running", lambda: sorted(running_tasks(master)) == [1, 2, 3, 4], scheduler)
    cluster = scheduler.args[scheduler.args.index("--elasticsearchClusterName") + 1]
    assert stored_state(zookeeper, cluster)["desired_nodes"] == 4
    scheduler.signal(signal.SIGTERM)
    scheduler.start()
    wait_for("the API again", lambda: api_up(scheduler), scheduler)
    # The API answers before the new scheduler leads and has subscribed; a command then is a 503.
    wait_for("the scheduler registered again", lambda: get(scheduler, "/v1/cluster")["registered"], scheduler)
    assert get(scheduler, "/v1/cluster/elasticsearchNodes") == {"value": 4}
    assert "stored desired node count 4 wins over --elasticsearchNodes 3" in scheduler.log()
    tasks = running_tasks(master)

    # Restart: same id, same agent, new task. Queued, it never starts: fake executors have no
    # Elasticsearch to say it is safe, and the planner fails closed. Forced, it goes at once.
    assert post(scheduler, "/v1/nodes/2/restart").status_code == 202
    time.sleep(2 * MONITOR_INTERVAL_S)  # two monitor rounds: the planner never admits it
    assert running_tasks(master)[2]["task_id"] == tasks[2]["task_id"]
    assert post(scheduler, "/v1/nodes/2/restart", {"force": "fake executors"}).status_code == 202
    restarted = wait_for(
        "node 2 restarted",
        lambda: (t := running_tasks(master)).get(2, {}).get("task_id") not in (None, tasks[2]["task_id"]) and t,
        scheduler,
        timeout=40,
    )
    assert restarted[2]["agent_id"] == tasks[2]["agent_id"] and restarted[2]["name"] == f"{FW}2"
    # The API shows the engine's state once it is through the update the master already shows.
    wait_for(
        "node 2's history to end in TASK_RUNNING",
        lambda: (h := get(scheduler, "/v1/nodes/2")["history"]) and h[-1]["state"] == "TASK_RUNNING",
        scheduler,
    )

    # Replace: same id, any agent. Queued for the planner like the restart (which never admits it
    # here); forced, it goes at once, and the queued request is dropped with it.
    queued = post(scheduler, "/v1/nodes/3/replace")
    assert queued.status_code == 202 and "replace queued" in queued.json()["message"]
    assert post(scheduler, "/v1/nodes/3/replace", {"force": "fake executors"}).status_code == 202
    wait_for(
        "node 3 replaced",
        lambda: (t := running_tasks(master)).get(3, {}).get("task_id") not in (None, tasks[3]["task_id"]) and t,
        scheduler,
        timeout=40,
    )
    assert post(scheduler, "/v1/nodes/9/restart").status_code == 404
    assert "killing" in scheduler.log()


def test_api_gone_only_for_an_unreachable_node_with_confirmation(
    master: DevMaster, zookeeper: ZooKeeperServer, scheduler: Scheduler
) -> None:
    scheduler.start()
    tasks = wait_for("nodes 1, 2, 3 running", lambda: three_running(master), scheduler)
    wait_for("the API", lambda: api_up(scheduler), scheduler)
    # A reachable node: refused even with the confirmation.
    refused = post(scheduler, "/v1/nodes/1/gone", {"confirm": "node 1 is gone"})
    assert refused.status_code == 409 and "not unreachable" in refused.json()["error"]
    agent_2 = tasks[2]["agent_id"]
    master.lose_agent(agent_2)
    wait_for("node 2 unreachable", lambda: "node 2 stays reserved" in scheduler.log(), scheduler)
    assert post(scheduler, "/v1/nodes/2/gone", {}).status_code == 400  # no confirmation
    answer = post(scheduler, "/v1/nodes/2/gone", {"confirm": "node 2 is gone"})
    assert answer.status_code == 202, answer.text
    assert "marked gone in Mesos" in answer.json()["message"]
    relaunched = wait_replaced(master, scheduler, 2, tasks[2]["task_id"], timeout=40)
    assert relaunched[2]["agent_id"] != agent_2
    agent = next(a for a in master.state()["agents"] if a["id"] == agent_2)
    assert agent["status"] == "GONE"
