"""End to end: Mesos maintenance with the real ``es-framework`` process, ZooKeeper and the development
master, whose four agents run the real executor with demo nodes (external volumes, as REX-Ray
mounts them). The operator schedules a window starting in a minute on the agent of node 1. Before
it starts, the scheduler moves node 1 off through the disruption planner: the inverse offer is held
unanswered meanwhile, node 1 is given node shutdown ``restart`` and stopped, and launched again with
its id and volumes on the spare agent (the agent in the window is declined under the ``maintenance``
rule); as node 1's old task ends the inverse offer is ACCEPTed. Not a document is lost, the shutdown
record is cleared once node 1 is back, and nothing of ours lands on the agent in the window."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from elasticsearch import helpers

from es_framework.dev.devcluster import DevMaster
from es_framework.dev.zookeeper import ZooKeeperServer
from examples.client import connect
from tests.e2e.test_rolling_restart_e2e import cluster_of, green, node_get
from tests.harness.demo_agents import demo_agent, demo_cluster
from tests.harness.devcluster import request
from tests.harness.e2e import Scheduler, new_cluster_name, running_tasks, wait_for

DOCS = 50
#: The window starts this long after it is scheduled: the move must be over before.
LEAD_S = 60.0


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


def moved(master: DevMaster, old: dict[str, Any]) -> dict[int, dict[str, Any]] | None:
    """The running tasks once node 1 runs a new task on another agent, else None."""
    tasks = running_tasks(master)
    node = tasks.get(1)
    return tasks if node and node["task_id"] != old["task_id"] and node["agent_id"] != old["agent_id"] else None


def no_shutdown_records(api: str) -> bool:
    with contextlib.suppress(AssertionError):
        return bool(node_get(api, "/_nodes/shutdown").get("nodes") == [])
    return False


def test_a_maintenance_window_moves_the_node_off_its_agent_before_it_starts(
    zookeeper: ZooKeeperServer, tmp_path: Path
) -> None:
    with demo_cluster(tmp_path / "work", [demo_agent(n) for n in (1, 2, 3, 4)]) as master:
        scheduler = Scheduler(master, zookeeper, new_cluster_name(), tmp_path, 3)
        api = scheduler.api
        try:
            scheduler.start()
            before = wait_for("3 running nodes", lambda: (t := running_tasks(master)) and len(t) == 3 and t, scheduler)
            wait_for("a cluster of 3", lambda: cluster_of(api, 3), scheduler, 60)
            client = connect(api)
            client.indices.create(index="books", settings={"number_of_shards": 2, "number_of_replicas": 1})
            ok, _ = helpers.bulk(client, ({"_index": "books", "_id": str(i), "n": i} for i in range(DOCS)))
            assert ok == DOCS
            client.close()
            wait_for("green", lambda: green(api), scheduler)

            agent = before[1]["agent_id"]
            host = f"127.0.0.{agent.removeprefix('agent').removesuffix('-S0')}"  # demo_agent(n): 127.0.0.n
            start = time.time() + LEAD_S
            window = {"start": {"nanoseconds": int(start * 1e9)}, "duration": {"nanoseconds": 3_600_000_000_000}}
            machine = {"hostname": host, "ip": host}
            operator(
                master,
                {
                    "type": "UPDATE_MAINTENANCE_SCHEDULE",
                    "update_maintenance_schedule": {
                        "schedule": {"windows": [{"machine_ids": [machine], "unavailability": window}]}
                    },
                },
            )
            after = wait_for("node 1 running on another agent", lambda: moved(master, before[1]), scheduler, LEAD_S)
            assert time.time() < start, "the move ended after the window started"
            assert after[1]["agent_id"] not in {before[2]["agent_id"], before[3]["agent_id"]}
            assert answers(master) == ["ACCEPT"]  # never declined: held until node 1 had left, then accepted
            log = scheduler.log()
            assert f"node 1 task {before[1]['task_id']}: moving off agent {agent} ({host}) for maintenance" in log
            assert "node 1: maintenance starts (node shutdown type restart" in log
            assert f"maintenance of agent {agent}: accepted: our nodes have moved off" in log

            wait_for("green again", lambda: green(api), scheduler)
            wait_for("node 1's shutdown record cleared", lambda: no_shutdown_records(api), scheduler)
            client = connect(api)
            assert client.count(index="books")["count"] == DOCS
            client.close()
            assert 'reason="maintenance"' in metrics(scheduler)  # the agent in the window was offered, declined
            assert all(t["agent_id"] != agent for t in running_tasks(master).values())
        finally:
            scheduler.stop()
