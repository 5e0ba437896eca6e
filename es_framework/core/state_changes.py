"""What a state write changes, per node id, without serialising what did not change (pure).

A status update replaces one node's record (:meth:`ClusterState.with_node`) and keeps every other
per-node value as the very same object, since the per-node maps hold frozen values. So the node ids
whose stored entry may differ between the state last stored and the next one are found by identity
(``is``) over the per-node maps: O(N) pointer checks at worst, no serialisation. Only those ids'
entries and the small cluster part are serialised (:func:`state_changes`). Values that are equal but
not identical (a state decoded again) only cost a needless entry, which the store compares with what
it holds and drops; identity never hides a change, because the values are immutable.

The result says the same as :func:`es_framework.core.state_layout.split_document` of
:func:`es_framework.core.state_document.state_to_json` of the new state, restricted to the changed
ids (tested with hypothesis in ``tests/core/test_state_changes.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import compress
from operator import is_not
from typing import Any

from es_framework.core.disruption_json import ledger_to_json
from es_framework.core.node_history import history_to_json
from es_framework.core.node_state import ClusterState
from es_framework.core.rollout_json import step_to_json
from es_framework.core.state_document import (
    cluster_to_json,
    pin_to_json,
    record_to_json,
    state_to_json,
    volume_set_to_json,
)
from es_framework.core.state_layout import PER_NODE_FIELDS, node_key
from es_framework.core.volume_removal_json import removal_to_json

#: The fields :func:`state_to_json` always writes per node id, all of them cut by ``split_document``.
SPLIT_FIELDS: tuple[str, ...] = tuple(field.name for field in PER_NODE_FIELDS)


def _per_node(state: ClusterState) -> dict[str, tuple[Mapping[int, Any], Callable[[int, Any], Any]]]:
    """Per-node field name -> (node id -> value, how one value is written)."""
    steps: Mapping[int, Any] = state.rollout.steps if state.rollout is not None else {}
    return {
        "nodes": (state.nodes, lambda _i, r: record_to_json(r)),
        "pins": (state.pins, lambda _i, p: pin_to_json(p)),
        "volumes": (state.volumes, lambda _i, v: volume_set_to_json(v)),
        "volume_removals": (state.volume_removals, lambda _i, r: removal_to_json(r)),
        "disruptions": (state.disruptions, lambda i, d: ledger_to_json({i: d})[str(i)]),
        "rollout_steps": (steps, lambda _i, s: step_to_json(s)),
        "node_history": (state.node_history, lambda _i, h: history_to_json(h)),
    }


def changed_node_ids(old: ClusterState, new: ClusterState) -> set[int]:
    """The node ids whose per-node values are not the same objects in ``old`` and ``new``."""
    changed: set[int] = set()
    before, after = _per_node(old), _per_node(new)
    for name in SPLIT_FIELDS:
        old_map, new_map = before[name][0], after[name][0]
        if old_map is new_map:
            continue
        # The same walk as a loop over ``new_map.items()`` with ``is not``, run in C (map, compress):
        # at 5,000 nodes it is most of what a write costs the engine.
        keys = list(new_map)
        differ = list(compress(keys, map(is_not, map(old_map.get, keys), new_map.values())))
        changed.update(differ)
        appeared = sum(1 for node_id in differ if node_id not in old_map)
        if len(old_map) > len(new_map) - appeared:  # some id of ``old_map`` is not in ``new_map``
            changed.update(old_map.keys() - new_map.keys())
    return changed


def node_entry(state: ClusterState, node_id: int) -> dict[str, Any] | None:
    """``node_id``'s entry as ``split_document`` cuts it (None: the id has no value in any field)."""
    entry: dict[str, Any] = {}
    for name, (values, to_json) in _per_node(state).items():
        if node_id in values:
            entry[name] = to_json(node_id, values[node_id])
    return entry or None


@dataclass(frozen=True)
class StateChanges:
    """One write as a store of one entry per node id takes it: the whole cluster part, the cut
    fields, and the entries of the node ids that may have changed (None: the id has no entry any
    more). ``document`` is the whole new document, for a store that keeps one document."""

    cluster: dict[str, Any]
    split_fields: tuple[str, ...]
    entries: dict[str, dict[str, Any] | None]
    document: Callable[[], dict[str, Any]]


def state_changes(old: ClusterState, new: ClusterState) -> StateChanges:
    """What writing ``new`` over the stored ``old`` changes (see the module docstring)."""
    ids = changed_node_ids(old, new)
    return StateChanges(
        cluster=cluster_to_json(new),
        split_fields=SPLIT_FIELDS,
        entries={node_key(node_id): node_entry(new, node_id) for node_id in sorted(ids)},
        document=lambda: state_to_json(new),
    )
