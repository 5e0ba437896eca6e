"""What the ZooKeeper store keeps of each node znode (``es_framework/shell/state_store/stored_entries.py``):
digests that must compare and write exactly as the decoded entries did, and never hand out an entry."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from es_framework.core.state_layout import Layout, apply_changes, diff_layouts, split_document
from es_framework.shell.state_store.base import encode
from es_framework.shell.state_store.stored_entries import (
    EntryNotKeptError,
    StoredEntries,
    apply_entry_changes,
    diff_stored,
    entries_read_back,
)
from tests.core.test_state_layout import documents


def encode_entry(key: str, entry: Any) -> bytes:
    return encode(dict(entry), what=f"node {key}")


def stored_of(entries: dict[str, Any]) -> StoredEntries:
    return StoredEntries.of_bytes((key, encode_entry(key, entry)) for key, entry in entries.items())


def test_stored_entries_hold_digests_and_never_hand_out_an_entry() -> None:
    entries = stored_of({"1": {"nodes": {"node_id": 1}}, "2": {"pins": {}}})
    assert len(entries) == 2 and "2" in entries and "3" not in entries and list(entries) == ["1", "2"]
    assert entries.holds("1", b'{"nodes":{"node_id":1}}')
    assert not entries.holds("1", b'{"nodes":{"node_id":2}}') and not entries.holds("3", b"{}")
    with pytest.raises(EntryNotKeptError, match="only a digest of node 1"):
        entries["1"]
    with pytest.raises(KeyError):
        entries["3"]
    updated = entries.after([("3", b"{}"), ("1", b'{"a":1}')], removed=["2"])
    assert sorted(updated) == ["1", "3"] and updated.holds("1", b'{"a":1}') and updated.holds("3", b"{}")
    assert sorted(entries) == ["1", "2"] and entries.holds("1", b'{"nodes":{"node_id":1}}')  # unchanged


def test_a_differently_encoded_stored_entry_compares_as_changed_never_as_equal() -> None:
    # Written by hand with spaces: the store rewrites it once in its own encoding, it never skips a change.
    entries = StoredEntries.of_bytes([("1", b'{"a": 1}')])
    old = Layout({}, ("nodes",), entries)
    _, diff, payloads = apply_entry_changes(old, entries, {}, {"1": {"a": 1}}, encode_entry)
    assert diff.changed == {"1"} and payloads == {"1": b'{"a":1}'}


@given(documents(), documents(), st.data())
@settings(max_examples=100, deadline=None)
def test_applying_changes_to_stored_entries_is_apply_changes(
    old: dict[str, Any], new: dict[str, Any], data: st.DataObject
) -> None:
    before, after = split_document(old), split_document(new)
    keys = sorted(set(before.entries) | set(after.entries))
    chosen = data.draw(st.lists(st.sampled_from(keys), unique=True) if keys else st.just([]))
    changes = {key: after.entries.get(key) for key in chosen}
    stored = stored_of(dict(before.entries))
    got, diff, payloads = apply_entry_changes(
        Layout(before.cluster, before.split_fields, stored), stored, after.cluster, changes, encode_entry
    )
    want, want_diff = apply_changes(before, after.cluster, changes)
    assert diff == want_diff
    assert set(got.entries) == set(want.entries) and len(got.entries) == len(want.entries)
    sent = diff.appeared | diff.changed
    assert set(payloads) == sent
    assert all(payloads[key] == encode_entry(key, want.entries[key]) for key in sent)
    assert all(got.entries[key] == want.entries[key] for key in sent)


@given(documents(), documents())
@settings(max_examples=100, deadline=None)
def test_diffing_against_stored_entries_is_diff_layouts(old: dict[str, Any], new: dict[str, Any]) -> None:
    before, after = split_document(old), split_document(new)
    stored = stored_of(dict(before.entries))
    diff, payloads = diff_stored(Layout(before.cluster, before.split_fields, stored), stored, after, encode_entry)
    assert diff == diff_layouts(before, after)
    assert payloads == {key: encode_entry(key, after.entries[key]) for key in diff.appeared | diff.changed}


def test_an_entry_read_back_counts_only_at_the_version_and_digest_kept() -> None:
    stored = StoredEntries.of_bytes([("1", b'{"a":1}'), ("2", b'{"b":2}'), ("3", b'{"c":3}')])
    versions = {"1": 4, "2": 4, "3": 4}
    found = {"1": (b'{"a":1}', 4), "2": (b'{"b":2}', 5), "3": (b'{"c":9}', 4), "4": (b"{}", 0)}
    # 2 was written since (another version), 3 holds other bytes, 4 was never kept: none of them counts.
    assert entries_read_back(stored, versions, found) == {"1": {"a": 1}}
