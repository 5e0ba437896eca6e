"""A rolling restart end to end: the real ``es-framework`` process with real ZooKeeper, the development
master whose four agents run the real executor as a process with demo nodes holding replicated shards.
``POST /v1/cluster/restart`` restarts every node once, one at a time, through the disruption planner
(node shutdown ``restart`` on the demo node's version), the elected master last; a pause holds the next
step back until resumed. Then an operator's restart of one node and replace of another go through the
same planner, one after the other."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import requests
from elasticsearch import helpers

from es_framework.dev.devcluster import DevMaster
from es_framework.dev.zookeeper import ZooKeeperServer
from examples.client import connect
from tests.harness.demo_agents import demo_agent, demo_cluster
from tests.harness.e2e import Scheduler, new_cluster_name, wait_for
from tests.harness.rollout_watch import IN_PROGRESS, MasterWatcher, api_json

DOCS = 600
NODES = (1, 2, 3, 4)
TOKEN = "rolling-restart-e2e-token"


def post(api: str, path: str) -> requests.Response:
    return requests.post(api + path, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)


def tasks(api: str) -> dict[int, dict[str, Any]]:
    try:
        return {int(t["node_id"]): t for t in api_json(api, "/v1/tasks")}
    except (requests.RequestException, ValueError):
        return {}


def running(api: str) -> dict[int, dict[str, Any]]:
    return {i: t for i, t in tasks(api).items() if t["state"] == "TASK_RUNNING"}


def node_get(api: str, path: str) -> Any:
    """``GET path`` on the first running node that answers (straight to Elasticsearch, not the client)."""
    for address in api_json(api, "/v1/cluster/endpoints")["http"]:
        with contextlib.suppress(requests.RequestException):
            response = requests.get(f"http://{address}{path}", timeout=5)
            if response.status_code == 200:
                return response.json()
    raise AssertionError(f"no node answered GET {path}")


def cluster_of(api: str, size: int) -> bool:
    try:
        health = node_get(api, "/_cluster/health")
    except (AssertionError, requests.RequestException, ValueError):
        return False
    return bool(health.get("number_of_nodes") == size)


def green(api: str) -> bool:
    try:
        return bool(node_get(api, "/_cluster/health").get("status") == "green")
    except (AssertionError, requests.RequestException, ValueError):
        return False


def steps_of(api: str) -> dict[int, str]:
    current = api_json(api, "/v1/rollouts")["current"]
    return {s["node_id"]: s["state"] for s in current["steps"]} if current else {}


def test_rolling_restart_restarts_each_node_once_one_at_a_time_elected_master_last(
    zookeeper: ZooKeeperServer, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    with demo_cluster(tmp_path / "work", [demo_agent(n) for n in NODES]) as master:
        scheduler = Scheduler(
            master,
            zookeeper,
            new_cluster_name(),
            tmp_path,
            len(NODES),
            extra=("--elasticsearchMasterNodes", "3", "--apiTokenFile", str(token_file)),
        )
        try:
            scheduler.start()
            rolling_restart_then_operator_restart_and_replace(master, scheduler)
        finally:
            scheduler.stop()


def rolling_restart_then_operator_restart_and_replace(master: DevMaster, scheduler: Scheduler) -> None:
    api = scheduler.api

    def wait(what: str, predicate: Any, timeout: float = 20.0) -> Any:
        return wait_for(what, predicate, scheduler, timeout)

    wait("4 running nodes", lambda: sorted(running(api)) == list(NODES), timeout=90)
    wait("a cluster of 4", lambda: cluster_of(api, 4), timeout=90)

    # Every shard has a copy on another node, so any one node may restart without losing a document.
    client = connect(api)
    client.indices.create(index="books", settings={"number_of_shards": 4, "number_of_replicas": 1})
    ok, _ = helpers.bulk(client, ({"_index": "books", "_id": str(i), "n": i} for i in range(DOCS)))
    assert ok == DOCS
    client.indices.refresh(index="books")
    wait("green", lambda: green(api), timeout=90)
    assert client.count(index="books")["count"] == DOCS
    client.close()
    before = running(api)
    elected = node_get(api, "/_cat/master?format=json")[0]["node"]
    elected_id = int(elected.removeprefix("elasticsearch"))

    # Without the token, nothing is restarted.
    assert requests.post(api + "/v1/cluster/restart", timeout=10).status_code == 401

    with MasterWatcher(master, api, NODES) as watcher:
        answer = post(api, "/v1/cluster/restart")
        assert answer.status_code == 202, answer.text
        rollout = answer.json()
        rollout_id = rollout["id"]

        # Pause as soon as the first step runs: that step goes on to its end, no other starts.
        first = wait(
            "the first step to start",
            lambda: [i for i, s in steps_of(api).items() if s in IN_PROGRESS],
            timeout=60,
        )
        assert len(first) == 1
        # The planner round that started it knew the elected master: it goes last.
        current = api_json(api, "/v1/rollouts")["current"]
        assert current["order"][-1] == elected_id and current["order_note"] is None, (current, elected)
        paused = post(api, f"/v1/rollouts/{rollout_id}/pause")
        assert paused.status_code == 200, paused.text
        assert paused.json()["state"] == "paused"
        wait(
            f"node {first[0]}'s step to finish while paused",
            lambda: steps_of(api).get(first[0]) == "done",
            timeout=90,
        )
        held_since = time.time()
        # Several monitor rounds (2 s apart while a rollout exists) start nothing new.
        while time.time() - held_since < 6:
            states = steps_of(api)
            assert [i for i, s in states.items() if s in IN_PROGRESS] == [], states
            assert sorted(s for s in states.values()) == ["done", "pending", "pending", "pending"], states
            time.sleep(0.5)
        resumed = post(api, f"/v1/rollouts/{rollout_id}/resume")
        assert resumed.status_code == 200, resumed.text
        assert resumed.json()["state"] == "running"

        def finished() -> dict[str, Any] | None:
            answer = api_json(api, "/v1/rollouts")
            done = [r for r in answer["finished"] if r["id"] == rollout_id]
            return done[0] if answer["current"] is None and done else None

        deadline = time.monotonic() + 180
        outcome = None
        while outcome is None:
            with contextlib.suppress(requests.RequestException, ValueError):
                outcome = finished()
            if outcome is None and time.monotonic() > deadline:
                raise AssertionError(
                    f"rollout {rollout_id} not finished in 180 s: {api_json(api, '/v1/rollouts')}\n"
                    f"down (last 5): {watcher.down[-5:]}\n--- log ---\n{scheduler.log()[-8000:]}"
                )
            time.sleep(0.5)
        wait("green again", lambda: green(api), timeout=60)
    assert outcome["state"] == "completed" and (outcome["done"], outcome["total"]) == (4, 4), outcome

    # Every node restarted exactly once: a new task, the same id and agent.
    after = running(api)
    assert sorted(after) == list(NODES)
    for node_id in NODES:
        assert after[node_id]["id"] != before[node_id]["id"], node_id
        assert after[node_id]["agent_id"] == before[node_id]["agent_id"], node_id
        assert list(watcher.task_ids[node_id]) == [before[node_id]["id"], after[node_id]["id"]], (
            node_id,
            watcher.task_ids[node_id],
        )
    # Never two nodes down at once, never two steps in progress.
    assert watcher.down and max(len(d) for _, d in watcher.down) == 1, [d for d in watcher.down if len(d) > 1]
    assert watcher.most_away() == 1, [a for a in watcher.away if len(set(a[1]) | set(a[2])) > 1]
    # The elected master was restarted last.
    new_task_seen = {i: watcher.task_ids[i][after[i]["id"]] for i in NODES}
    assert max(new_task_seen, key=lambda i: new_task_seen[i]) == elected_id, (new_task_seen, elected)

    # Not a document lost, at any time.
    assert watcher.counts and set(watcher.counts) == {DOCS}, (set(watcher.counts), watcher.count_errors[:3])
    client = connect(api)
    assert client.count(index="books")["count"] == DOCS
    client.close()
    # Nothing left behind: the allocation setting and the node shutdown records are gone.
    settings = node_get(api, "/_cluster/settings?flat_settings=true")
    assert not any("cluster.routing.allocation.enable" in scope for scope in settings.values()), settings
    wait("no node shutdown left", lambda: node_get(api, "/_nodes/shutdown") == {"nodes": []})

    # The operator's restart of one node and replace of another are queued together, then prepared
    # and done by the planner one after the other (the replace first): never two nodes away. The
    # replace is prepared like a maintenance move (the volumes are external: node shutdown
    # restart, as the log says), then stopped and launched again as node 3.
    with MasterWatcher(master, api, NODES) as operator_watch:
        answer = post(api, "/v1/nodes/2/restart")
        assert answer.status_code == 202 and "queued" in answer.json()["message"], answer.text
        answer = post(api, "/v1/nodes/3/replace")
        assert answer.status_code == 202 and "replace queued" in answer.json()["message"], answer.text
        wait(
            "node 2 restarted and node 3 replaced by the operator",
            lambda: all((t := running(api).get(i)) is not None and t["id"] != after[i]["id"] for i in (2, 3)),
            timeout=90,
        )
        wait("green after the operator's restart and replace", lambda: green(api), timeout=60)
    assert running(api)[2]["agent_id"] == after[2]["agent_id"]
    assert max(len(d) for _, d in operator_watch.down) == 1, [d for d in operator_watch.down if len(d) > 1]
    assert set(operator_watch.counts) == {DOCS}, (set(operator_watch.counts), operator_watch.count_errors[:3])
    assert "node shutdown restart registered before its replace" in scheduler.log()
    assert "node 3: drained for its replace (requested by the operator); stopping" in scheduler.log()
    wait(
        "the shutdown records cleared, node 3 in no allocation exclusion",
        lambda: (
            node_get(api, "/_nodes/shutdown") == {"nodes": []}
            and "elasticsearch3" not in str(node_get(api, "/_cluster/settings?flat_settings=true"))
        ),
        timeout=30,
    )
    restarted = running(api)
    assert [i for i in NODES if restarted[i]["id"] != after[i]["id"]] == [2, 3]
    client = connect(api)
    assert client.count(index="books")["count"] == DOCS
    client.close()
