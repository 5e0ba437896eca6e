"""A configuration rollout that survives its scheduler being killed, end to end (issue 12's first
"done when"): the real ``es-framework`` process with real ZooKeeper, the development master whose five
agents run the real executor as a process with demo nodes; three master-eligible nodes (1..3) and two
data-only nodes (4, 5) hold replicated documents.

The scheduler is stopped (SIGTERM: the nodes keep running) and started with another
``--elasticsearchRam``. Its ``configuration`` rollout restarts the data-only nodes first, then the
master-eligible ones, the elected master last. After two steps the scheduler is SIGKILLed and started
again with the same flags: the new leader resumes the same rollout where it stopped (no new rollout, no
node restarted twice), and each node's history (``GET /v1/nodes/<id>``, persisted per node) still
shows the steps the killed scheduler took. A scale-down to 4 nodes asked for while the rollout goes
on waits for the one planner: node 5's drain and the rollout's steps never take two nodes away
together. Throughout, never two nodes down and the document count exact; after it, every kept node
kept its id, its agent and its volumes, with the new memory, and its history shows its step started
and done."""

from __future__ import annotations

import contextlib
import itertools
import re
import signal
import time
from pathlib import Path
from typing import Any

import requests
from elasticsearch import helpers

from es_framework.dev.devcluster.attachments import Attachment
from es_framework.dev.zookeeper import ZooKeeperServer
from examples.client import connect
from tests.e2e.test_rolling_restart_e2e import cluster_of, green, node_get
from tests.harness.demo_agents import demo_agent, demo_cluster
from tests.harness.e2e import Scheduler, new_cluster_name, running_tasks, wait_for
from tests.harness.rollout_watch import MasterWatcher, api_json, registered

DOCS = 400
NODES = (1, 2, 3, 4, 5)
MASTERS = (1, 2, 3)
#: The nodes kept by the scale-down asked for during the rollout.
KEPT = (1, 2, 3, 4)
RAM = 3072.0


def mem(task: dict[str, Any]) -> float:
    return float(sum(r["scalar"]["value"] for r in task["resources"] if r["name"] == "mem"))


def current_rollout(api: str) -> dict[str, Any] | None:
    with contextlib.suppress(requests.RequestException, ValueError):
        current = api_json(api, "/v1/rollouts")["current"]
        return current if isinstance(current, dict) else None
    return None


def finished_rollouts(api: str) -> list[dict[str, Any]] | None:
    """The finished configuration rollouts, once none is under way (else None)."""
    with contextlib.suppress(requests.RequestException, ValueError):
        answer = api_json(api, "/v1/rollouts")
        if answer["current"] is None:
            return [r for r in answer["finished"] if r["reason"] == "configuration"]
    return None


def assert_never_held_twice(attachments: list[Attachment]) -> None:
    """No volume was attached to a task while another task still held it."""
    by_volume: dict[str, list[Attachment]] = {}
    for attachment in attachments:
        for volume in attachment.volumes:
            by_volume.setdefault(volume, []).append(attachment)
    for volume, held in by_volume.items():
        for earlier, later in itertools.pairwise(sorted(held, key=lambda a: a.attached_at)):
            assert earlier.detached_at is not None and earlier.detached_at <= later.attached_at, (volume, held)


def rollout_steps(api: str, node_id: int, rollout_id: str) -> list[str]:
    """What node ``node_id``'s history (``GET /v1/nodes/<id>``, persisted per node) says its steps of
    rollout ``rollout_id`` did."""
    history = api_json(api, f"/v1/nodes/{node_id}")["history"]
    return [e["step"] for e in history if e["kind"] == "rollout" and e["rollout"] == rollout_id]


def elected_master(api: str) -> int:
    """The elected master's node id, from Elasticsearch (``_cat/master``: its node name ends in the
    id, e.g. ``elasticsearch1``)."""
    name = node_get(api, "/_cat/master?format=json")[0]["node"]
    digits = re.search(r"(\d+)$", name)
    assert digits is not None, name
    return int(digits.group(1))


