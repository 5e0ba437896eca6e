"""A configuration change rolls the nodes, end to end: the real ``es-framework`` process with real
ZooKeeper, the development master whose agents run the real executor as a process with demo nodes
(local mode would stop its nodes with the scheduler). Three master-eligible nodes hold replicated
documents; the scheduler is stopped (SIGTERM: the nodes keep running) and started again with another
``--elasticsearchRam``. A ``configuration`` rollout restarts every node once, one at a time, with
its id and agent, into tasks with the new memory; never two nodes down; not a document lost."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
from elasticsearch import helpers

from es_framework.dev.devcluster import DevMaster
from es_framework.dev.zookeeper import ZooKeeperServer
from examples.client import connect
from tests.e2e.test_rolling_restart_e2e import api_json, cluster_of, green
from tests.harness.demo_agents import demo_agent, demo_cluster
from tests.harness.e2e import Scheduler, new_cluster_name, running_tasks, wait_for

DOCS = 300
NODES = (1, 2, 3)


@contextlib.contextmanager
def demo_agents(work: Path) -> Iterator[DevMaster]:
    """Three agents running real executors with demo nodes, two ports each (one node per agent)."""
    with demo_cluster(work, [demo_agent(n) for n in NODES]) as dev:
        yield dev


def mem(task: dict[str, Any]) -> float:
    return float(sum(r["scalar"]["value"] for r in task["resources"] if r["name"] == "mem"))


class Watcher:
    """Polls the master's tasks every 0.2 s (which nodes are not running, every task id per node), and
    the document count every 0.5 s whenever the scheduler answers."""

    def __init__(self, master: DevMaster, api: str) -> None:
        self.master, self.api = master, api
        self.down: list[list[int]] = []
        self.task_ids: dict[int, list[str]] = {i: [] for i in NODES}
        self.counts: list[int] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._tasks), threading.Thread(target=self._count)]

    def _tasks(self) -> None:
        while not self._stop.wait(0.2):
            seen = running_tasks(self.master)
            self.down.append([i for i in NODES if i not in seen])
            for node_id, task in seen.items():
                if node_id in self.task_ids and task["task_id"] not in self.task_ids[node_id]:
                    self.task_ids[node_id].append(task["task_id"])

    def _count(self) -> None:
        while not self._stop.wait(0.5):
            with contextlib.suppress(Exception):  # the scheduler is down for a while: no endpoints
                client = connect(self.api)
                try:
                    self.counts.append(int(client.count(index="books")["count"]))
                finally:
                    client.close()

    def __enter__(self) -> Watcher:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)


def finished_rollout(api: str) -> dict[str, Any] | None:
    with contextlib.suppress(requests.RequestException, ValueError):
        answer = api_json(api, "/v1/rollouts")
        done = [r for r in answer["finished"] if r["reason"] == "configuration"]
        return done[-1] if answer["current"] is None and done else None
    return None


def test_restarting_the_scheduler_with_other_ram_rolls_every_node_once(
    zookeeper: ZooKeeperServer, tmp_path: Path
) -> None:
    with demo_agents(tmp_path / "work") as master:
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
            old_mem = {mem(t) for t in before.values()}
            assert len(old_mem) == 1 and 3072.0 not in old_mem, old_mem

            with Watcher(master, api) as watcher:
                assert scheduler.signal(signal.SIGTERM) == 0
                time.sleep(2)
                assert sorted(running_tasks(master)) == list(NODES)  # the nodes outlive the scheduler
                ram = scheduler.args.index("--elasticsearchNofile")
                scheduler.args[ram:ram] = ["--elasticsearchRam", "3072"]
                scheduler.start()
                outcome = wait_for(
                    "the configuration rollout to complete", lambda: finished_rollout(api), scheduler, 240
                )
                wait_for("green again", lambda: green(api), scheduler, 60)
            assert outcome["state"] == "completed", outcome
            assert (outcome["done"], outcome["total"]) == (3, 3), outcome

            after = running_tasks(master)
            assert sorted(after) == list(NODES)
            for node_id in NODES:
                assert watcher.task_ids[node_id] == [before[node_id]["task_id"], after[node_id]["task_id"]], (
                    node_id,
                    watcher.task_ids[node_id],
                )
                assert after[node_id]["agent_id"] == before[node_id]["agent_id"]
                assert mem(after[node_id]) == 3072.0, after[node_id]["resources"]
            assert max(len(d) for d in watcher.down) == 1, [d for d in watcher.down if len(d) > 1]
            assert watcher.counts and set(watcher.counts) == {DOCS}, set(watcher.counts)
            assert scheduler.log().count("configuration changed (fingerprint") == 1, scheduler.log()[-4000:]
            client = connect(api)
            assert client.count(index="books")["count"] == DOCS
            client.close()
            assert not any(api_json(api, f"/v1/nodes/{i}")["outdated"] for i in NODES)
        finally:
            scheduler.stop()
