"""Writing only the changed node entries (``ZooKeeperStateStore.write_changes``, the engine's
``EngineStore.save_changes``) against a real ZooKeeper: an unchanged write sends nothing, one changed
node sets exactly its znode and the cluster znode, deletions and new ids keep the count and digest
right, and the compare-and-set and the fencing are those of a whole write."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient

from es_framework.app.store import EngineStore
from es_framework.core.engine_state import StoreConflictError
from es_framework.core.node_state import ClusterState, TaskState
from es_framework.core.state_changes import state_changes
from es_framework.core.state_document import state_to_json
from es_framework.core.state_layout import split_document
from es_framework.shell.state_store import FileStateStore, LeadershipLostError, StateConflictError
from tests.core.test_state_changes import base
from tests.shell.conftest import StoreFactory
from tests.shell.test_zookeeper_layout import document, legacy, root, stats


def parts(doc: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    layout = split_document(doc)
    return dict(layout.cluster), layout.split_fields


def leading_with(make_store: StoreFactory, nodes: int) -> tuple[Any, dict[str, Any]]:
    """A store that holds the leader lock and has just created a state document of ``nodes`` nodes."""
    store = make_store()
    assert store.acquire_leadership(timeout=5)
    doc = document(nodes)
    store.create(doc)
    return store, doc


def test_an_unchanged_write_sends_nothing(make_store: StoreFactory, raw: KazooClient, names: tuple[str, str]) -> None:
    store, doc = leading_with(make_store, 5)
    before = stats(raw, names)
    cluster, split = parts(doc)
    same = {"3": {"nodes": doc["nodes"][2], "volumes": doc["volumes"]["3"]}}
    assert store.write_changes(cluster, split, same, 0) == 0
    assert store.write_changes(cluster, split, {}, 0) == 0
    assert stats(raw, names) == before


def test_one_changed_node_sets_its_znode_and_the_cluster_znode_only(
    make_store: StoreFactory, raw: KazooClient, names: tuple[str, str]
) -> None:
    store, doc = leading_with(make_store, 5)
    before = stats(raw, names)
    doc["nodes"][2]["state"] = "TASK_KILLED"
    cluster, split = parts(doc)
    assert (
        store.write_changes(cluster, split, {"3": {"nodes": doc["nodes"][2], "volumes": {"driver": "rexray"}}}, 0) == 1
    )
    after = stats(raw, names)
    assert {k for k in after if after[k] != before[k]} == {"cluster", "3"}
    current = make_store().read()
    assert current is not None and current.version == 1 and current.document == doc


def test_a_freed_and_a_new_id_keep_the_count_and_digest(
    make_store: StoreFactory, raw: KazooClient, names: tuple[str, str]
) -> None:
    store, doc = leading_with(make_store, 5)
    before = stats(raw, names)
    new = copy.deepcopy(doc)
    new["nodes"] = [*new["nodes"][:4], {"node_id": 6, "state": "TASK_STAGING", "generation": 0}]
    del new["volumes"]["5"]
    new["desired_nodes"] = 6
    cluster, split = parts(new)
    assert store.write_changes(cluster, split, {"5": None, "6": {"nodes": new["nodes"][4]}, "9": None}, 0) == 1
    after = stats(raw, names)
    assert {k for k in set(after) | set(before) if after.get(k) != before.get(k)} == {"cluster", "5", "6"}
    current = make_store().read()  # the count and digest in the cluster znode match, or this raises
    assert current is not None and current.document == new


def test_a_stale_version_is_a_conflict_and_writes_nothing(
    make_store: StoreFactory, raw: KazooClient, names: tuple[str, str]
) -> None:
    first, second = make_store(), make_store()
    doc = document(3)
    first.create(doc)
    other = copy.deepcopy(doc)
    other["nodes"][1]["state"] = "TASK_FAILED"
    assert second.write(other, 0).version == 1
    before = stats(raw, names)
    doc["nodes"][0]["state"] = "TASK_FAILED"  # another node: only the version tells them apart
    cluster, split = parts(doc)
    with pytest.raises(StateConflictError):
        first.write_changes(cluster, split, {"1": {"nodes": doc["nodes"][0], "volumes": doc["volumes"]["1"]}}, 0)
    assert stats(raw, names) == before


def test_a_store_whose_lock_znode_is_gone_cannot_write_changes(
    make_store: StoreFactory, raw: KazooClient, names: tuple[str, str]
) -> None:
    leader = make_store()
    assert leader.acquire_leadership(timeout=5)
    doc = document(3)
    leader.create(doc)
    before = stats(raw, names)
    raw.delete(f"{root(names)}/leader/{raw.get_children(f'{root(names)}/leader')[0]}")
    doc["nodes"][0]["state"] = "TASK_LOST"
    cluster, split = parts(doc)
    with pytest.raises(LeadershipLostError, match="lock znode"):
        leader.write_changes(cluster, split, {"1": {"nodes": doc["nodes"][0], "volumes": doc["volumes"]["1"]}}, 0)
    assert stats(raw, names) == before


def test_layout_1_or_other_cut_fields_are_left_to_a_whole_write(
    make_store: StoreFactory, raw: KazooClient, names: tuple[str, str]
) -> None:
    doc = document(3)
    legacy(raw, names, doc)
    bystander = make_store()  # does not lead: reads layout 1 and does not migrate it
    assert bystander.read() is not None
    cluster, split = parts(doc)
    assert bystander.write_changes(cluster, split, {}, 0) is None
    leader = make_store()
    assert leader.acquire_leadership(timeout=5)
    migrated = leader.read()
    assert migrated is not None and migrated.version == 1
    before = stats(raw, names)
    assert leader.write_changes(cluster, ("nodes",), {}, 1) is None
    assert leader.write_changes(cluster, split, {}, 1) == 1
    assert stats(raw, names) == before


def test_the_engine_store_writes_a_state_change_as_its_changed_node(
    make_store: StoreFactory, raw: KazooClient, names: tuple[str, str]
) -> None:
    store = make_store()
    assert store.acquire_leadership(timeout=5)
    engine_store = EngineStore(store)
    old: ClusterState = base(5)
    version = engine_store.save(state_to_json(old), EngineStore.NO_DOCUMENT)
    before = stats(raw, names)
    new = old.with_node(3, replace(old.nodes[3], state=TaskState.RUNNING, seen_running=True))
    version = engine_store.save_changes(state_changes(old, new), version)
    after = stats(raw, names)
    assert {k for k in after if after[k] != before[k]} == {"cluster", "3"}
    assert engine_store.load() == (state_to_json(new), version)
    freed = new.with_node(4, None)
    version = engine_store.save_changes(state_changes(new, freed), version)
    assert "4" not in raw.get_children(f"{root(names)}/nodes")
    assert engine_store.load() == (state_to_json(freed), version)
    with pytest.raises(StoreConflictError):
        engine_store.save_changes(state_changes(new, freed), version - 1)


def test_the_file_store_takes_the_changes_as_the_whole_document(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path, "elasticsearch", "mesos-ha")
    store.start()
    try:
        assert store.acquire_leadership(timeout=5)
        engine_store = EngineStore(store)
        old = base(3)
        version = engine_store.save(state_to_json(old), EngineStore.NO_DOCUMENT)
        new = old.with_node(2, None)
        version = engine_store.save_changes(state_changes(old, new), version)
        assert engine_store.load() == (state_to_json(new), version)
        with pytest.raises(StoreConflictError):
            engine_store.save_changes(state_changes(old, new), version - 1)
    finally:
        store.close()
