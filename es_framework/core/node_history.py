"""A node's history as the state keeps it: what happened to one node id, bounded, persisted (issue 12).

``GET /v1/nodes/<id>`` used to show only the engine's in-memory events, which a failover loses. The
state (:class:`~es_framework.core.node_state.ClusterState.node_history`) keeps, per node id, the
last :data:`HISTORY_KEPT` entries of what an operator looking at a node asks about: its launches,
its task failures (with Mesos' state and reason), the operator's commands, the planner's actions
(a restart, replace, scale-down drain or maintenance move queued or started), its rollout steps
(started, done, failed, skipped) and an automatic replacement. Routine news (``TASK_RUNNING``,
health reports) is not kept: a fresh cluster has one entry per node (its launch), so the state of
10,000 nodes grows by about one small entry each.

The history is a per-node field of the stored document (``node_history``, keyed by node id:
:data:`~es_framework.core.state_layout.PER_NODE_FIELDS`), so ZooKeeper keeps a node's history in
that node's own znode and a write that adds an entry rewrites that node's znode only. Entries are
immutable and a history is a tuple, replaced only when an entry is added: the other nodes' histories
stay the very same objects, which is how :mod:`es_framework.core.state_changes` finds what changed.

What gets noted, from which event, is :mod:`es_framework.core.history_notes`. This module is the
data, the bound and the JSON form; it imports nothing of the cluster state.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NamedTuple

#: Entries kept per node id, newest last; older ones are dropped.
HISTORY_KEPT = 20
#: Longest text kept in an entry (an executor's message may be long); longer text is cut with "…".
TEXT_KEPT = 160


class HistoryKind(StrEnum):
    """What an entry is about."""

    #: A task was launched for the node (the text says where).
    LAUNCH = "launch"
    #: The node's task failed, was lost, became unreachable or unknown (not asked for).
    FAILURE = "failure"
    #: The node's task ended because the scheduler stopped it on purpose (restart, replace, scale-down).
    STOPPED = "stopped"
    #: An operator's command that acted at once (forced restart or replace, gone, stop-drained).
    COMMAND = "command"
    #: The planner's ledger (:class:`~es_framework.core.disruption_ledger.Kind`): queued or started.
    RESTART = "restart"
    REPLACE = "replace"
    SCALE_DOWN = "scale-down"
    MAINTENANCE = "maintenance"
    #: A rollout step of the node (``rollout`` and ``step`` say which and what).
    ROLLOUT = "rollout"
    #: An automatic replacement after a permanent failure (``--permanentFailureTimeout``).
    REPLACEMENT = "replacement"


class HistoryEntry(NamedTuple):
    """One thing that happened to a node: when (the engine's clock), what kind, a short text, the
    node's task state then (None: it held no task), and for a rollout step the rollout's id and what
    the step did (``started``, ``done``, ``failed``, ``skipped``, ``aborted``).

    A named tuple rather than a frozen dataclass: a new leader reads one per node of a 10,000-node
    state, and a tuple is built about five times faster (immutable all the same)."""

    at: float
    kind: HistoryKind
    text: str
    state: str | None = None
    rollout: str | None = None
    step: str | None = None


#: One node id's history, oldest first, at most :data:`HISTORY_KEPT` entries.
NodeHistory = tuple[HistoryEntry, ...]


def short(text: str) -> str:
    """``text`` cut to :data:`TEXT_KEPT` characters (an entry stays small in the stored state)."""
    return text if len(text) <= TEXT_KEPT else text[: TEXT_KEPT - 1] + "…"


def appended(history: NodeHistory, entries: Iterable[HistoryEntry]) -> NodeHistory:
    """``history`` with ``entries`` added, cut to the newest :data:`HISTORY_KEPT`."""
    out = (*history, *entries)
    return out[-HISTORY_KEPT:] if len(out) > HISTORY_KEPT else out


def with_entries(
    histories: Mapping[int, NodeHistory], entries: Iterable[tuple[int, HistoryEntry]]
) -> Mapping[int, NodeHistory]:
    """``histories`` with each (node id, entry) added to its node's history. The same mapping object
    when there is nothing to add; otherwise a new one in which only the nodes given have new
    histories (every other history is the same object: a store writes only the changed nodes)."""
    added: dict[int, list[HistoryEntry]] = {}
    for node_id, entry in entries:
        added.setdefault(node_id, []).append(entry)
    if not added:
        return histories
    out = dict(histories)
    for node_id, new in added.items():
        out[node_id] = appended(out.get(node_id, ()), new)
    return MappingProxyType(out)


def without(histories: Mapping[int, NodeHistory], node_id: int) -> Mapping[int, NodeHistory]:
    """``histories`` without ``node_id``'s (the same object when it has none)."""
    if node_id not in histories:
        return histories
    return MappingProxyType({i: h for i, h in histories.items() if i != node_id})


# --- the stored form ---------------------------------------------------------------------------------


def entry_to_json(entry: HistoryEntry) -> dict[str, Any]:
    """An entry as the state document holds it; fields that are None are left out (small znodes)."""
    out: dict[str, Any] = {"at": entry.at, "kind": entry.kind.value, "text": entry.text}
    if entry.state is not None:
        out["state"] = entry.state
    if entry.rollout is not None:
        out["rollout"] = entry.rollout
    if entry.step is not None:
        out["step"] = entry.step
    return out


def history_to_json(history: NodeHistory) -> list[dict[str, Any]]:
    return [entry_to_json(entry) for entry in history]


#: Kind text -> the kind (one object per kind for every entry read).
_KINDS = {kind.value: kind for kind in HistoryKind}


def _optional(value: object, key: str, where: str) -> str | None:
    if value is None:
        return None
    if type(value) is not str:
        raise ValueError(f"{where}: '{key}' must be text or absent")
    # States and rollout ids repeat across thousands of nodes: one string object each.
    return sys.intern(value)


def history_from_json(raw: object, where: str) -> NodeHistory:
    """A stored history back; raises ``ValueError`` naming ``where`` when it is malformed. A longer
    list than :data:`HISTORY_KEPT` (written by hand) keeps its newest entries. Kept lean: a new
    leader reads one history per node id."""
    if not isinstance(raw, list):
        raise ValueError(f"{where} must be a list")
    out: list[HistoryEntry] = []
    for item in raw[-HISTORY_KEPT:]:
        if not isinstance(item, dict):
            raise ValueError(f"{where}: an entry is not an object")
        at, kind_text, text = item.get("at"), item.get("kind"), item.get("text")
        kind = _KINDS.get(kind_text) if isinstance(kind_text, str) else None
        if not isinstance(at, (int, float)) or isinstance(at, bool) or kind is None or type(text) is not str:
            raise ValueError(f"{where}: an entry needs a time 'at', a known 'kind' and a 'text': {item!r}")
        out.append(
            HistoryEntry(
                float(at),
                kind,
                text,
                _optional(item.get("state"), "state", where),
                _optional(item.get("rollout"), "rollout", where),
                _optional(item.get("step"), "step", where),
            )
        )
    return tuple(out)