def test_a_configuration_rollout_of_three_masters_and_two_data_nodes_survives_a_scheduler_sigkill(
    zookeeper: ZooKeeperServer, tmp_path: Path
) -> None:
    with demo_cluster(tmp_path / "work", [demo_agent(n) for n in NODES]) as master:
        scheduler = Scheduler(
            master, zookeeper, new_cluster_name(), tmp_path, len(NODES), extra=("--elasticsearchMasterNodes", "3")
        )
        api = scheduler.api
        try:
            scheduler.start()
            before = wait_for(
                "5 running nodes",
                lambda: (t := running_tasks(master)) and sorted(t) == list(NODES) and t,
                scheduler,
                120,
            )
            wait_for("a cluster of 5", lambda: cluster_of(api, len(NODES)), scheduler, 90)
            client = connect(api)
            client.indices.create(index="books", settings={"number_of_shards": 5, "number_of_replicas": 1})
            ok, _ = helpers.bulk(client, ({"_index": "books", "_id": str(i), "n": i} for i in range(DOCS)))
            assert ok == DOCS
            client.indices.refresh(index="books")
            client.close()
            wait_for("green", lambda: green(api), scheduler, 90)
            elected = elected_master(api)
            assert elected in MASTERS
            assert RAM not in {mem(t) for t in before.values()}

            with MasterWatcher(master, api, NODES) as watcher:
                assert scheduler.signal(signal.SIGTERM) == 0
                assert sorted(running_tasks(master)) == list(NODES)  # the nodes outlive the scheduler
                at = scheduler.args.index("--elasticsearchNofile")
                scheduler.args[at:at] = ["--elasticsearchRam", str(int(RAM))]
                scheduler.start()
                rollout = wait_for(
                    "two steps of the configuration rollout",
                    lambda: (r := current_rollout(api)) and r["done"] >= 2 and r,
                    scheduler,
                    180,
                )
                assert rollout["reason"] == "configuration", rollout
                order = list(rollout["order"])
                assert set(order[:2]) == {4, 5} and order[-1] == elected, (order, elected)
                scheduler.stop()  # SIGKILL, in the middle of the rollout
                scheduler.start()
                wait_for("the new leader registered", lambda: registered(api), scheduler, 60)
                for node_id in order[:2]:  # the new leader shows the steps the killed one took (persisted)
                    assert rollout_steps(api, node_id, rollout["id"]) == ["started", "done"], node_id
                assert current_rollout(api) is not None, "the rollout ended before the scale-down was asked for"
                answer = requests.put(api + "/v1/cluster/elasticsearchNodes", json={"value": KEPT[-1]}, timeout=30)
                assert answer.status_code == 200, answer.text
                finished = wait_for("the resumed rollout to complete", lambda: finished_rollouts(api), scheduler, 240)
                wait_for("node 5 stopped", lambda: sorted(running_tasks(master)) == list(KEPT), scheduler, 120)
                wait_for("the drain over", lambda: api_json(api, "/v1/cluster")["drain"] == [], scheduler, 60)
                wait_for("green again", lambda: green(api), scheduler, 90)
                time.sleep(1)  # a last document count on the settled cluster

            assert [r["id"] for r in finished] == [rollout["id"]], finished  # resumed, not replaced
            assert finished[0]["state"] == "completed", finished
            assert (finished[0]["done"], finished[0]["total"]) == (5, 5), finished
            # Data-only nodes may restart in either order (the planner takes the first pending one whose
            # predicates pass: core/rollouts.candidates); the master-eligible ones follow the order exactly.
            restarted = watcher.restart_order()
            assert set(restarted[:2]) == set(order[:2]) and restarted[2:] == order[2:], (restarted, order)
            after = running_tasks(master)
            assert sorted(after) == list(KEPT)
            assert len(watcher.task_ids[5]) == 2, watcher.task_ids[5]  # restarted by the rollout, then drained
            for node_id in KEPT:
                assert list(watcher.task_ids[node_id]) == [before[node_id]["task_id"], after[node_id]["task_id"]], (
                    node_id,
                    watcher.task_ids[node_id],
                )
                assert after[node_id]["agent_id"] == before[node_id]["agent_id"]
                assert mem(after[node_id]) == RAM, after[node_id]["resources"]
            # Never two nodes down: node 5 counts until it left for good (its last sample as running).
            left = max(t for t, down in watcher.down if 5 not in down)
            too_many = [(t, d) for t, d in watcher.down if len([i for i in d if i != 5 or t <= left]) > 1]
            assert not too_many, too_many
            assert watcher.away and watcher.most_away() == 1, [a for a in watcher.away if len(a[1]) + len(a[2]) > 1]
            assert any(drains for _, _, drains in watcher.away), "node 5's drain was never seen"
            assert watcher.counts and set(watcher.counts) == {DOCS}, set(watcher.counts)
            assert scheduler.log().count("configuration changed (fingerprint") == 1, scheduler.log()[-4000:]
            held = {a.task_id: a for a in master.attachments()}
            for node_id in KEPT:  # the same volumes, re-attached by the new task
                volumes = held[before[node_id]["task_id"]].volumes
                assert volumes and held[after[node_id]["task_id"]].volumes == volumes, (node_id, volumes)
            assert_never_held_twice(master.attachments())
            for node_id in KEPT:  # each kept node's history: its step started and done, whoever led
                assert rollout_steps(api, node_id, rollout["id"]) == ["started", "done"], node_id
            client = connect(api)
            assert client.count(index="books")["count"] == DOCS
            client.close()
        finally:
            scheduler.stop()
