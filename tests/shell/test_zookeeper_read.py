"""Reading the node znodes (``es_framework/shell/state_store/zookeeper_read.py``): multiRead against a
real ZooKeeper, the fallback to one request per znode where the server has none, decoding every
entry at once (and each alone when in doubt), and the store's basis of digests, which must compare and
write exactly as the decoded one did."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError, UnimplementedError
from kazoo.protocol.connection import _CONNECTION_DROP
from kazoo.protocol.states import KazooState

from es_framework.core.state_layout import split_document
from es_framework.shell.state_store import StateCorruptError
from es_framework.shell.state_store.base import encode
from es_framework.shell.state_store.stored_entries import DIGEST_BYTES, StoredEntries
from es_framework.shell.state_store.zookeeper_read import (
    MULTI_READ_BATCH,
    NodeFetcher,
    decode_entries,
)
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


def test_the_basis_keeps_digests_of_what_was_stored(make_store: StoreFactory, raw: KazooClient) -> None:
    store = make_store()
    assert store.acquire_leadership(timeout=5)
    doc = document(3)
    store.create(doc)
    stored = store.read()
    assert stored is not None
    basis = store._basis
    assert basis is not None and isinstance(basis.layout.entries, StoredEntries)
    entries = split_document(doc).entries
    assert all(basis.stored.holds(key, encode(dict(entries[key]))) for key in ("1", "2", "3"))
    assert not basis.stored.holds("1", encode(dict(entries["2"])))
    assert all(len(d) == DIGEST_BYTES for d in basis.stored.digests.values())
    # What the caller changes in its document is not what is stored: the next write sends it.
    stored.document["nodes"][0]["state"] = "CHANGED BY THE CALLER"
    store.write(stored.document, stored.version)
    again = store.read()
    assert again is not None and again.document["nodes"][0]["state"] == "CHANGED BY THE CALLER"
