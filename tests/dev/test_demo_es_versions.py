"""The demo Elasticsearch node's versions (a development tool): which version it plays and reports, Elasticsearch's
wire compatibility and join rules, and the mixed-version allocation rule (a replica never goes to a node older
than its primary's)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from es_framework.dev.demo_es import explain, routing
from es_framework.dev.demo_es.cluster_state import (
    EXCLUDE_NAME,
    STARTED,
    UNASSIGNED,
    DemoClusterState,
    IndexMeta,
    NodeInfo,
    claims_master,
    state_from_json,
    to_json,
)
from es_framework.dev.demo_es.node import write_launcher
from es_framework.dev.demo_es.rest import media_type_problem
from es_framework.dev.demo_es.version import (
    DEMO_VERSION,
    EsVersion,
    VersionError,
    handshake_refusal,
    join_refusal,
    node_version,
    parse_version,
)
from es_framework.dev.ports import free_port
from tests.harness.demo_nodes import DemoNodeProcess, get, wait_until
from tests.harness.demo_routing import start_all

ALL = ("master", "data", "ingest")


def node(name: str, version: str = DEMO_VERSION, roles: tuple[str, ...] = ALL) -> NodeInfo:
    return NodeInfo(f"id-{name}", name, roles, f"h-{name}:9200", f"h-{name}:9300", version)


# ---------------------------------------------------------------------- which version


def test_versions_the_demo_can_play() -> None:
    assert str(parse_version("7.17.22")) == "7.17.22"
    assert str(parse_version("8.15.1")) == "8.15.1"
    assert parse_version("8").text == DEMO_VERSION
    assert parse_version(DEMO_VERSION).key() == (8, 0, 0)
    for bad in ("7.16.3", "7.9.0", "9.0.0", "6.8.0", "8.15", "8.x", "", "latest", "8.15.1-SNAPSHOT", "7"):
        with pytest.raises(VersionError, match="ELASTICSEARCH_VERSION"):
            parse_version(bad)


@given(st.text(max_size=12))
def test_any_text_is_a_playable_version_or_refused(text: str) -> None:
    try:
        version = parse_version(text)
    except VersionError:
        return
    assert version.major in (7, 8)
    assert version.major == 8 or version.minor == 17


def test_the_environment_chooses_and_the_default_stays() -> None:
    assert node_version({}).text == DEMO_VERSION
    assert str(node_version({"ELASTICSEARCH_VERSION": " 7.17.9 "})) == "7.17.9"
    with pytest.raises(VersionError):
        node_version({"ELASTICSEARCH_VERSION": "7.10.2"})


def test_compatibility_bounds_as_elasticsearch_reports_them() -> None:
    v8, v7 = parse_version("8.15.1"), parse_version("7.17.22")
    assert str(v8.minimum_wire_compatibility) == "7.17.0"
    assert v8.minimum_index_compatibility == "7.0.0"
    assert str(v7.minimum_wire_compatibility) == "6.8.0"
    assert v7.minimum_index_compatibility == "6.0.0-beta1"
    assert v8.is_compatible(v7) and v7.is_compatible(v8)
    old = EsVersion(7, 16, 3)
    assert not v8.is_compatible(old) and not old.is_compatible(v8)
    assert handshake_refusal(v8, old, "n9") == (
        "handshake with [n9] failed: remote node version [7.16.3] is incompatible with local node version [8.15.1]"
    )
    assert handshake_refusal(v8, v7, "n9") is None


def test_join_rules_of_elasticsearch() -> None:
    v = parse_version
    # Upgrades: a newer node joins an older or mixed cluster.
    assert join_refusal(v("8.15.1"), [v("7.17.22"), v("7.17.22")]) is None
    assert join_refusal(v("8.16.0"), [v("8.15.1")]) is None
    # A node older than every node of the cluster may not join (the cluster finished upgrading).
    assert join_refusal(v("7.17.22"), [v("8.15.1"), v("8.15.1")]) == (
        "node version [7.17.22] may not join a cluster comprising only nodes of version [8.15.1] or greater"
    )
    assert join_refusal(v("8.14.0"), [v("8.15.1")]) is not None
    # ... but it may while an older node is still there.
    assert join_refusal(v("7.17.22"), [v("7.17.22"), v("8.15.1")]) is None
    # Not wire-compatible with a member: refused, with Elasticsearch's message.
    assert join_refusal(EsVersion(7, 16, 0), [v("8.15.1")]) == (
        "node version [7.16.0] is not supported.The cluster contains nodes with version [8.15.1], which is "
        "incompatible."
    )
    assert join_refusal(v("8.0.0"), []) is None


def test_an_older_node_is_never_elected_by_a_cluster_that_upgraded() -> None:
    old, a, b = node("a0", "8.14.0"), node("n1", "8.15.1"), node("n2", "8.15.1")
    config = (old.node_id, a.node_id, b.node_id)
    members = (a, b)
    # a0 has the lowest name, yet the upgraded state's nodes would refuse its join: n1 is the candidate.
    assert not claims_master(old, [a, b], config, (), members)
    assert claims_master(a, [old, b], config, (), members)
    # Without the version rule a0 would have been the candidate.
    assert claims_master(old, [a, b], config, ())


def test_versions_travel_in_the_cluster_state() -> None:
    state = DemoClusterState("u", nodes=(node("n1", "7.17.22"), node("n2")))
    assert [n.version for n in state_from_json(to_json(state)).nodes] == ["7.17.22", DEMO_VERSION]
    document = to_json(state)
    del document["nodes"][0]["version"]  # written before versions were recorded
    assert state_from_json(document).nodes[0].version == DEMO_VERSION


def test_rest_compatibility_follows_the_major() -> None:
    v8 = "application/vnd.elasticsearch+json; compatible-with=8"
    v7 = "application/vnd.elasticsearch+json; compatible-with=7"
    assert media_type_problem(v8, None, 8) is None
    assert media_type_problem(v7, None, 8) is None
    assert media_type_problem(v7, None, 7) is None
    assert "must be either version 7 or 6" in (media_type_problem(v8, None, 7) or "")


# ---------------------------------------------------------------------- mixed-version allocation


def test_a_replica_never_goes_to_a_node_older_than_its_primary() -> None:
    new, old = node("n1", "8.16.0"), node("n2", "8.15.1")
    nodes = (new, old)
    state = routing.create_index(DemoClusterState("u"), IndexMeta("idx", "iu", 1, 1, 0))
    # The primary lands on the newer node (the older one is excluded while the index is created).
    state = replace(state, persistent={EXCLUDE_NAME: "n2"})
    state = start_all(routing.reroute(state, nodes, 0), nodes)
    assert state.shards[("idx", 0)].primary.node == new.node_id
    state = start_all(routing.reroute(replace(state, persistent={}), nodes, 0), nodes)
    replica = next(c for c in state.shards[("idx", 0)].copies if not c.primary)
    assert replica.state == UNASSIGNED
    answer = explain.explain(state, "idx", 0, False)
    refusal = next(d for n in answer["node_allocation_decisions"] if n["node_id"] == old.node_id for d in n["deciders"])
    assert refusal == {
        "decider": "node_version",
        "decision": "NO",
        "explanation": "cannot allocate replica shard to a node with version [8.15.1] since this is older than the "
        "primary version [8.16.0]",
    }
    # Once the older node is upgraded the replica goes there.
    upgraded = (new, replace(old, version="8.16.0"))
    state = start_all(routing.reroute(state, upgraded, 0), upgraded)
    assert all(c.state == STARTED for c in state.shards[("idx", 0)].copies)


def test_a_replica_goes_to_a_newer_node_and_a_primary_never_relocates_to_an_older_one() -> None:
    old, new = node("n1", "8.15.1"), node("n2", "8.16.0")
    nodes = (old, new)
    state = routing.create_index(
        DemoClusterState("u", persistent={EXCLUDE_NAME: "n2"}), IndexMeta("idx", "iu", 1, 1, 0)
    )
    state = start_all(routing.reroute(state, nodes, 0), nodes)
    state = start_all(routing.reroute(replace(state, persistent={}), nodes, 0), nodes)
    group = state.shards[("idx", 0)]
    assert group.primary.node == old.node_id
    assert all(c.state == STARTED for c in group.copies)  # newer replica: allowed
    # Draining n1: its primary (8.15.1) may only move to a node of its version or newer ...
    third = node("n3", "8.14.0")
    everyone = (old, new, third)
    drained = start_all(routing.reroute(replace(state, persistent={EXCLUDE_NAME: "n1"}), everyone, 0), everyone)
    group = drained.shards[("idx", 0)]
    # ... but never to n3 (older); n2 already holds the replica, so the primary stays on n1.
    assert group.primary.node == old.node_id
    assert third.node_id not in group.holders()
    answer = explain.explain(drained, "idx", 0, True)
    by_node = {n["node_id"]: n["deciders"] for n in answer["node_allocation_decisions"]}
    assert {
        "decider": "node_version",
        "decision": "NO",
        "explanation": "cannot relocate primary shard from a node with version [8.15.1] to a node with older "
        "version [8.14.0]",
    } in by_node[third.node_id]


# ---------------------------------------------------------------------- processes


@pytest.fixture
def spawn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    started: list[DemoNodeProcess] = []

    def start(name: str, version: str | None, transports: dict[str, int], http: int, **extra: str) -> DemoNodeProcess:
        if version is None:
            monkeypatch.delenv("ELASTICSEARCH_VERSION", raising=False)
        else:
            monkeypatch.setenv("ELASTICSEARCH_VERSION", version)
        settings = {
            "cluster.name": "mixed",
            "node.name": name,
            "network.host": "127.0.0.1",
            "http.port": str(http),
            "transport.port": str(transports[name]),
            "path.data": str(tmp_path / name / "data"),
            "discovery.seed_hosts": "[" + ", ".join(f"127.0.0.1:{p}" for p in transports.values()) + "]",
            **extra,
        }
        process = DemoNodeProcess(tmp_path / name, settings)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def test_get_root_and_nodes_report_the_configured_version(spawn: Any) -> None:
    http7, http8 = free_port(), free_port()
    transports = {"a": free_port(), "b": free_port()}
    a = spawn("a", "7.17.22", transports, http7, **{"discovery.type": "single-node"})
    b = spawn("b", None, transports, http8, **{"discovery.type": "single-node", "cluster.name": "other"})
    root = a.wait_http()
    assert root["version"]["number"] == "7.17.22"
    assert root["version"]["minimum_wire_compatibility_version"] == "6.8.0"
    assert root["version"]["minimum_index_compatibility_version"] == "6.0.0-beta1"
    nodes = wait_until(lambda: get(a.url + "/_nodes")[1]["nodes"], 10, "_nodes")
    assert [n["version"] for n in nodes.values()] == ["7.17.22"]
    default = b.wait_http()["version"]
    assert default["number"] == DEMO_VERSION  # unchanged default
    assert default["minimum_wire_compatibility_version"] == "7.17.0"
    assert default["minimum_index_compatibility_version"] == "7.0.0"
    # A 7.17 node refuses compatible-with=8 like a 7.x server.
    answer = requests.get(a.url + "/", headers={"Accept": "application/vnd.elasticsearch+json; compatible-with=8"})
    assert answer.status_code == 400
    assert answer.json()["error"]["type"] == "media_type_header_exception"


def test_a_version_the_demo_cannot_play_stops_it(spawn: Any) -> None:
    process = spawn("a", "7.10.2", {"a": free_port()}, free_port(), **{"discovery.type": "single-node"})
    assert process.process.wait(timeout=15) == 1
    assert "ELASTICSEARCH_VERSION='7.10.2'" in process.log()


def test_launcher_with_a_version_is_that_distribution(tmp_path: Path) -> None:
    launcher = write_launcher(tmp_path / "es", version="7.17.22")
    assert (tmp_path / "es" / "lib" / "elasticsearch-7.17.22.jar").exists()
    assert 'ELASTICSEARCH_VERSION="7.17.22"' in launcher.read_text()
    with pytest.raises(VersionError):
        write_launcher(tmp_path / "bad", version="6.8.0")
    assert "ELASTICSEARCH_VERSION" not in write_launcher(tmp_path / "plain").read_text()
    assert os.access(launcher, os.X_OK)


def test_an_upgraded_cluster_refuses_an_older_node_and_keeps_it_out(spawn: Any) -> None:
    names = ("n1", "n2", "n3")
    transports = {name: free_port() for name in names}
    http = {name: free_port() for name in names}
    masters = {"cluster.initial_master_nodes": "[n1, n2]"}
    n1 = spawn("n1", "8.15.1", transports, http["n1"], **masters)
    spawn("n2", "8.15.1", transports, http["n2"], **masters)
    n1.wait_http()

    def members() -> list[str]:
        return sorted(n["name"] for n in get(n1.url + "/_nodes")[1]["nodes"].values())

    wait_until(lambda: get(n1.url + "/_cluster/health")[0] == 200 and members() == ["n1", "n2"], 20, "n1 and n2")
    older = spawn("n3", "8.14.0", transports, http["n3"])
    older.wait_http()
    wait_until(lambda: "may not join a cluster comprising only nodes of version [8.15.1]" in n1.log(), 15, "refusal")
    # Still out, everywhere it matters: not a member, no cluster state, not elected by anybody.
    assert members() == ["n1", "n2"]
    nodes = get(n1.url + "/_cluster/state/nodes")[1]["nodes"]
    assert sorted(n["name"] for n in nodes.values()) == ["n1", "n2"]
    assert {n["version"] for n in nodes.values()} == {"8.15.1"}
    status, _ = get(older.url + "/_cluster/health?timeout=1s")
    assert status == 503
