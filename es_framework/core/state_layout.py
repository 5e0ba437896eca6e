"""How a state document is cut into pieces that do not grow with the number of nodes (pure).

The engine hands the state store one JSON document (:mod:`es_framework.core.state_document`).
ZooKeeper keeps each znode (and each multi request) under about 1 MB, and rewriting every node for
one status update is O(N) bytes per update; so the store keeps the document as a small **cluster
part** (framework id, desired count, configuration, bootstrap, …) and one **entry per node id**.
This module is that cut, the way back, and the difference between two documents, with no I/O.

**Which fields are per node** is said in one place, :data:`PER_NODE_FIELDS`: a top-level field
that is either a list of objects carrying their node id (``nodes``: ``[{"node_id": 3, ...}]``) or
an object keyed by the node id in decimal (``pins``, ``volumes``: ``{"3": {...}}``). An entry
holds, for one id, its value in each of those fields where it has one::

    {"nodes": {"node_id": 3, ...}, "volumes": {...}, "pins": {...}}

so a field keyed by node id that a later schema adds goes with its node once it is named there.

The cut never loses or invents anything: :func:`merge_document` of :func:`split_document` is the
document, whatever it holds (tested with hypothesis). A listed field that does not have the
expected shape (another type, a key that is not a canonical decimal id, a list not sorted by id or
with an id twice) is simply not cut: it stays whole in the cluster part, and
:attr:`Layout.split_fields` says which fields were cut. Lists are rebuilt in ascending id order,
which is how :func:`~es_framework.core.state_document.state_to_json` writes them.

:func:`diff_layouts` says which node ids appeared, changed or disappeared and whether the cluster
part changed; :func:`ids_digest` is an order-independent fingerprint of a set of ids that a store
can keep up to date from the difference alone (O(changed)) and check on every read.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


class FieldShape(enum.Enum):
    """How a per-node field holds its values."""

    #: A list of objects, each with its integer node id under ``id_key``, in ascending id order.
    LIST_BY_ID = "list"
    #: An object whose keys are node ids in canonical decimal (``"3"``, not ``"03"``).
    MAP_BY_ID = "map"


@dataclass(frozen=True)
class PerNodeField:
    """A top-level field of the state document whose values belong to single node ids."""

    name: str
    shape: FieldShape
    id_key: str = "node_id"


#: Every top-level field whose values belong to one node id each. Add a field here when a schema
#: adds one (keyed by node id), and its values are stored with their node.
PER_NODE_FIELDS: tuple[PerNodeField, ...] = (
    PerNodeField("nodes", FieldShape.LIST_BY_ID),
    PerNodeField("pins", FieldShape.MAP_BY_ID),
    PerNodeField("volumes", FieldShape.MAP_BY_ID),
    PerNodeField("volume_removals", FieldShape.MAP_BY_ID),
    PerNodeField("disruptions", FieldShape.MAP_BY_ID),
    # A rollout's step per node id (its header is in the cluster part): no znode grows with N.
    PerNodeField("rollout_steps", FieldShape.MAP_BY_ID),
    # The node's bounded history (es_framework/core/node_history.py): in its own znode, so a failure
    # noted for one node rewrites that node's znode only.
    PerNodeField("node_history", FieldShape.MAP_BY_ID),
)

#: One node id's values: per-node field name -> that id's value in it.
Entry = Mapping[str, Any]


@dataclass(frozen=True)
class Layout:
    """A state document cut in pieces: ``cluster`` (the document without the cut fields), the names
    of the fields that were cut (``split_fields``, in :data:`PER_NODE_FIELDS` order) and one entry
    per node id (``entries``, keyed by the id in decimal: the znode or file name)."""

    cluster: Mapping[str, Any]
    split_fields: tuple[str, ...]
    entries: Mapping[str, Entry]


@dataclass(frozen=True)
class LayoutDiff:
    """What changed between two layouts: node ids whose entry appeared, changed (present in both,
    different) or disappeared, and whether the cluster part (or the set of cut fields) changed."""

    cluster_changed: bool
    appeared: frozenset[str]
    changed: frozenset[str]
    removed: frozenset[str]

    @property
    def empty(self) -> bool:
        return not (self.cluster_changed or self.appeared or self.changed or self.removed)


def node_key(node_id: int) -> str:
    """The key of a node id in :attr:`Layout.entries` (and the name of its znode)."""
    return str(node_id)


def is_node_key(key: object) -> bool:
    """True for the canonical decimal form of a non-negative integer (``"0"``, ``"17"``; not ``"007"``)."""
    return isinstance(key, str) and key.isascii() and key.isdigit() and str(int(key)) == key


def _list_ids(value: object, id_key: str) -> list[int] | None:
    """The ids of a list cut by id, or None when the list cannot be cut exactly."""
    if not isinstance(value, list):
        return None
    ids: list[int] = []
    for item in value:
        if not isinstance(item, Mapping):
            return None
        node_id = item.get(id_key)
        # bool is an int subclass; ``true`` is not a node id. Ascending order makes the rebuild exact.
        if type(node_id) is not int or node_id < 0 or (ids and node_id <= ids[-1]):
            return None
        ids.append(node_id)
    return ids


def _cuttable(field: PerNodeField, value: object) -> bool:
    if field.shape is FieldShape.LIST_BY_ID:
        return _list_ids(value, field.id_key) is not None
    return isinstance(value, Mapping) and all(is_node_key(k) for k in value)


def split_document(document: Mapping[str, Any]) -> Layout:
    """Cut ``document`` into its cluster part and one entry per node id (see the module docstring)."""
    cluster = dict(document)
    split: list[str] = []
    entries: dict[str, dict[str, Any]] = {}
    for field in PER_NODE_FIELDS:
        if field.name not in document or not _cuttable(field, document[field.name]):
            continue
        value = cluster.pop(field.name)
        split.append(field.name)
        if field.shape is FieldShape.LIST_BY_ID:
            for item in value:
                entries.setdefault(node_key(item[field.id_key]), {})[field.name] = item
        else:
            for key, item in value.items():
                entries.setdefault(key, {})[field.name] = item
    return Layout(cluster=cluster, split_fields=tuple(split), entries=entries)


def merge_document(layout: Layout) -> dict[str, Any]:
    """The document ``layout`` was cut from (:func:`split_document` backwards)."""
    document = dict(layout.cluster)
    ordered = sorted(layout.entries.items(), key=lambda kv: int(kv[0]))
    for field in PER_NODE_FIELDS:
        if field.name not in layout.split_fields:
            continue
        if field.shape is FieldShape.LIST_BY_ID:
            document[field.name] = [entry[field.name] for _, entry in ordered if field.name in entry]
        else:
            document[field.name] = {key: entry[field.name] for key, entry in ordered if field.name in entry}
    return document


def check_layout(layout: Layout) -> None:
    """Raise ``ValueError`` when ``layout`` could not have come from :func:`split_document` (as read
    from storage: an entry under a key that is not an id, a field that was not cut, a list item
    whose id is not its key, or a cut field that is also in the cluster part)."""
    known = {field.name: field for field in PER_NODE_FIELDS}
    for name in layout.split_fields:
        if name not in known:
            raise ValueError(f"{name!r} is not a per-node field")
        if name in layout.cluster:
            raise ValueError(f"{name!r} is both cut per node and in the cluster part")
    for key, entry in layout.entries.items():
        if not is_node_key(key):
            raise ValueError(f"entry key {key!r} is not a node id")
        if not isinstance(entry, Mapping) or not entry:
            raise ValueError(f"the entry of node {key} is empty or not an object")
        for name, value in entry.items():
            if name not in layout.split_fields:
                raise ValueError(f"the entry of node {key} has {name!r}, which is not cut per node")
            field = known[name]
            carried = value.get(field.id_key) if isinstance(value, Mapping) else None
            if field.shape is FieldShape.LIST_BY_ID and (type(carried) is not int or carried != int(key)):
                raise ValueError(f"the {name!r} item of node {key} does not carry {field.id_key} {key}")


def diff_layouts(old: Layout, new: Layout) -> LayoutDiff:
    """Which entries of ``new`` differ from ``old``, and whether the cluster part did."""
    appeared: set[str] = set()
    changed: set[str] = set()
    old_entries = old.entries
    for key, entry in new.entries.items():
        before = old_entries.get(key)
        if before is None:
            appeared.add(key)
        elif before != entry:
            changed.add(key)
    removed = {key for key in old_entries if key not in new.entries}
    return LayoutDiff(
        cluster_changed=old.cluster != new.cluster or old.split_fields != new.split_fields,
        appeared=frozenset(appeared),
        changed=frozenset(changed),
        removed=frozenset(removed),
    )


def apply_changes(
    old: Layout, cluster: Mapping[str, Any], entries: Mapping[str, Entry | None]
) -> tuple[Layout, LayoutDiff]:
    """``old`` with the cluster part ``cluster`` and the entries ``entries`` (node key -> its new
    entry, None: gone; every other entry as in ``old``), and what that changes. Compares only the
    entries given (O(len(entries)) comparisons); the cut fields stay ``old``'s."""
    stored = old.entries
    appeared: set[str] = set()
    changed: set[str] = set()
    removed: set[str] = set()
    merged = dict(stored)  # a copy of references: nothing unchanged is serialised or compared
    for key, entry in entries.items():
        if not is_node_key(key):
            raise ValueError(f"entry key {key!r} is not a node id")
        before = stored.get(key)
        if entry is None:
            if before is not None:
                removed.add(key)
                del merged[key]
        elif before is None:
            appeared.add(key)
            merged[key] = entry
        elif before != entry:
            changed.add(key)
            merged[key] = entry
    diff = LayoutDiff(
        cluster_changed=old.cluster != cluster,
        appeared=frozenset(appeared),
        changed=frozenset(changed),
        removed=frozenset(removed),
    )
    return Layout(cluster=cluster, split_fields=old.split_fields, entries=merged), diff


