"""The rollout snapshots of the REST API (``GET /v1/rollouts``), built from
:class:`es_framework.core.rollouts.Rollout` and the finished rollouts' summaries; the routes are in
:mod:`es_framework.api.rollouts`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from es_framework.core.rollouts import Rollout


@dataclass(frozen=True)
class RolloutStepView:
    node_id: int
    position: int
    master_eligible: bool
    state: str
    since: float | None
    reason: str | None
    attempts: int


@dataclass(frozen=True)
class RolloutView:
    id: str
    reason: str
    #: running, paused, completed or aborted.
    state: str
    created_at: float
    finished_at: float | None
    elapsed_s: float
    done: int
    total: int
    paused: str | None
    order: tuple[int, ...]
    order_note: str | None
    #: The predicate that holds the next step back, and why (None when nothing does).
    blocked_predicate: str | None
    blocked_message: str | None
    #: ``{"from": ..., "to": ...}`` for a version upgrade, else None.
    upgrade: dict[str, str] | None
    #: Predicates the operator disabled for this rollout's steps, sorted (empty for a finished one).
    disabled_predicates: tuple[str, ...]
    steps: tuple[RolloutStepView, ...]


@dataclass(frozen=True)
class RolloutsView:
    current: RolloutView | None
    finished: tuple[RolloutView, ...]


def rollout_view(rollout: Rollout, now: float, blocked: tuple[tuple[int, str, str, str], ...] = ()) -> RolloutView:
    """The API's view of ``rollout``; ``blocked`` is the planner's last (node, kind, predicate,
    message) list, of which the first rollout entry is shown."""
    done, total = rollout.progress
    hold = next((b for b in blocked if b[1] == "rollout"), None)
    return RolloutView(
        id=rollout.id,
        reason=rollout.reason.value,
        state="aborted" if rollout.aborted else "paused" if rollout.paused is not None else "running",
        created_at=rollout.created_at,
        finished_at=None,
        elapsed_s=round(max(0.0, now - rollout.created_at), 3),
        done=done,
        total=total,
        paused=rollout.paused,
        order=rollout.order,
        order_note=rollout.order_note,
        blocked_predicate=hold[2] if hold is not None else None,
        blocked_message=f"node {hold[0]}: {hold[3]}" if hold is not None else None,
        upgrade={"from": rollout.upgrade[0], "to": rollout.upgrade[1]} if rollout.upgrade is not None else None,
        disabled_predicates=tuple(sorted(rollout.disabled_predicates)),
        steps=tuple(
            RolloutStepView(s.node_id, s.position, s.master_eligible, s.state.value, s.since, s.reason, s.attempts)
            for s in sorted(rollout.steps.values(), key=lambda s: s.position)
        ),
    )


def finished_view(entry: Mapping[str, Any]) -> RolloutView:
    """A ``rollout_history`` summary (:func:`es_framework.core.engine_rollouts.summary`) as a view."""
    created, finished = float(entry.get("created_at", 0.0)), entry.get("finished_at")
    return RolloutView(
        id=str(entry.get("id", "")),
        reason=str(entry.get("reason", "")),
        state=str(entry.get("outcome", "completed")),
        created_at=created,
        finished_at=float(finished) if finished is not None else None,
        elapsed_s=round(max(0.0, float(finished or created) - created), 3),
        done=int(entry.get("done", 0)),
        total=int(entry.get("total", 0)),
        paused=entry.get("note"),
        order=(),
        order_note=None,
        blocked_predicate=None,
        blocked_message=None,
        upgrade=None,
        disabled_predicates=(),
        steps=(),
    )
