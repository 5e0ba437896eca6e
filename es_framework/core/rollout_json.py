"""A rollout in the state document: a small **header** whose size does not grow with the number of
nodes, and one **step entry per node id** (its position in the order, its state), kept with that
node id (issue 13: no znode grows with N). Versioned; a stored value that is not well-formed or out
of bounds is refused with :class:`RolloutStateError` naming it, and nothing is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from es_framework.core.operations import OperatorError
from es_framework.core.predicates import PREDICATES, check_disabled
from es_framework.core.rollouts import MAX_RESTORE, MAX_TEXT, Rollout, RolloutReason, Step, StepState

#: Version of the persisted header and step entries.
ROLLOUT_SCHEMA = 1
MAX_NODE_ID = 1_000_000


class RolloutStateError(ValueError):
    """A stored rollout that is not well-formed; nothing was read."""


def header_to_json(rollout: Rollout) -> dict[str, Any]:
    return {
        "schema": ROLLOUT_SCHEMA,
        "id": rollout.id,
        "reason": rollout.reason.value,
        "created_at": rollout.created_at,
        "target": rollout.target,
        "paused": rollout.paused,
        "aborted": rollout.aborted,
        "restore": dict(sorted(rollout.restore.items())),
        "order_note": rollout.order_note,
        "force": rollout.force,
        # Absent in documents written before version upgrades were told apart (read as None).
        **({"upgrade": {"from": rollout.upgrade[0], "to": rollout.upgrade[1]}} if rollout.upgrade else {}),
        # Absent when none is disabled (and in documents written before predicates could be).
        **({"disabled_predicates": sorted(rollout.disabled_predicates)} if rollout.disabled_predicates else {}),
    }


def step_to_json(step: Step) -> dict[str, Any]:
    return {
        "schema": ROLLOUT_SCHEMA,
        "position": step.position,
        "master_eligible": step.master_eligible,
        "state": step.state.value,
        "since": step.since,
        "reason": step.reason,
        "attempts": step.attempts,
    }


def steps_to_json(rollout: Rollout) -> dict[str, dict[str, Any]]:
    """Node id (decimal) -> its step entry: what goes with each node id in the state."""
    return {str(i): step_to_json(rollout.steps[i]) for i in sorted(rollout.steps)}


def _get(raw: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str, *, optional: bool = False) -> Any:
    value = raw.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind not in (bool, (bool,))):
        raise RolloutStateError(f"{where}: '{key}' is missing or has the wrong type")
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise RolloutStateError(f"{where}: '{key}' is longer than {MAX_TEXT} characters")
    return value


def _schema(raw: object, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise RolloutStateError(f"{where}: not an object")
    if raw.get("schema") != ROLLOUT_SCHEMA or isinstance(raw.get("schema"), bool):
        raise RolloutStateError(f"{where}: schema {raw.get('schema')!r}; this version reads {ROLLOUT_SCHEMA}")
    return raw


def _enum(kind: type[StrEnum], value: str, where: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise RolloutStateError(f"{where}: unknown value {value!r}") from None


def rollout_from_json(header: object, steps: Mapping[str, object]) -> Rollout:
    """The rollout from its header and its step entries (node id in decimal -> entry)."""
    h = _schema(header, "rollout")
    restore_raw = _get(h, "restore", Mapping, "rollout")
    if len(restore_raw) > MAX_RESTORE or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in restore_raw.items()
    ):
        raise RolloutStateError(f"rollout: 'restore' must map at most {MAX_RESTORE} setting names to text or null")
    parsed: dict[int, Step] = {}
    for key, raw in steps.items():
        where = f"rollout step {key!r}"
        if not (isinstance(key, str) and key.isdigit() and not key.startswith("0") and int(key) <= MAX_NODE_ID):
            raise RolloutStateError(f"{where}: not a node id")
        s = _schema(raw, where)
        attempts = _get(s, "attempts", int, where)
        position = _get(s, "position", int, where)
        if attempts < 0 or not 0 <= position <= MAX_NODE_ID:
            raise RolloutStateError(f"{where}: 'attempts' or 'position' out of range")
        since = _get(s, "since", (int, float), where, optional=True)
        parsed[int(key)] = Step(
            node_id=int(key),
            position=position,
            master_eligible=_get(s, "master_eligible", bool, where),
            state=_enum(StepState, _get(s, "state", str, where), where),
            since=float(since) if since is not None else None,
            reason=_get(s, "reason", str, where, optional=True),
            attempts=attempts,
        )
    if len({s.position for s in parsed.values()}) != len(parsed):
        raise RolloutStateError("rollout: two steps share a position")
    return Rollout(
        id=_get(h, "id", str, "rollout"),
        reason=_enum(RolloutReason, _get(h, "reason", str, "rollout"), "rollout"),
        created_at=float(_get(h, "created_at", (int, float), "rollout")),
        target=_get(h, "target", str, "rollout"),
        steps=MappingProxyType(parsed),
        paused=_get(h, "paused", str, "rollout", optional=True),
        aborted=_get(h, "aborted", bool, "rollout"),
        restore=MappingProxyType(dict(restore_raw)),
        order_note=_get(h, "order_note", str, "rollout", optional=True),
        force=_get(h, "force", str, "rollout", optional=True),
        upgrade=_upgrade(h),
        disabled_predicates=_disabled(h),
    )


def _disabled(header: Mapping[str, Any]) -> frozenset[str]:
    """The header's ``disabled_predicates``: names an operator may disable, or refused."""
    raw = _get(header, "disabled_predicates", list, "rollout", optional=True)
    if raw is None:
        return frozenset()
    if len(raw) > len(PREDICATES) or not all(isinstance(name, str) for name in raw):
        raise RolloutStateError(f"rollout: 'disabled_predicates' must list at most {len(PREDICATES)} names")
    try:
        return check_disabled(raw)
    except OperatorError as refused:
        raise RolloutStateError(f"rollout: 'disabled_predicates': {refused.message}") from None


def _upgrade(header: Mapping[str, Any]) -> tuple[str, str] | None:
    """The header's ``upgrade`` (from, to), None when absent (an older document, or no version upgrade)."""
    raw = _get(header, "upgrade", Mapping, "rollout", optional=True)
    if raw is None:
        return None
    return (_get(raw, "from", str, "rollout upgrade"), _get(raw, "to", str, "rollout upgrade"))