def diff_documents(old: Mapping[str, Any], new: Mapping[str, Any]) -> LayoutDiff:
    """:func:`diff_layouts` of the two documents' layouts."""
    return diff_layouts(split_document(old), split_document(new))


# --- a fingerprint of the set of node ids ------------------------------------------------------------

_DIGEST_MOD = 1 << 64


def _id_hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode("ascii"), digest_size=8).digest(), "big")


def ids_digest(keys: Iterable[str]) -> int:
    """An order-independent fingerprint of a set of node keys: the sum of their hashes modulo 2^64,
    so that adding or removing ids updates it in O(changed) (:func:`update_digest`)."""
    return sum(_id_hash(key) for key in keys) % _DIGEST_MOD


def update_digest(digest: int, added: Iterable[str], removed: Iterable[str]) -> int:
    """``ids_digest`` of a set after ``added`` joined it and ``removed`` left it."""
    return (digest + sum(_id_hash(k) for k in added) - sum(_id_hash(k) for k in removed)) % _DIGEST_MOD


# --- which changes may be stored ahead of the cluster part --------------------------------------------

#: The fields of a node record whose change may reach storage before the cluster part of the same
#: write (a store that cannot send a write in one request sends such changes in earlier steps, and
#: the cluster part last; see ``es_framework.shell.state_store.zookeeper_write``). Each is the
#: node's own news, not tied to a field of the cluster part: the task's state as Mesos reported it,
#: its health and version, the operator flag, and ``outdated`` (the cluster part's ``config`` says
#: why, but the flag only informs: nothing restarts on it). Anything else that changes in an entry
#: must be stored together with the cluster part: a record that appears or goes (the node id is
#: reserved or freed; the first launch decides ``bootstrap_masters``, a scale-down's end schedules
#: ``volume_removals``), another task or agent for the id, ``stopping`` (only valid against
#: ``desired_nodes``: a ``scale-down`` end with ``--volumeRetention delete`` removes the volumes),
#: ``cluster_uuid`` (the cluster part learns the uuid from it, and a re-sent update that finds it
#: recorded already is a duplicate, so the cluster part would never learn it), the volume set and
#: the pin. A field a later schema adds is in none of these lists, so it goes with the cluster part
#: until it is named here.
RECORD_FIELDS_AHEAD = frozenset(
    {
        "state",
        "seen_running",
        "needs_operator",
        "last_reason",
        "last_message",
        "updated_at",
        "outdated",
        "healthy",
        "started_at",
        "version",
    }
)

