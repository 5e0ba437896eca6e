"""Rollouts: restarting the nodes one by one with a new task definition, as pure data and transitions.

A **rollout** is the ordered list of nodes to restart, created by a configuration change, an
operator's restart request or a new executor/contract version. It never takes a node down by
itself: :mod:`es_framework.core.disruption` decides when the next step may start (counting every
other disruptive action), and the scheduler performs it. This module says *which* node comes next
and how a step moves on:

``pending`` → ``draining`` (shutdown prepared: node shutdown ``type: restart``, or allocation
``primaries`` + flush on versions without it) → ``restarting`` (its task stopped; it comes back
with the same id, agent and volumes) → ``waiting-healthy`` (its new task runs; waiting for the
cluster to settle) → ``done``. A step that does not get there ends ``failed`` and pauses the whole
rollout with the reason; it never moves on while a node is down. An operator may ``skip`` a node
(loudly: it keeps its old configuration).

Order (after ECK's ``one_master_at_a_time`` and ``do_not_delete_last_master_if_all_master_ineligible
_nodes_are_not_upgraded`` predicates, elastic/cloud-on-k8s ``docs/reference/upgrade-predicates.md``):
data-only nodes first, then the master-eligible ones one at a time, the elected master last, so
that the cluster changes its elected master once. When the elected master is unknown, the
master-eligible nodes go last in id order and :attr:`Rollout.order_note` says so.

Every transition returns ``(new rollout, actions)`` or raises
:class:`~es_framework.core.operations.OperatorError` (with the HTTP status the API answers) and
changes nothing. Allocation settings a step changes are recorded with their previous value
(:func:`record_setting`) *before* the change is sent, so whoever leads next can restore them; every
way out of a step (done, failed, abort) returns :class:`RestoreSettings`.

The persisted form is :mod:`es_framework.core.rollout_json`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from es_framework.core.bootstrap import is_master_eligible
from es_framework.core.node_state import ClusterState
from es_framework.core.operations import OperatorError
from es_framework.core.predicates import check_disabled
from es_framework.core.rollout_model import (
    FINISHED_STEPS,
    IN_PROGRESS,
    MAX_RESTORE,
    MAX_TEXT,
    Rollout,
    RolloutReason,
    Step,
    StepState,
)

# The data lives in rollout_model (the cluster state holds a rollout); it is this module's interface too.
__all__ = [
    "FINISHED_STEPS",
    "IN_PROGRESS",
    "MAX_RESTORE",
    "MAX_TEXT",
    "Action",
    "ClearShutdown",
    "RestoreSettings",
    "Rollout",
    "RolloutReason",
    "Step",
    "StepState",
    "abort",
    "advance",
    "candidates",
    "cleanup_after_failover",
    "disable_predicates",
    "drop_leaving",
    "grant_force",
    "pause",
    "plan_rollout",
    "record_setting",
    "resume",
    "skip",
    "start_step",
    "step_done",
    "step_failed",
    "stuck_steps",
]

#: The only moves :func:`advance` makes.
_NEXT = {StepState.DRAINING: StepState.RESTARTING, StepState.RESTARTING: StepState.WAITING_HEALTHY}


@dataclass(frozen=True)
class RestoreSettings:
    """Put these cluster settings back (None: remove the setting)."""

    settings: tuple[tuple[str, str | None], ...]


@dataclass(frozen=True)
class ClearShutdown:
    """Delete the node-shutdown record of this node, if one was registered."""

    node_id: int


Action = RestoreSettings | ClearShutdown


def plan_rollout(
    state: ClusterState,
    reason: RolloutReason,
    now: float,
    elected_master: int | None,
    *,
    master_nodes: int,
    target: str,
    nodes: Iterable[int] | None = None,
) -> Rollout:
    """A new rollout over ``nodes`` (default: the outdated kept nodes for a configuration change,
    every kept node otherwise), in rollout order. Ids above the desired count are leaving: never
    restarted."""
    if nodes is None:
        chosen = [
            i
            for i, r in state.nodes.items()
            if i <= state.desired_nodes and (r.outdated or reason is not RolloutReason.CONFIGURATION)
        ]
    else:
        chosen = [i for i in nodes if i in state.nodes and i <= state.desired_nodes]
    ids = sorted(set(chosen))
    data = [i for i in ids if not is_master_eligible(i, master_nodes)]
    masters = [i for i in ids if is_master_eligible(i, master_nodes)]
    note = None
    if elected_master in masters:
        masters = [i for i in masters if i != elected_master] + [elected_master]
    elif masters:
        note = (
            "the elected master is unknown: master-eligible nodes go last in id order"
            if elected_master is None
            else f"the elected master (node {elected_master}) is not in this rollout: master-eligible nodes go "
            "last in id order"
        )
    order = data + masters
    steps = {i: Step(i, pos, is_master_eligible(i, master_nodes), since=now) for pos, i in enumerate(order)}
    return Rollout(
        id=f"{reason.value}-{int(now * 1000)}",
        reason=reason,
        created_at=now,
        target=target,
        steps=MappingProxyType(steps),
        order_note=note,
    )


def candidates(rollout: Rollout) -> tuple[int, ...]:
    """Pending nodes that the order lets start now (the planner takes the first it may): any
    pending data-only node while no master-eligible step runs; a master-eligible node only when
    every step before it is finished and none runs. Nothing while paused, aborted or finished."""
    if rollout.paused is not None or rollout.finished:
        return ()
    running = [rollout.steps[i] for i in rollout.in_progress]
    if any(s.master_eligible for s in running):
        return ()
    out: list[int] = []
    for node_id in rollout.order:
        step = rollout.steps[node_id]
        if step.state is StepState.FAILED:
            return tuple(out)
        if step.state is not StepState.PENDING:
            continue
        if not step.master_eligible:
            out.append(node_id)
            continue
        # A master-eligible node: every earlier step finished and nothing running.
        earlier = [s for s in rollout.steps.values() if s.position < step.position]
        if not running and not out and all(s.state in FINISHED_STEPS for s in earlier):
            out.append(node_id)
        break
    return tuple(out)


def _step(rollout: Rollout, node_id: int) -> Step:
    step = rollout.steps.get(node_id)
    if step is None:
        raise OperatorError(404, f"rollout {rollout.id} has no step for node {node_id}")
    return step


def _with(rollout: Rollout, step: Step, **changes: Any) -> Rollout:
    return replace(rollout, steps=MappingProxyType({**rollout.steps, step.node_id: step}), **changes)


def _restore(rollout: Rollout) -> tuple[Action, ...]:
    return (RestoreSettings(tuple(sorted(rollout.restore.items()))),) if rollout.restore else ()


def _running(rollout: Rollout) -> None:
    if rollout.aborted:
        raise OperatorError(409, f"rollout {rollout.id} was aborted")
    if rollout.finished:
        raise OperatorError(409, f"rollout {rollout.id} is finished")


def start_step(rollout: Rollout, node_id: int, now: float) -> tuple[Rollout, tuple[Action, ...]]:
    """Node ``node_id`` starts draining (the planner allowed it). Uses up a ``force`` grant."""
    _running(rollout)
    if rollout.paused is not None:
        raise OperatorError(409, f"rollout {rollout.id} is paused: {rollout.paused}")
    step = _step(rollout, node_id)
    if node_id not in candidates(rollout):
        raise OperatorError(409, f"node {node_id} is not next in rollout {rollout.id} ({step.state.value})")
    started = replace(step, state=StepState.DRAINING, since=now, reason=None, attempts=step.attempts + 1)
    return _with(rollout, started, force=None), ()


def advance(rollout: Rollout, node_id: int, now: float) -> tuple[Rollout, tuple[Action, ...]]:
    """draining → restarting (its task was stopped) → waiting-healthy (its new task runs)."""
    _running(rollout)
    step = _step(rollout, node_id)
    following = _NEXT.get(step.state)
    if following is None:
        raise OperatorError(409, f"node {node_id} is {step.state.value} in rollout {rollout.id}: it cannot advance")
    return _with(rollout, replace(step, state=following, since=now)), ()


def step_done(rollout: Rollout, node_id: int, now: float) -> tuple[Rollout, tuple[Action, ...]]:
    """The node is back and the cluster settled: restore what the step changed, clear its shutdown."""
    _running(rollout)
    step = _step(rollout, node_id)
    if step.state is not StepState.WAITING_HEALTHY:
        raise OperatorError(409, f"node {node_id} is {step.state.value}, not waiting-healthy: not done")
    actions = (*_restore(rollout), ClearShutdown(node_id))
    return _with(rollout, replace(step, state=StepState.DONE, since=now), restore=MappingProxyType({})), actions


def step_failed(rollout: Rollout, node_id: int, reason: str, now: float) -> tuple[Rollout, tuple[Action, ...]]:
    """The step did not get through (e.g. the node did not rejoin in time): the rollout pauses with
    the reason and the settings are restored; it never moves on by itself."""
    _running(rollout)
    step = _step(rollout, node_id)
    if step.state not in IN_PROGRESS:
        raise OperatorError(409, f"node {node_id} is {step.state.value}: no step of it runs")
    why = f"node {node_id}: {reason}"
    failed = replace(step, state=StepState.FAILED, since=now, reason=reason)
    actions = (*_restore(rollout), ClearShutdown(node_id))
    return _with(rollout, failed, paused=why, restore=MappingProxyType({})), actions


def stuck_steps(rollout: Rollout, now: float, timeout_s: float) -> tuple[int, ...]:
    """Steps in progress for longer than ``timeout_s`` (the caller fails them, which pauses)."""
    stuck = []
    for node_id in rollout.in_progress:
        since = rollout.steps[node_id].since
        if since is not None and now - since > timeout_s:
            stuck.append(node_id)
    return tuple(stuck)


def pause(rollout: Rollout, reason: str) -> tuple[Rollout, tuple[Action, ...]]:
    """No new step starts; a step under way goes on to its end."""
    _running(rollout)
    return replace(rollout, paused=reason or "paused by the operator"), ()


def resume(rollout: Rollout, now: float) -> tuple[Rollout, tuple[Action, ...]]:
    """Run again; a failed step becomes pending (it is tried again first)."""
    _running(rollout)
    steps = {
        i: replace(s, state=StepState.PENDING, since=now) if s.state is StepState.FAILED else s
        for i, s in rollout.steps.items()
    }
    return replace(rollout, paused=None, steps=MappingProxyType(steps)), ()


def abort(rollout: Rollout, reason: str, now: float) -> tuple[Rollout, tuple[Action, ...]]:
    """Stop for good: settings restored, shutdown records of started steps cleared. A node already
    stopped still comes back (with whatever configuration the scheduler launches now)."""
    _running(rollout)
    actions = (*_restore(rollout), *(ClearShutdown(i) for i in rollout.in_progress))
    return replace(rollout, aborted=True, paused=reason or "aborted", restore=MappingProxyType({}), force=None), actions


def skip(rollout: Rollout, node_id: int, reason: str, now: float) -> tuple[Rollout, tuple[Action, ...]]:
    """The operator forces the rollout past a pending or failed node: it is not restarted."""
    _running(rollout)
    if not reason.strip():
        raise OperatorError(400, "skipping a node needs a reason")
    step = _step(rollout, node_id)
    if step.state not in (StepState.PENDING, StepState.FAILED):
        raise OperatorError(409, f"node {node_id} is {step.state.value}: only a pending or failed step can be skipped")
    paused = (
        None
        if step.state is StepState.FAILED and rollout.paused == f"node {node_id}: {step.reason}"
        else rollout.paused
    )
    skipped = replace(step, state=StepState.SKIPPED, since=now, reason=f"skipped by the operator: {reason}")
    return _with(rollout, skipped, paused=paused), ()


def grant_force(rollout: Rollout, reason: str) -> tuple[Rollout, tuple[Action, ...]]:
    """Let the next step start although the cluster's health predicates fail (one step only; never
    past ``max_unavailable`` or an unanswered Elasticsearch)."""
    _running(rollout)
    if not reason.strip():
        raise OperatorError(400, "forcing a step needs a reason")
    return replace(rollout, force=reason.strip()[:MAX_TEXT]), ()


def disable_predicates(rollout: Rollout, names: frozenset[str]) -> tuple[Rollout, tuple[Action, ...]]:
    """The rollout with exactly ``names`` disabled for its steps from now on (empty: every predicate
    holds again), as ECK's ``disable-upgrade-predicates`` annotation replaces its list. 400 for a name
    that is unknown or never disabled, 409 for a finished rollout; nothing changes then."""
    _running(rollout)
    return replace(rollout, disabled_predicates=check_disabled(names)), ()


def drop_leaving(rollout: Rollout, desired_nodes: int, now: float) -> Rollout:
    """Pending steps of ids a scale-down takes away are skipped: a leaving node is drained, never
    restarted (a pending ``remove`` never turns into a ``restart``)."""
    steps = {
        i: replace(s, state=StepState.SKIPPED, since=now, reason="scaled away")
        if i > desired_nodes and s.state is StepState.PENDING
        else s
        for i, s in rollout.steps.items()
    }
    return replace(rollout, steps=MappingProxyType(steps))


def record_setting(rollout: Rollout, name: str, previous: str | None) -> Rollout:
    """Remember ``name``'s value before a step changes it (persist this before the change). The
    first value recorded wins: a later step must not take the rollout's own value for the original."""
    if name in rollout.restore:
        return rollout
    if len(rollout.restore) >= MAX_RESTORE:
        raise OperatorError(409, f"rollout {rollout.id} already records {MAX_RESTORE} settings")
    return replace(rollout, restore=MappingProxyType({**rollout.restore, name: previous}))


def cleanup_after_failover(rollout: Rollout) -> tuple[Action, ...]:
    """What a new leader restores at once: settings of a rollout no step of which is under way (a
    step under way keeps its settings until it ends)."""
    return () if rollout.in_progress and not rollout.aborted else _restore(rollout)
