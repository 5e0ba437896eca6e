"""``PUT /v1/cluster/configuration`` rolls the nodes, end to end: the real ``es-framework`` process with
real ZooKeeper, the development master whose agents run the real executor as a process with demo
nodes (local mode would stop its nodes with the scheduler). Three master-eligible nodes hold
replicated documents. ``PUT {"elasticsearchRam": 3072}`` restarts every node once, one at a time,
with its id and agent, into tasks with the new memory; never two nodes down; not a document lost.
The scheduler then restarted with its original flags keeps the change: no new rollout, no task
replaced (issue 12). A restart with other flags rolling the nodes, and a rollout surviving a
scheduler SIGKILL, are tests/e2e/test_rollout_failover_e2e.py."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import requests
from elasticsearch import helpers

from es_framework.dev.zookeeper import ZooKeeperServer
from examples.client import connect
from tests.e2e.test_rolling_restart_e2e import cluster_of, green
from tests.harness.demo_agents import demo_agent, demo_cluster
from tests.harness.e2e import Scheduler, new_cluster_name, running_tasks, wait_for
from tests.harness.rollout_watch import MasterWatcher, api_json, finished_rollout, registered

DOCS = 300
NODES = (1, 2, 3)
RAM = 3072.0


def mem(task: dict[str, Any]) -> float:
    return float(sum(r["scalar"]["value"] for r in task["resources"] if r["name"] == "mem"))


def test_a_configuration_put_through_the_api_rolls_every_node_once_and_survives_a_restart(
    zookeeper: ZooKeeperServer, tmp_path: Path
) -> None:
    with demo_cluster(tmp_path / "work", [demo_agent(n) for n in NODES]) as master:
        scheduler = Scheduler(
            master, zookeeper, new_cluster_name(), tmp_path, 3, extra=("--elasticsearchMasterNodes", "3")
        )
        api = scheduler.api
        try:
            scheduler.start()
            before = wait_for(
                "3 running nodes",
                lambda: (t := running_tasks(master)) and sorted(t) == list(NODES) and t,
                scheduler,
                90,
            )
            wait_for("a cluster of 3", lambda: cluster_of(api, 3), scheduler, 90)
            client = connect(api)
            client.indices.create(index="books", settings={"number_of_shards": 3, "number_of_replicas": 1})
            ok, _ = helpers.bulk(client, ({"_index": "books", "_id": str(i), "n": i} for i in range(DOCS)))
            assert ok == DOCS
            client.indices.refresh(index="books")
            client.close()
            wait_for("green", lambda: green(api), scheduler, 90)
            flag_ram = mem(before[1])
            assert flag_ram != RAM

            with MasterWatcher(master, api, NODES) as watcher:
                answer = requests.put(f"{api}/v1/cluster/configuration", json={"elasticsearchRam": RAM}, timeout=30)
                assert answer.status_code == 202, answer.text
                rollout = answer.json()["rollout"]
                assert sorted(rollout["order"]) == list(NODES), rollout
                outcome = wait_for(
                    "the API's rollout to complete",
                    lambda: finished_rollout(api, rollout_id=rollout["id"]),
                    scheduler,
                    240,
                )
                wait_for("green again", lambda: green(api), scheduler, 60)
            assert outcome["state"] == "completed" and (outcome["done"], outcome["total"]) == (3, 3), outcome
            after = running_tasks(master)
            assert sorted(after) == list(NODES)
            for node_id in NODES:
                assert list(watcher.task_ids[node_id]) == [before[node_id]["task_id"], after[node_id]["task_id"]]
                assert after[node_id]["agent_id"] == before[node_id]["agent_id"]
                assert mem(after[node_id]) == RAM, after[node_id]["resources"]
            assert max(len(d) for _, d in watcher.down) == 1, [d for d in watcher.down if len(d[1]) > 1]
            assert watcher.counts and set(watcher.counts) == {DOCS}, set(watcher.counts)
            assert not any(api_json(api, f"/v1/nodes/{i}")["outdated"] for i in NODES)
            history = api_json(api, "/v1/rollouts")["finished"]

            # Started again with the flags it had before the change: the change stays.
            assert scheduler.signal(signal.SIGTERM) == 0
            scheduler.start()
            wait_for("registered again", lambda: registered(api), scheduler, 60)
            # The configuration is recorded at registration: a roll back would be a rollout by now.
            assert api_json(api, "/v1/rollouts") == {"current": None, "finished": history}
            shown = api_json(api, "/v1/cluster/configuration")
            assert (shown["values"]["elasticsearchRam"], shown["flags"]["elasticsearchRam"]) == (RAM, flag_ram), shown
            assert {i: t["task_id"] for i, t in running_tasks(master).items()} == {
                i: t["task_id"] for i, t in after.items()
            }
            last_run = (scheduler.log_dir / f"scheduler-{scheduler.runs}.log").read_text(errors="replace")
            assert "configuration changed" not in last_run and "set through the API" in last_run, last_run[-4000:]
        finally:
            scheduler.stop()
