"""The demo Elasticsearch node's node shutdown API (a development tool): request checks with Elasticsearch's errors,
shard migration statuses, remove moving copies off, restart keeping them in place for allocation_delay, and the
record surviving restarts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from es_framework.dev.demo_es import persistence, routing, shutdown
from es_framework.dev.demo_es.cluster_state import (
    EXCLUDE_NAME,
    STARTED,
    UNASSIGNED,
    DemoClusterState,
    IndexMeta,
    NodeInfo,
    ShutdownRecord,
    state_from_json,
    to_json,
)
from es_framework.dev.demo_es.errors import EsError
from es_framework.dev.demo_es.version import parse_version
from es_framework.dev.ports import free_port
from tests.harness.demo_nodes import DemoNodeProcess, wait_until
from tests.harness.demo_routing import start_all

V8, V812 = parse_version("8.11.0"), parse_version("8.15.1")
ALL = ("master", "data", "ingest")


def node(name: str) -> NodeInfo:
    return NodeInfo(f"id-{name}", name, ALL, f"h-{name}:9200", f"h-{name}:9300", "8.15.1")


N1, N2, N3 = node("n1"), node("n2"), node("n3")


def cluster(shards: int, replicas: int, nodes: tuple[NodeInfo, ...] = (N1, N2, N3)) -> DemoClusterState:
    state = routing.create_index(DemoClusterState("u"), IndexMeta("idx", "iu", shards, replicas, 0))
    return start_all(routing.reroute(state, nodes, 0), nodes)


def refused(body: Any, node_id: str = "id-n1") -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(EsError) as caught:
        shutdown.parse_put(node_id, raw, 1)
    assert caught.value.status == 400
    error: dict[str, Any] = caught.value.body()["error"]
    return error


# ---------------------------------------------------------------------- requests


def test_put_accepts_what_elasticsearch_accepts() -> None:
    record = shutdown.parse_put("id-n1", b'{"type": "Restart", "reason": "upgrade", "allocation_delay": "10m"}', 7)
    assert (record.type, record.reason, record.allocation_delay, record.started_at) == ("RESTART", "upgrade", "10m", 7)
    assert shutdown.parse_put("x", b'{"type": "remove", "reason": "r"}', 1).effective_allocation_delay is None
    replace_record = shutdown.parse_put("x", b'{"type": "replace", "reason": "r", "target_node_name": "n9"}', 1)
    assert replace_record.target_node_name == "n9"
    assert shutdown.parse_put("x", b'{"type": "restart", "reason": "r"}', 1).effective_allocation_delay == "5m"


def test_put_refusals_have_elasticsearch_errors() -> None:
    assert refused(b"") == {
        "root_cause": [{"type": "parse_exception", "reason": "request body is required"}],
        "type": "parse_exception",
        "reason": "request body is required",
    }
    unknown = refused({"type": "remove", "reason": "r", "force": "yes"})
    assert unknown["type"] == "x_content_parse_exception"
    assert unknown["reason"].endswith("[put_node_shutdown_request] unknown field [force]")
    assert refused({"type": "remove"})["reason"] == "Required [reason]"
    assert refused({})["reason"] == "Required [type, reason]"
    assert refused({"type": "remove"})["type"] == "illegal_argument_exception"
    bad_type = refused({"reason": "r", "type": "stop"})
    assert bad_type["type"] == "x_content_parse_exception"
    assert (
        bad_type["caused_by"]["reason"]
        == "Failed to build [put_node_shutdown_request] after last required field arrived"
    )
    assert bad_type["caused_by"]["caused_by"] == {
        "type": "illegal_argument_exception",
        "reason": "unknown shutdown type: stop",
    }
    delay = refused({"type": "restart", "reason": "r", "allocation_delay": "soon"})
    assert "as a time value" in delay["caused_by"]["caused_by"]["reason"]
    assert "doesn't support values of type: VALUE_NUMBER" in refused({"type": "remove", "reason": 5})["reason"]
    assert refused({"type": "remove", "reason": "r", "allocation_delay": "1m"}) | {"root_cause": None} == {
        "root_cause": None,
        "type": "action_request_validation_exception",
        "reason": "Validation Failed: 1: allocation_delay is only allowed for RESTART-type shutdown requests;",
    }
    assert refused({"type": "restart", "reason": "r", "target_node_name": "n9"})["reason"] == (
        "Validation Failed: 1: target node name is only valid for REPLACE type shutdowns, but was given type "
        "[RESTART] and target node name [n9];"
    )
    assert refused({"type": "replace", "reason": "r"})["reason"] == (
        "Validation Failed: 1: target node name is required for REPLACE type shutdowns;"
    )


def test_put_replaces_a_record_unless_nothing_changes_and_delete_needs_one() -> None:
    state = DemoClusterState("u", nodes=(N1,))
    first = shutdown.put(state, ShutdownRecord("id-n1", "RESTART", "r", 1))
    assert first.shutdowns["id-n1"].node_seen
    assert shutdown.put(first, ShutdownRecord("id-n1", "RESTART", "r", 2, allocation_delay="5m")) is first
    # A later request may change the type (the rule that remove never turns into restart is the
    # scheduler's, not Elasticsearch's).
    second = shutdown.put(first, ShutdownRecord("id-n1", "REMOVE", "r", 3))
    assert second.shutdowns["id-n1"].type == "REMOVE"
    assert not shutdown.put(state, ShutdownRecord("id-gone", "REMOVE", "r", 1)).shutdowns["id-gone"].node_seen
    with pytest.raises(EsError) as caught:
        shutdown.delete(state, "id-n1")
    assert (caught.value.status, caught.value.kind) == (404, "resource_not_found_exception")
    assert caught.value.reason == "node [id-n1] is not currently shutting down"
    assert shutdown.delete(second, "id-n1").shutdowns == {}


def test_shutdowns_are_cluster_state_metadata_and_survive_a_restart(tmp_path: Path) -> None:
    record = ShutdownRecord("id-n1", "REPLACE", "r", 5, True, None, "n9")
    state = DemoClusterState("u", nodes=(N1,), shutdowns={"id-n1": record})
    assert state_from_json(json.loads(json.dumps(to_json(state)))).shutdowns == {"id-n1": record}
    persistence.save_cluster_state(tmp_path, state)
    restored = persistence.read_cluster_state(tmp_path, "u")
    assert restored is not None and restored.shutdowns == {"id-n1": record}


# ---------------------------------------------------------------------- statuses and allocation


def status(state: DemoClusterState, node_id: str, version: Any = V812) -> dict[str, Any]:
    return shutdown.node_status(state, state.shutdowns[node_id], version, {})


def test_remove_moves_every_copy_off_then_completes() -> None:
    nodes = (N1, N2, N3)
    state = cluster(3, 0)
    assert any(c.node == N3.node_id for g in state.shards.values() for c in g.copies)
    state = shutdown.put(state, ShutdownRecord(N3.node_id, "REMOVE", "scale down", 1))
    moving = routing.reroute(state, nodes, 0)
    answer = status(moving, N3.node_id)
    assert answer["status"] == "IN_PROGRESS"
    assert answer["shard_migration"]["relocating_shards"] >= 1
    assert answer["persistent_tasks"] == {"status": "COMPLETE"} and answer["plugins"] == {"status": "COMPLETE"}
    done = start_all(moving, nodes)
    assert not any(c.node == N3.node_id for g in done.shards.values() for c in g.copies)
    assert status(done, N3.node_id)["status"] == "COMPLETE"
    assert status(done, N3.node_id)["shard_migration"]["shard_migrations_remaining"] == 0
    # Nothing goes back to it while the shutdown is registered, even when it is the emptiest node.
    grown = start_all(routing.create_index(done, IndexMeta("more", "mu", 3, 0, 0)), nodes)
    assert not any(c.node == N3.node_id for g in grown.shards.values() for c in g.copies)


def test_restart_is_complete_at_once_and_moves_nothing() -> None:
    state = shutdown.put(cluster(3, 1), ShutdownRecord(N3.node_id, "RESTART", "upgrade", 1))
    after = start_all(state, (N1, N2, N3))
    assert after.shards == state.shards
    answer = status(after, N3.node_id)
    assert answer["status"] == "COMPLETE" and answer["allocation_delay"] == "5m"
    assert answer["shard_migration"]["explanation"] == "no shard relocation is necessary for a node restart"


def test_a_removal_never_seen_has_not_started_and_counts_appear_from_8_12() -> None:
    state = shutdown.put(cluster(1, 0), ShutdownRecord("id-absent", "REMOVE", "r", 1))
    answer = status(state, "id-absent")
    assert answer["status"] == "NOT_STARTED"
    assert answer["shard_migration"]["explanation"] == "node is not currently part of the cluster"
    done = status(shutdown.put(cluster(1, 0), ShutdownRecord(N3.node_id, "REMOVE", "r", 1)), N3.node_id)
    assert done["status"] == "COMPLETE"
    assert done["shard_migration"]["started_shards"] == 0
    assert "started_shards" not in status(state, "id-absent", V8)["shard_migration"]


def test_a_copy_that_cannot_move_stalls_unless_another_copy_is_started() -> None:
    # One primary, no replica, on n1; the only other node is excluded: nowhere to go.
    nodes = (N1, N2)
    state = routing.create_index(
        DemoClusterState("u", persistent={EXCLUDE_NAME: "n2"}), IndexMeta("idx", "iu", 1, 0, 0)
    )
    state = start_all(routing.reroute(state, nodes, 0), nodes)
    stalled = start_all(shutdown.put(state, ShutdownRecord(N1.node_id, "REMOVE", "r", 1)), nodes)
    answer = status(stalled, N1.node_id)
    assert answer["status"] == "STALLED"
    assert answer["shard_migration"]["explanation"].startswith("shard [0] [primary] of index [idx] cannot move, see")
    assert answer["shard_migration"]["node_allocation_decision"]["node_allocation_decisions"][0]["node_name"] == "n2"
    # Two nodes, one replica: the copy on the leaving node has nowhere to go but a started copy elsewhere.
    pair = cluster(1, 1, nodes)
    waiting = start_all(shutdown.put(pair, ShutdownRecord(N2.node_id, "REMOVE", "r", 1)), nodes)
    answer = status(waiting, N2.node_id)
    assert answer["status"] == "COMPLETE"
    assert answer["shard_migration"]["explanation"] == (
        "[1] shards cannot be moved away from this node but have at least one copy on another node in the cluster"
    )


def test_a_restarting_nodes_replicas_wait_for_it_for_allocation_delay() -> None:
    nodes = (N1, N2, N3)
    state = cluster(1, 1)
    holder = next(c.node for c in state.shards[("idx", 0)].copies if not c.primary)
    away = tuple(n for n in nodes if n.node_id != holder)
    record = ShutdownRecord(holder or "", "RESTART", "upgrade", 1, allocation_delay="1m")
    state = shutdown.put(state, record)
    left = start_all(routing.reroute(state, away, 1_000), away, 1_000)
    replica = next(c for c in left.shards[("idx", 0)].copies if not c.primary)
    assert (replica.state, replica.unassigned_reason, replica.last_node) == (UNASSIGNED, "NODE_RESTARTING", holder)
    # Within the delay nobody else gets it; the node itself takes it back at once.
    assert start_all(left, away, 60_000) == left
    back = start_all(left, nodes, 30_000)
    assert all(c.state == STARTED for c in back.shards[("idx", 0)].copies)
    # After the delay it goes elsewhere; without a shutdown it would have at once.
    later = start_all(left, away, 61_001)
    assert all(c.state == STARTED for c in later.shards[("idx", 0)].copies)
    plain = start_all(routing.reroute(cluster(1, 1), away, 1_000), away, 1_000)
    assert all(c.state == STARTED for c in plain.shards[("idx", 0)].copies)


# ---------------------------------------------------------------------- processes


@pytest.fixture
def three(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("ELASTICSEARCH_VERSION", "8.15.1")
    names = ("n1", "n2", "n3")
    transports = {name: free_port() for name in names}
    http = {name: free_port() for name in names}
    processes: dict[str, DemoNodeProcess] = {}

    def start(name: str) -> DemoNodeProcess:
        settings = {
            "cluster.name": "sd",
            "node.name": name,
            "network.host": "127.0.0.1",
            "http.port": str(http[name]),
            "transport.port": str(transports[name]),
            "path.data": str(tmp_path / name / "data"),
            "discovery.seed_hosts": "[" + ", ".join(f"127.0.0.1:{p}" for p in transports.values()) + "]",
            "cluster.initial_master_nodes": "[n1, n2, n3]",
            "demo.relocation_delay": "0.2",
        }
        processes[name] = DemoNodeProcess(tmp_path / name, settings)
        processes[name].wait_http()
        return processes[name]

    for name in names:
        start(name)
    url = f"http://127.0.0.1:{http['n1']}"
    wait_until(
        lambda: requests.get(url + "/_cluster/health", timeout=5).json().get("number_of_nodes") == 3, 20, "3 nodes"
    )
    yield start, processes, url
    for process in processes.values():
        process.stop()


def test_remove_drains_a_node_and_the_record_survives_its_restart(three: Any) -> None:
    start, processes, url = three
    requests.put(url + "/idx", json={"settings": {"number_of_shards": 3, "number_of_replicas": 1}}, timeout=30)
    body = "".join(json.dumps({"index": {"_index": "idx", "_id": str(i)}}) + "\n{}\n" for i in range(100))
    requests.post(url + "/_bulk", data=body, headers={"Content-Type": "application/x-ndjson"}, timeout=30)
    wait_until(lambda: requests.get(url + "/_cluster/health", timeout=5).json()["status"] == "green", 20, "green")
    n3 = next(k for k, v in requests.get(url + "/_nodes", timeout=5).json()["nodes"].items() if v["name"] == "n3")

    bad = requests.put(f"{url}/_nodes/{n3}/shutdown", json={"type": "remove"}, timeout=10)
    assert (bad.status_code, bad.json()["error"]["reason"]) == (400, "Required [reason]")
    assert requests.get(url + "/_nodes/shutdown", timeout=5).json() == {"nodes": []}

    answer = requests.put(f"{url}/_nodes/{n3}/shutdown", json={"type": "remove", "reason": "scale down"}, timeout=10)
    assert answer.json() == {"acknowledged": True}

    def migrated() -> dict[str, Any] | None:
        nodes = requests.get(f"{url}/_nodes/{n3}/shutdown", timeout=5).json()["nodes"]
        return nodes[0] if nodes and nodes[0]["status"] == "COMPLETE" else None

    done = wait_until(migrated, 30, "shutdown COMPLETE")
    assert done["type"] == "REMOVE" and done["reason"] == "scale down"
    rows = requests.get(url + "/_cat/shards?format=json", timeout=5).json()
    assert not [r for r in rows if r["node"] == "n3"]
    assert requests.get(url + "/idx/_count", timeout=5).json()["count"] == 100

    # The record is cluster state: it survives the node's restart and every node answers it.
    assert processes.pop("n3").stop() == 0
    n3_process = start("n3")

    def recorded_on_n3() -> bool:
        answer = requests.get(n3_process.url + "/_nodes/shutdown", timeout=5)
        return answer.status_code == 200 and [n["node_id"] for n in answer.json()["nodes"]] == [n3]

    wait_until(recorded_on_n3, 20, "the record on the restarted node")
    assert requests.delete(f"{url}/_nodes/{n3}/shutdown", timeout=10).json() == {"acknowledged": True}
    missing = requests.delete(f"{url}/_nodes/{n3}/shutdown", timeout=10)
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "resource_not_found_exception"


def test_restart_keeps_the_replicas_unassigned_until_the_node_returns(three: Any) -> None:
    start, processes, url = three
    requests.put(url + "/idx", json={"settings": {"number_of_shards": 3, "number_of_replicas": 1}}, timeout=30)
    wait_until(lambda: requests.get(url + "/_cluster/health", timeout=5).json()["status"] == "green", 20, "green")
    requests.get(url + "/_cluster/health?wait_for_no_relocating_shards=true&timeout=10s", timeout=15)
    n3 = next(k for k, v in requests.get(url + "/_nodes", timeout=5).json()["nodes"].items() if v["name"] == "n3")
    on_n3 = sum(1 for r in requests.get(url + "/_cat/shards?format=json", timeout=5).json() if r["node"] == "n3")
    body = {"type": "restart", "reason": "upgrade", "allocation_delay": "10m"}
    assert requests.put(f"{url}/_nodes/{n3}/shutdown", json=body, timeout=10).status_code == 200
    status = requests.get(f"{url}/_nodes/{n3}/shutdown", timeout=5).json()["nodes"][0]
    assert (status["status"], status["allocation_delay"]) == ("COMPLETE", "10m")
    assert processes.pop("n3").stop() == 0
    health = wait_until(
        lambda: (h := requests.get(url + "/_cluster/health", timeout=5).json())["number_of_nodes"] == 2 and h,
        20,
        "n3 gone",
    )
    wait_until(
        lambda: requests.get(url + "/_cluster/health", timeout=5).json()["unassigned_shards"] == on_n3,
        10,
        f"{on_n3} unassigned copies",
    )
    # Given time, nothing is reallocated while n3 is away (the other two nodes could hold every copy).
    requests.get(url + "/_cluster/health?wait_for_status=green&timeout=2s", timeout=10)
    health = requests.get(url + "/_cluster/health", timeout=5).json()
    assert (health["status"], health["unassigned_shards"]) == ("yellow", on_n3)
    start("n3")
    wait_until(lambda: requests.get(url + "/_cluster/health", timeout=5).json()["status"] == "green", 30, "green")