#: Per-node fields besides the record whose change may go ahead with the record's own news: the
#: node's history (:mod:`es_framework.core.node_history`), noted in the same write as the failure
#: or news it tells of. Nothing in the cluster part is decided from it; without it, a
#: reconciliation after a failover that finds many unreachable tasks UNKNOWN (each noted in its
#: history) would put them all in the last step, which must fit in one request.
ENTRY_FIELDS_AHEAD = frozenset({"node_history"})

_ABSENT = object()


def may_go_ahead(old: Entry | None, new: Entry | None) -> bool:
    """Whether the change of one node id's entry from ``old`` to ``new`` may be stored before the
    cluster part of its write: only when the id holds a node record before and after, and only
    fields in :data:`RECORD_FIELDS_AHEAD` of that record differ (the entry's other fields, the
    volume set and the pin, are unchanged, except the node's history: :data:`ENTRY_FIELDS_AHEAD`)."""
    if old is None or new is None or (set(old) ^ set(new)) - ENTRY_FIELDS_AHEAD:
        return False
    if any(old[name] != new[name] for name in old if name != "nodes" and name not in ENTRY_FIELDS_AHEAD):
        return False
    before, after = old.get("nodes"), new.get("nodes")
    if not isinstance(before, Mapping) or not isinstance(after, Mapping):
        return False
    fixed = (set(before) | set(after)) - RECORD_FIELDS_AHEAD
    return all(before.get(name, _ABSENT) == after.get(name, _ABSENT) for name in fixed)


def keys_ahead(old: Layout, new: Layout, diff: LayoutDiff) -> frozenset[str]:
    """The changed node ids of ``diff`` (``old`` → ``new``) whose change may be stored before the
    cluster part (:func:`may_go_ahead`); every other change goes with it. Nothing goes ahead when
    the set of cut fields changes."""
    if old.split_fields != new.split_fields:
        return frozenset()
    return frozenset(key for key in diff.changed if may_go_ahead(old.entries.get(key), new.entries.get(key)))
