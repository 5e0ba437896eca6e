"""The demo node's pure logic (a development tool): allocation, health, explain, election, settings, documents."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from es_framework.dev.demo_es import explain, routing
from es_framework.dev.demo_es.cluster_state import (
    EXCLUDE_NAME,
    INITIALIZING,
    RECOVERY_EMPTY,
    RECOVERY_EXISTING,
    RECOVERY_PEER,
    RELOCATING,
    STARTED,
    UNASSIGNED,
    ClusterSettingsError,
    DemoClusterState,
    IndexMeta,
    NodeInfo,
    claims_master,
    nest_settings,
    state_from_json,
    to_json,
    update_cluster_settings,
    voting_config,
)
from es_framework.dev.demo_es.documents import (
    Doc,
    Operation,
    Query,
    ShardStore,
    matches,
    parse_bulk,
    parse_query,
    shard_for_id,
)
from es_framework.dev.demo_es.errors import EsError
from es_framework.dev.demo_es.health import health as shard_health
from es_framework.dev.demo_es.rest import filter_path
from tests.harness.demo_routing import start_all

ALL = ("master", "data", "ingest")


def node(name: str, roles: tuple[str, ...] = ALL) -> NodeInfo:
    return NodeInfo(f"id-{name}", name, roles, f"h-{name}:9200", f"h-{name}:9300")


N1, N2, N3 = node("n1"), node("n2"), node("n3")


def cluster(shards: int = 1, replicas: int = 1, nodes: tuple[NodeInfo, ...] = (N1, N2, N3)) -> DemoClusterState:
    state = routing.create_index(DemoClusterState("uuid"), IndexMeta("idx", "iuuid", shards, replicas, 0))
    return routing.reroute(state, nodes, 0)


def copies(state: DemoClusterState, shard: int = 0) -> list[tuple[bool, str, str | None]]:
    group = state.shards[("idx", shard)]
    return sorted(((c.primary, c.state, c.node) for c in group.copies), key=str)


def load(state: DemoClusterState) -> dict[str, int]:
    counts: dict[str, int] = {}
    for group in state.shards.values():
        for copy in group.copies:
            if copy.node:
                counts[copy.node] = counts.get(copy.node, 0) + 1
    return counts


# ---------------------------------------------------------------------- allocation


def test_new_index_gets_empty_primaries_then_replicas_on_other_nodes() -> None:
    state = cluster(shards=3, replicas=1)
    # Replicas wait for their primary to be active.
    for group in state.shards.values():
        assert group.primary.state == INITIALIZING
        assert group.primary.recovery == RECOVERY_EMPTY
        assert [c.state for c in group.copies if not c.primary] == [UNASSIGNED]
    assert shard_health(state)["status"] == "red"
    state = start_all(state, (N1, N2, N3))
    assert shard_health(state)["status"] == "green"
    for group in state.shards.values():
        assert len(group.holders()) == 2  # never two copies on one node
        assert group.in_sync == group.holders()
    assert sorted(load(state).values()) == [2, 2, 2]


def test_replica_recovers_from_peer_and_health_is_yellow_meanwhile() -> None:
    state = cluster()
    state = routing.shard_started(state, "idx", 0, state.shards[("idx", 0)].primary.node or "")
    state = routing.reroute(state, (N1, N2, N3), 0)
    replica = next(c for c in state.shards[("idx", 0)].copies if not c.primary)
    assert (replica.state, replica.recovery) == (INITIALIZING, RECOVERY_PEER)
    health = shard_health(state)
    assert (health["status"], health["initializing_shards"], health["active_shards"]) == ("yellow", 1, 1)


def test_one_data_node_leaves_replica_unassigned_and_no_data_node_leaves_primary_unassigned() -> None:
    master_only = node("m", ("master",))
    state = start_all(cluster(nodes=(N1, master_only)), (N1, master_only))
    assert copies(state) == [(False, UNASSIGNED, None), (True, STARTED, "id-n1")]
    assert shard_health(state)["status"] == "yellow"
    state = routing.reroute(state, (master_only,), 5)
    assert shard_health(state) | {"active_shards_percent_as_number": 0} == {
        "status": "red",
        "active_primary_shards": 0,
        "active_shards": 0,
        "relocating_shards": 0,
        "initializing_shards": 0,
        "unassigned_shards": 2,
        "active_shards_percent_as_number": 0,
    }


def test_lost_primary_promotes_the_replica_and_a_new_replica_is_copied() -> None:
    state = start_all(cluster(), (N1, N2, N3))
    primary_node = state.shards[("idx", 0)].primary.node
    replica_node = next(c.node for c in state.shards[("idx", 0)].copies if not c.primary)
    survivors = tuple(n for n in (N1, N2, N3) if n.node_id != primary_node)
    state = routing.reroute(state, survivors, 7)
    group = state.shards[("idx", 0)]
    assert group.primary.node == replica_node
    assert group.primary.state == STARTED
    new = next(c for c in group.copies if not c.primary)
    assert new.state == INITIALIZING and new.recovery == RECOVERY_PEER and new.node not in (primary_node, replica_node)
    # The lost node's files may have missed writes: it is no longer in sync.
    assert primary_node not in group.in_sync and primary_node in group.stale


def test_last_copy_lost_is_red_and_comes_back_only_on_its_own_node() -> None:
    state = start_all(cluster(replicas=0), (N1, N2, N3))
    holder = state.shards[("idx", 0)].primary.node
    others = tuple(n for n in (N1, N2, N3) if n.node_id != holder)
    state = routing.reroute(state, others, 3)
    assert copies(state) == [(True, UNASSIGNED, None)]
    explanation = explain.explain(state, "idx", 0, True)
    assert explanation["can_allocate"] == "no_valid_shard_copy"
    assert explanation["unassigned_info"]["reason"] == "NODE_LEFT"
    # The node returns with the same path.data (same node id): the primary comes back from its own files.
    state = routing.reroute(state, (N1, N2, N3), 4)
    primary = state.shards[("idx", 0)].primary
    assert (primary.state, primary.node, primary.recovery) == (INITIALIZING, holder, RECOVERY_EXISTING)


def test_returning_node_is_preferred_for_the_replica() -> None:
    two = (N1, N2)
    state = start_all(cluster(replicas=1, nodes=two), two)
    replica_node = next(c.node for c in state.shards[("idx", 0)].copies if not c.primary)
    assert replica_node is not None
    survivor = next(n for n in two if n.node_id != replica_node)
    state = routing.reroute(state, (survivor,), 1)
    assert replica_node in state.shards[("idx", 0)].stale
    # The node comes back together with a new, emptier-named node: the replica goes where its files are.
    newcomer = node("a0")
    state = routing.reroute(state, (*two, newcomer), 2)
    replica = next(c for c in state.shards[("idx", 0)].copies if not c.primary)
    assert (replica.node, replica.state, replica.recovery) == (replica_node, INITIALIZING, RECOVERY_PEER)


def test_exclusion_moves_copies_through_relocating_and_keeps_them_active() -> None:
    state = start_all(cluster(shards=3, replicas=1), (N1, N2, N3))
    state = update_cluster_settings(state, {}, {EXCLUDE_NAME: "n3"})
    state = routing.reroute(state, (N1, N2, N3), 0)
    on_n3 = [c for g in state.shards.values() for c in g.copies if c.node == "id-n3"]
    assert on_n3 and all(c.state == RELOCATING for c in on_n3)
    health = shard_health(state)
    assert health["relocating_shards"] == len(on_n3)
    assert health["active_shards"] == 6  # a relocating copy still serves
    assert health["status"] == "green"
    state = start_all(state, (N1, N2, N3))
    assert "id-n3" not in load(state)
    assert shard_health(state)["status"] == "green"
    for group in state.shards.values():
        assert "id-n3" not in group.in_sync


def test_exclusion_that_leaves_no_room_keeps_the_copy_and_explains_why() -> None:
    state = start_all(cluster(replicas=1), (N1, N2, N3))
    state = update_cluster_settings(state, {"cluster.routing.allocation.exclude._name": "n2,n3"}, {})
    state = start_all(routing.reroute(state, (N1, N2, N3), 0), (N1, N2, N3))
    group = state.shards[("idx", 0)]
    assert sum(c.node == "id-n1" for c in group.copies) == 1
    stuck = next(c for c in group.copies if c.node != "id-n1")
    explanation = explain.explain(state, "idx", 0, stuck.primary)
    assert explanation["can_remain_on_current_node"] == "no"
    assert explanation["can_move_to_other_node"] == "no"
    reasons = {d["decider"] for n in explanation["node_allocation_decisions"] for d in n["deciders"]}
    assert reasons == {"same_shard", "filter"}


def test_unassigned_replica_explains_same_shard_and_filter() -> None:
    two = (N1, N2)
    state = start_all(cluster(replicas=1, nodes=two), two)
    state = update_cluster_settings(state, {}, {EXCLUDE_NAME: "n2"})
    state = start_all(routing.reroute(state, two, 0), two)
    # n2's copy cannot move (n1 holds the other) and stays; lose n1 and the replica has nowhere to go.
    state = routing.reroute(state, (N2,), 9)
    assert explain.first_unassigned(state) == ("idx", 0, False)
    explanation = explain.explain(state, "idx", 0, False)
    assert explanation["can_allocate"] == "no"
    (decision,) = explanation["node_allocation_decisions"]
    assert {d["decider"] for d in decision["deciders"]} == {"same_shard", "filter"}


def test_primary_with_in_sync_copy_only_on_an_excluded_node_is_still_brought_back() -> None:
    state = start_all(cluster(replicas=0, nodes=(N1,)), (N1,))
    state = routing.reroute(state, (), 1)
    state = update_cluster_settings(state, {EXCLUDE_NAME: "n1"}, {})
    state = routing.reroute(state, (N1, N2), 2)
    assert state.shards[("idx", 0)].primary.node == "id-n1"  # only n1 has the data
    state = start_all(state, (N1, N2))
    assert state.shards[("idx", 0)].primary.node == "id-n2"  # then it moves away


def test_throttling_limits_incoming_recoveries() -> None:
    one = (N1,)
    state = start_all(cluster(shards=4, replicas=0, nodes=one), one)
    state = routing.reroute(state, (N1, N2), 0)
    relocating = [c for g in state.shards.values() for c in g.copies if c.state == RELOCATING]
    # Rebalancing moves one copy at a time.
    assert len(relocating) == 1
    state = update_cluster_settings(state, {EXCLUDE_NAME: "n1"}, {})
    state = routing.reroute(state, (N1, N2), 0)
    relocating = [c for g in state.shards.values() for c in g.copies if c.state == RELOCATING]
    assert len(relocating) == routing.MAX_INCOMING_RECOVERIES
    state = start_all(state, (N1, N2))
    assert load(state) == {"id-n2": 4}


def test_rebalance_after_nodes_join_and_allocation_enable_none() -> None:
    state = start_all(cluster(shards=3, replicas=1, nodes=(N1, N2)), (N1, N2))
    assert load(state) == {"id-n1": 3, "id-n2": 3}
    n4 = node("n4")
    state = start_all(routing.reroute(state, (N1, N2, N3, n4), 0), (N1, N2, N3, n4), rounds=30)
    assert sorted(load(state).values()) in ([1, 1, 2, 2], [1, 2, 1, 2])
    frozen = update_cluster_settings(state, {}, {"cluster.routing.allocation.enable": "none"})
    frozen = routing.reroute(frozen, (N1, N2, N3), 0)
    assert shard_health(frozen)["unassigned_shards"] > 0
    assert shard_health(frozen)["initializing_shards"] == 0


def test_relocation_target_leaving_cancels_and_source_leaving_fails() -> None:
    state = start_all(cluster(replicas=0, nodes=(N1,)), (N1,))
    state = update_cluster_settings(state, {}, {EXCLUDE_NAME: "n1"})
    state = routing.reroute(state, (N1, N2), 0)
    assert copies(state) == [(True, RELOCATING, "id-n1")]
    assert routing.reroute(state, (N1,), 0).shards[("idx", 0)].primary.state == STARTED
    gone = routing.reroute(state, (N2,), 0)
    assert gone.shards[("idx", 0)].primary.state == UNASSIGNED
    assert "id-n2" in gone.shards[("idx", 0)].stale


def test_shard_failed_unassigns_the_copy_and_drops_it_from_in_sync() -> None:
    state = start_all(cluster(), (N1, N2, N3))
    replica = next(c.node for c in state.shards[("idx", 0)].copies if not c.primary)
    assert replica is not None
    failed = routing.shard_failed(state, "idx", 0, replica, 5)
    group = failed.shards[("idx", 0)]
    assert replica not in group.in_sync
    assert [c.unassigned_reason for c in group.copies if c.state == UNASSIGNED] == ["ALLOCATION_FAILED"]


def test_explain_without_unassigned_shards_raises_and_delete_index_clears() -> None:
    state = start_all(cluster(), (N1, N2, N3))
    assert explain.first_unassigned(state) is None
    with pytest.raises(explain.ExplainError):
        explain.explain(state, "other", 0, True)
    deleted = routing.delete_index(state, "idx")
    assert deleted.indices == {} and deleted.shards == {}


def test_set_replicas_adds_and_drops_copies() -> None:
    state = start_all(cluster(replicas=1), (N1, N2, N3))
    more = routing.set_replicas(state, "idx", 2, 0)
    assert len(more.shards[("idx", 0)].copies) == 3
    fewer = routing.set_replicas(state, "idx", 0, 0)
    assert [c.primary for c in fewer.shards[("idx", 0)].copies] == [True]


# ---------------------------------------------------------------------- state, settings, election


def test_cluster_state_round_trips_through_json() -> None:
    state = start_all(
        update_cluster_settings(cluster(shards=2), {EXCLUDE_NAME: "n9"}, {"demo.relocation_delay": 1}), (N1, N2, N3)
    )
    state = replace(state, voting_config=("id-n1",), voting_exclusions=(("id-n3", "n3"),))
    assert state_from_json(to_json(state)) == state


def test_cluster_settings_update_nested_flat_null_and_unknown() -> None:
    state = DemoClusterState("u")
    state = update_cluster_settings(state, {"cluster": {"routing": {"allocation": {"exclude": {"_name": "a,b"}}}}}, {})
    assert state.persistent == {EXCLUDE_NAME: "a,b"}
    state = update_cluster_settings(state, {}, {EXCLUDE_NAME: ["c", "d"]})
    assert state.setting(EXCLUDE_NAME) == "c,d"  # transient wins
    state = update_cluster_settings(state, {EXCLUDE_NAME: None}, {"cluster.routing.allocation.exclude.*": None})
    assert state.persistent == {} and state.transient == {}
    with pytest.raises(ClusterSettingsError, match=r"persistent setting \[cluster.nope\], not recognized"):
        update_cluster_settings(state, {"cluster.nope": 1}, {})
    with pytest.raises(ClusterSettingsError):
        update_cluster_settings(state, {"cluster.routing.allocation.enable": "sometimes"}, {})
    assert nest_settings({"a.b": "1", "a.c": "2"}) == {"a": {"b": "1", "c": "2"}}


def test_master_is_the_lowest_eligible_name_with_a_majority() -> None:
    data_only = node("a", ("data",))
    assert claims_master(N1, [N2, N3, data_only], (), ())
    assert not claims_master(N2, [N1, N3], (), ())
    config = ("id-n1", "id-n2", "id-n3")
    assert claims_master(N1, [N2], config, ())
    assert not claims_master(N1, [], config, ())  # alone after a restart: no majority
    # Excluded from voting: the next one takes over.
    assert claims_master(N2, [N1, N3], config, (("id-n1", "n1"),))
    assert not claims_master(N1, [N2, N3], config, (("id-n1", "n1"),))


def test_voting_config_is_odd_and_does_not_shrink_below_three_by_leaving() -> None:
    assert voting_config((), [N1, N2, N3], ()) == ("id-n1", "id-n2", "id-n3")
    assert voting_config(("id-n1", "id-n2", "id-n3"), [N1, N2], ()) == ("id-n1", "id-n2", "id-n3")
    n4, n5 = node("n4"), node("n5")
    five = voting_config((), [N1, N2, N3, n4, n5], ())
    assert len(five) == 5
    drained = voting_config(five, [N1, N2, N3, n4, n5], (("id-n3", "n3"), ("id-n4", "n4"), ("id-n5", "n5")))
    assert drained == ("id-n1",)  # two left: an even count leaves one out, as Elasticsearch does
    assert voting_config((), [N1, N2], (), master="id-n2") == ("id-n2",)  # never the master


# ---------------------------------------------------------------------- documents


def test_store_versions_seq_nos_create_conflict_and_delete(tmp_path: Path) -> None:
    store = ShardStore(tmp_path / "s")
    first = store.apply(Operation("index", "1", {"a": 1}), "idx")
    assert (first.result, first.status, first.doc and first.doc.version) == ("created", 201, 1)
    second = store.apply(Operation("index", "1", {"a": 2}), "idx")
    assert (second.result, second.status, second.doc and second.doc.seq_no) == ("updated", 200, 1)
    conflict = store.apply(Operation("index", "1", {"a": 3}, create=True), "idx")
    assert conflict.status == 409 and conflict.error is not None
    assert conflict.error.kind == "version_conflict_engine_exception"
    assert store.apply(Operation("delete", "1"), "idx").result == "deleted"
    assert store.apply(Operation("delete", "1"), "idx").status == 404
    assert store.apply(Operation("index", "1", {"a": 4}, create=True), "idx").result == "created"
    clash = store.apply(Operation("index", "2", {"a": "text"}), "idx")
    assert clash.status == 400 and clash.error is not None and clash.error.kind == "mapper_parsing_exception"
    store.save()
    reloaded = ShardStore(tmp_path / "s")
    assert reloaded.digest() == store.digest()
    doc = reloaded.get("1")
    assert doc is not None and doc.source == {"a": 4}


def test_merge_keeps_the_newest_by_seq_no_and_digest_tells_copies_apart(tmp_path: Path) -> None:
    replica = ShardStore(tmp_path / "r")
    replica.merge([Doc("a", {"x": 2}, 2, 5), Doc("b", None, 2, 6)])
    replica.merge([Doc("a", {"x": 1}, 1, 1), Doc("b", {"x": 1}, 1, 2)])  # older: ignored
    assert replica.get("a") is not None and replica.get("b") is None
    assert replica.max_seq_no == 6
    other = ShardStore(tmp_path / "o")
    other.merge([Doc("a", {"x": 2}, 2, 5)])
    assert other.digest() != replica.digest()
    other.merge([Doc("b", None, 2, 6)])
    assert other.digest() == replica.digest()


def test_queries() -> None:
    doc = Doc("7", {"user": {"name": "Kimchy Smith"}, "age": 30, "tags": ["a", "b"]}, 1, 0)
    assert matches(parse_query(None), doc)
    assert matches(parse_query({"query": {"term": {"age": 30}}}), doc)
    assert matches(parse_query({"query": {"term": {"tags.keyword": {"value": "b"}}}}), doc)
    assert not matches(parse_query({"query": {"term": {"age": 31}}}), doc)
    assert matches(parse_query({"query": {"match": {"user.name": "kimchy"}}}), doc)
    assert matches(parse_query({"query": {"match": {"user.name": {"query": "nobody smith"}}}}), doc)
    assert matches(parse_query(None, "user.name:smith"), doc)
    assert matches(parse_query(None, "kimchy"), doc)
    assert not matches(parse_query(None, "age:31"), doc)
    assert matches(Query("ids", value=("7",)), doc)
    with pytest.raises(EsError, match="unknown query"):
        parse_query({"query": {"fuzzy": {"a": "b"}}})


def test_bulk_parsing_and_shard_routing() -> None:
    body = b'{"index":{"_index":"a","_id":"1"}}\n{"x":1}\n{"delete":{"_id":"2"}}\n{"create":{}}\n{"y":2}\n'
    items = parse_bulk(body, "default")
    assert [(i.action, i.index, i.doc_id) for i in items] == [
        ("index", "a", "1"),
        ("delete", "default", "2"),
        ("create", "default", None),
    ]
    with pytest.raises(EsError, match="update"):
        parse_bulk(b'{"update":{"_index":"a","_id":"1"}}\n{"doc":{}}\n', None)
    with pytest.raises(EsError, match="index is missing"):
        parse_bulk(b'{"index":{"_id":"1"}}\n{}\n', None)
    spread = {shard_for_id(str(i), 3) for i in range(100)}
    assert spread == {0, 1, 2}
    assert shard_for_id("abc", 5) == shard_for_id("abc", 5)


def test_filter_path_like_elasticsearch() -> None:
    document = {
        "metadata": {"cluster_coordination": {"term": 1, "voting_config_exclusions": []}, "indices": {}},
        "a": 1,
    }
    assert filter_path(document, "metadata.cluster_coordination") == {
        "metadata": {"cluster_coordination": {"term": 1, "voting_config_exclusions": []}}
    }
    assert filter_path({"hits": {"hits": [{"_id": "1", "_source": {}}]}}, "hits.hits._id") == {
        "hits": {"hits": [{"_id": "1"}]}
    }
    assert filter_path(document, "a,metadata.*.term") == {"a": 1, "metadata": {"cluster_coordination": {"term": 1}}}
    assert filter_path(document, "nothing") == {}
