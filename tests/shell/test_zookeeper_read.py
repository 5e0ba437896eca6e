"""Reading the node znodes (``es_framework/shell/state_store/zookeeper_read.py``): multiRead against a
real ZooKeeper, the fallback to one request per znode where the server has none, decoding every
entry at once (and each alone when in doubt), and the store's encoded basis, which must compare and
write exactly as the decoded one did."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError, UnimplementedError
from kazoo.protocol.connection import _CONNECTION_DROP
from kazoo.protocol.states import KazooState

from es_framework.core.state_layout import Layout, apply_changes, split_document
from es_framework.shell.state_store import StateCorruptError
from es_framework.shell.state_store.base import encode
from es_framework.shell.state_store.zookeeper_read import (
    MULTI_READ_BATCH,
    EncodedEntries,
    NodeFetcher,
    apply_entry_changes,
    decode_entries,
    encoded,
)
from tests.core.test_state_layout import documents
from tests.shell.conftest import StoreFactory
from tests.shell.test_zookeeper_layout import document, root, stats


def test_multiread_fetches_every_node_and_reports_one_gone(raw: KazooClient, names: tuple[str, str]) -> None:
    base = f"{root(names)}/nodes"
    count = MULTI_READ_BATCH + 7  # more than one request
    for n in range(count):
        raw.create(f"{base}/{n}", json.dumps({"n": n}).encode(), makepath=True)
    raw.set(f"{base}/3", b'{"n":3}')
    fetcher = NodeFetcher(raw, timeout=10)
    paths = {str(n): f"{base}/{n}" for n in range(count)}
    found, vanished = fetcher.fetch({**paths, "gone": f"{base}/gone"})
    assert fetcher.multi_read is True
    assert vanished is True and set(found) == set(paths)
    assert found["5"] == (b'{"n": 5}', 0) and found["3"] == (b'{"n":3}', 1)
    assert fetcher.fetch(paths) == (found, False)


def test_without_multiread_each_znode_is_read_alone_from_then_on(raw: KazooClient, names: tuple[str, str]) -> None:
    base = f"{root(names)}/nodes"
    for n in range(3):
        raw.create(f"{base}/{n}", b"{}", makepath=True)
    fetcher = NodeFetcher(raw, timeout=10)
    calls: list[str] = []

    def refused(paths: Any) -> Any:
        calls.append("multi")
        raise UnimplementedError()

    fetcher._multi = refused  # type: ignore[method-assign]  # a server older than 3.6
    paths = {str(n): f"{base}/{n}" for n in range(3)}
    with pytest.raises(UnimplementedError):
        fetcher.fetch(paths)
    assert fetcher.multi_read is False
    assert fetcher.fetch(paths) == ({str(n): (b"{}", 0) for n in range(3)}, False)
    assert calls == ["multi"]


def test_a_store_reads_the_same_state_when_the_server_refuses_multiread(
    make_store: StoreFactory, raw: KazooClient, names: tuple[str, str]
) -> None:
    leader = make_store()
    assert leader.acquire_leadership(timeout=5)
    doc = document(5)
    leader.create(doc)
    reader = make_store()
    refused: list[int] = []
    multi = reader.layout.fetcher._multi

    def old_server(paths: Any) -> Any:
        if not refused:
            refused.append(1)
            # As ZooKeeper < 3.6 does: UNIMPLEMENTED, then it closes the connection (not the session).
            reader.client._call(_CONNECTION_DROP, reader.client.handler.async_result())
            raise UnimplementedError()
        return multi(paths)

    reader.layout.fetcher._multi = old_server  # type: ignore[method-assign]
    states: list[str] = []
    reader.client.add_listener(states.append)
    stored = reader.read()
    assert stored is not None and stored.document == doc and refused == [1]
    assert KazooState.SUSPENDED in states  # the connection did drop, and the read got through it
    assert reader.layout.fetcher.multi_read is False
    # The basis read this way is as good as any: a write of one changed node sends one node znode.
    before = stats(raw, names)
    changed = copy.deepcopy(doc)
    changed["nodes"][1]["state"] = "TASK_FAILED"
    assert reader.acquire_leadership(timeout=0.1) is False  # the first store still leads
    leader.close()
    assert reader.acquire_leadership(timeout=5)
    reader.write(changed, stored.version)
    after = stats(raw, names)
    assert {key for key in after if after[key] != before.get(key)} == {"cluster", "2"}


def test_another_error_of_one_read_is_raised(raw: KazooClient, names: tuple[str, str]) -> None:
    fetcher = NodeFetcher(raw, timeout=10)

    def denied(paths: Any) -> Any:
        raise NoAuthError()

    fetcher._multi = denied  # type: ignore[method-assign]
    with pytest.raises(NoAuthError):
        fetcher.fetch({"1": f"{root(names)}/nodes/1"})
    assert fetcher.multi_read is None


def test_entries_are_decoded_together_or_each_alone() -> None:
    def path(key: str) -> str:
        return f"/nodes/{key}"

    assert decode_entries({"1": b'{"a":1}', "2": b' {"b":[2]}\n'}, path) == {"1": {"a": 1}, "2": {"b": [2]}}
    with pytest.raises(StateCorruptError, match="/nodes/2 is not JSON"):
        decode_entries({"1": b'{"a":1}', "2": b'{"b":'}, path)
    with pytest.raises(StateCorruptError, match="/nodes/2 is not a JSON object"):
        decode_entries({"1": b'{"a":1}', "2": b"[1]"}, path)
    # Two objects in one znode join into the right count with an empty one: each alone says which.
    with pytest.raises(StateCorruptError, match="/nodes/1 is not JSON"):
        decode_entries({"1": b'{"a":1},{"b":2}', "2": b"{}"}, path)
    assert decode_entries({}, path) == {}


def test_encoded_entries_decode_afresh_and_follow_what_was_sent() -> None:
    entries = EncodedEntries({"1": b'{"nodes":{"node_id":1}}', "2": b'{"pins":{}}'})
    first = entries["1"]
    first["nodes"]["node_id"] = 99
    assert entries["1"] == {"nodes": {"node_id": 1}} and len(entries) == 2 and "2" in entries
    updated = encoded(entries, [("3", b"{}")], removed=["2"])
    assert dict(updated) == {"1": {"nodes": {"node_id": 1}}, "3": {}}
    assert dict(entries) == {"1": {"nodes": {"node_id": 1}}, "2": {"pins": {}}}
    assert encoded({"4": {"b": 1, "a": 2}}).raw == {"4": b'{"a":2,"b":1}'}


@given(documents(), documents(), st.data())
@settings(max_examples=100, deadline=None)
def test_applying_changes_to_encoded_entries_is_apply_changes(
    old: dict[str, Any], new: dict[str, Any], data: st.DataObject
) -> None:
    before, after = split_document(old), split_document(new)
    keys = sorted(set(before.entries) | set(after.entries))
    chosen = data.draw(st.lists(st.sampled_from(keys), unique=True) if keys else st.just([]))
    changes = {key: after.entries.get(key) for key in chosen}
    stored = Layout(before.cluster, before.split_fields, encoded(before.entries))
    got, diff = apply_entry_changes(stored, after.cluster, changes)
    want, want_diff = apply_changes(before, after.cluster, changes)
    assert diff == want_diff
    assert dict(got.entries) == dict(want.entries) and len(got.entries) == len(want.entries)
    assert all((key in got.entries) == (key in want.entries) for key in keys)


def test_the_basis_keeps_what_was_stored_as_bytes(make_store: StoreFactory, raw: KazooClient) -> None:
    store = make_store()
    assert store.acquire_leadership(timeout=5)
    doc = document(3)
    store.create(doc)
    stored = store.read()
    assert stored is not None
    basis = store._basis
    assert basis is not None and isinstance(basis.layout.entries, EncodedEntries)
    assert basis.layout.entries.raw["2"] == encode(dict(split_document(doc).entries["2"]))
    stored.document["nodes"][0]["state"] = "CHANGED BY THE CALLER"
    assert basis.layout.entries["1"]["nodes"]["state"] == "TASK_RUNNING"
