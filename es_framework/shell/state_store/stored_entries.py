"""What the ZooKeeper store keeps of each node znode between writes: a digest of its bytes.

The store compares what a write would send with what is stored, so as to send only the node znodes
that differ. It used to keep each znode's bytes (about 1 KB): 11 MB of the scheduler's memory at
10,000 nodes. A 16-byte BLAKE2b digest of those bytes tells the same thing, because the store
writes each entry in one canonical encoding (:func:`~es_framework.shell.state_store.base.encode`:
sorted keys, no spaces): an entry is unchanged exactly when its encoding has the stored digest.

- 16 bytes, not Python's 64-bit ``hash``: an equal digest of different bytes would make the store
  skip a change. At 2^-128 per comparison that is not a risk anyone has to weigh.
- An entry stored in another encoding (written by hand, say) compares as changed and is written
  once more in the canonical one: a harmless extra write, never a skipped one.
- An entry's fields are needed in one place only: which changes of a write too large for one
  multi may be stored ahead of the cluster znode
  (:func:`~es_framework.core.state_layout.may_go_ahead` compares the old record with the new). The
  store then reads those znodes back (:func:`entries_read_back`), only for that write's changed ids,
  and uses a read only when its version and digest are the ones it kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from es_framework.core.state_layout import Layout, LayoutDiff, is_node_key
from es_framework.shell.state_store.base import decode_json

#: Bytes of BLAKE2b per node znode (see the module's docstring).
DIGEST_BYTES = 16


def digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=DIGEST_BYTES).digest()


class EntryNotKeptError(LookupError):
    """An entry of :class:`StoredEntries` was read: the store keeps only its digest (a bug: the
    store compares through :meth:`StoredEntries.holds`, and reads entries back from ZooKeeper)."""


class StoredEntries(Mapping[str, Mapping[str, Any]]):
    """Node key -> the entry stored in its znode, of which only the digest is kept: membership,
    iteration, size and :meth:`holds` work; reading an entry raises :class:`EntryNotKeptError`, so
    that nothing can compare against a stale or absent copy by mistake."""

    __slots__ = ("digests",)

    def __init__(self, digests: dict[str, bytes]) -> None:
        self.digests = digests

    @classmethod
    def of_bytes(cls, raw: Iterable[tuple[str, bytes]]) -> StoredEntries:
        return cls({key: digest(data) for key, data in raw})

    def __getitem__(self, key: str) -> Mapping[str, Any]:
        if key not in self.digests:
            raise KeyError(key)
        raise EntryNotKeptError(f"the state store keeps only a digest of node {key}'s entry")

    def __contains__(self, key: object) -> bool:
        return key in self.digests

    def __iter__(self) -> Iterator[str]:
        return iter(self.digests)

    def __len__(self) -> int:
        return len(self.digests)

    def holds(self, key: str, data: bytes) -> bool:
        """Whether node ``key``'s znode holds ``data`` (an entry's canonical encoding)."""
        return self.digests.get(key) == digest(data)

    def after(self, sent: Iterable[tuple[str, bytes]] = (), removed: Iterable[str] = ()) -> StoredEntries:
        """These entries without the keys ``removed``, with each ``(key, bytes)`` of ``sent`` stored."""
        digests = dict(self.digests)  # copies references (in C): O(changed) Python work
        for key in removed:
            digests.pop(key, None)
        digests.update((key, digest(data)) for key, data in sent)
        return StoredEntries(digests)


class OverlayEntries(Mapping[str, Mapping[str, Any]]):
    """``base`` with the entries of ``updates`` over it and the keys ``removed`` gone, without
    copying ``base`` (whose entries may not be readable: :class:`StoredEntries`)."""

    def __init__(
        self, base: Mapping[str, Mapping[str, Any]], updates: Mapping[str, Mapping[str, Any]], removed: AbstractSet[str]
    ) -> None:
        self.base, self.updates, self.removed = base, updates, removed

    def __getitem__(self, key: str) -> Mapping[str, Any]:
        if key in self.updates:
            return self.updates[key]
        if key in self.removed:
            raise KeyError(key)
        return self.base[key]

    def __contains__(self, key: object) -> bool:
        return key in self.updates or (key not in self.removed and key in self.base)

    def __iter__(self) -> Iterator[str]:
        yield from (key for key in self.base if key not in self.removed or key in self.updates)
        yield from (key for key in self.updates if key not in self.base)

    def __len__(self) -> int:  # O(changed): the cluster znode's count is taken on every write
        gone = sum(1 for key in self.removed if key in self.base and key not in self.updates)
        return len(self.base) - gone + sum(1 for key in self.updates if key not in self.base)


EncodeEntry = Callable[[str, Mapping[str, Any]], bytes]


def apply_entry_changes(
    old: Layout,
    stored: StoredEntries,
    cluster: Mapping[str, Any],
    entries: Mapping[str, Mapping[str, Any] | None],
    encode_entry: EncodeEntry,
) -> tuple[Layout, LayoutDiff, dict[str, bytes]]:
    """As :func:`es_framework.core.state_layout.apply_changes` of ``old`` (whose entries are
    ``stored``), without copying the stored entries: only the entries given are encoded and compared
    (O(changed)). Also returns the encoding of each appeared or changed entry (what the write sends)."""
    appeared: set[str] = set()
    changed: set[str] = set()
    removed: set[str] = set()
    updates: dict[str, Mapping[str, Any]] = {}
    payloads: dict[str, bytes] = {}
    for key, entry in entries.items():
        if not is_node_key(key):
            raise ValueError(f"entry key {key!r} is not a node id")
        present = key in stored
        if entry is None:
            if present:
                removed.add(key)
            continue
        data = encode_entry(key, entry)
        if not present:
            appeared.add(key)
        elif not stored.holds(key, data):
            changed.add(key)
        else:
            continue
        updates[key] = entry
        payloads[key] = data
    diff = LayoutDiff(
        cluster_changed=old.cluster != cluster,
        appeared=frozenset(appeared),
        changed=frozenset(changed),
        removed=frozenset(removed),
    )
    new = Layout(cluster=cluster, split_fields=old.split_fields, entries=OverlayEntries(stored, updates, removed))
    return new, diff, payloads


def diff_stored(
    old: Layout, stored: StoredEntries, new: Layout, encode_entry: EncodeEntry
) -> tuple[LayoutDiff, dict[str, bytes]]:
    """As :func:`es_framework.core.state_layout.diff_layouts` of ``old`` (whose entries are
    ``stored``) and ``new``, with the encoding of each appeared or changed entry of ``new``."""
    appeared: set[str] = set()
    changed: set[str] = set()
    payloads: dict[str, bytes] = {}
    for key, entry in new.entries.items():
        data = encode_entry(key, entry)
        if key not in stored:
            appeared.add(key)
        elif not stored.holds(key, data):
            changed.add(key)
        else:
            continue
        payloads[key] = data
    removed = {key for key in stored if key not in new.entries}
    diff = LayoutDiff(
        cluster_changed=old.cluster != new.cluster or old.split_fields != new.split_fields,
        appeared=frozenset(appeared),
        changed=frozenset(changed),
        removed=frozenset(removed),
    )
    return diff, payloads


def entries_read_back(
    stored: StoredEntries, versions: Mapping[str, int], found: Mapping[str, tuple[bytes, int]]
) -> dict[str, Mapping[str, Any]]:
    """The entries of ``found`` (key -> (bytes, znode version) as just read) that are still what the
    store kept: the version it last saw and the digest it kept. Any other is left out (the caller
    then treats it as unknown, which never lets a change go ahead)."""
    entries: dict[str, Mapping[str, Any]] = {}
    for key, (data, version) in found.items():
        if versions.get(key) != version or not stored.holds(key, data):
            continue
        entry = decode_json(data, f"the stored entry of node {key}")
        if isinstance(entry, dict):
            entries[key] = entry
    return entries
