"""The engine's rollout half: creating a rollout (``POST /v1/cluster/restart``), the operator's
pause/resume/abort, the operator's queued restart of one node, and driving the steps of the rollout
in the planner round (``engine.plan_disruptions``), kept apart from the event handling in
:mod:`es_framework.core.engine` and the other commands in :mod:`es_framework.core.engine_commands`.

A step goes: the planner admits it (a ``rollout`` ledger entry, the step ``draining``, and, on a
version without the node-shutdown API, the allocation setting's old value recorded — all in one
state write before anything is sent) → the monitor prepares the node (node shutdown ``restart``,
or ``cluster.routing.allocation.enable: primaries`` + flush) and reports it *ready* → the engine
stops it with :func:`es_framework.core.operations.restart_node` (same id, agent pin, volumes) →
the old task ends (the ledger entry settles: ``restarting``) → a new task for the id runs
(``waiting-healthy``) → the predicates hold (:func:`es_framework.core.disruption.step_settled`):
``done``, the setting is queued for restoring (``rollout_restore``, persisted before the monitor
puts it back) and the shutdown record is cleared by the monitor. A step in progress for longer than
``--rolloutStepTimeout`` (default :data:`STEP_TIMEOUT_S`) fails and pauses the rollout; it never moves
on while a node is down.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from es_framework.config import Config
from es_framework.config.versions import EsVersion, TargetVersion, version_in_text
from es_framework.core import operations, rollouts
from es_framework.core.config_record import executor_change
from es_framework.core.disruption import Settings, request_by_operator, started_on_their_task, step_settled
from es_framework.core.disruption_ledger import Disruption, Kind
from es_framework.core.disruption_seen import Observation, Seen
from es_framework.core.mesos_calls import Call, Kill
from es_framework.core.node_state import ClusterState, NodeRecord, TaskState
from es_framework.core.predicates import check_disabled
from es_framework.core.rollouts import (
    Action,
    RestoreSettings,
    Rollout,
    RolloutReason,
    StepState,
)
from es_framework.core.version_change import upgrade_of

log = logging.getLogger("es_framework.core.engine")

#: ``--rolloutStepTimeout``'s default: a step in progress for longer fails and pauses its rollout.
STEP_TIMEOUT_S = 1800.0
#: Finished rollouts kept for ``GET /v1/rollouts``.
HISTORY_KEPT = 5
ALLOCATION_ENABLE = "cluster.routing.allocation.enable"
#: The node-shutdown API with ``type: restart`` is used from this version on (issue 12; the API is
#: documented since 7.13, but ``restart`` with ``allocation_delay`` settled in 7.15.2).
SHUTDOWN_API_SINCE = EsVersion(7, 15, 2)
#: Ledger kinds whose node is restarted in place (same id, agent, volumes) once it is prepared.
RESTART_KINDS = frozenset({Kind.ROLLOUT, Kind.RESTART})


def uses_shutdown_api(record: NodeRecord | None) -> bool:
    """Whether the node's reported version has node shutdown ``restart``; unknown: no (the
    allocation ``primaries`` + flush path works on every version)."""
    version = version_in_text(record.version) if record is not None and record.version else None
    return version is not None and version.at_least(SHUTDOWN_API_SINCE) is True


def node_id_of(name: str, framework_name: str) -> int | None:
    """The node id in one of our node names (``<framework><id>``, :func:`identity.naming.node_name`),
    or None for any other name."""
    tail = name[len(framework_name) :] if name.startswith(framework_name) else ""
    return int(tail) if tail.isdigit() and not tail.startswith("0") else None


def elected_master_id(seen: Observation, framework_name: str) -> int | None:
    """The node id of the elected master Elasticsearch named (``<framework><id>``), or None."""
    name = seen.elected_master if isinstance(seen, Seen) else None
    return node_id_of(name, framework_name) if name is not None else None


def elected_last(rollout: Rollout, elected: int | None) -> Rollout:
    """``rollout`` with the elected master's step moved to the end while it is still pending, so
    that the cluster changes its elected master once (pure).

    The order is fixed when the rollout is created, from the elected master the engine last saw; that
    may be unknown (no planner round ran since the scheduler started: a new rollout then says so in
    its ``order_note``) or stale (the master changed since). Every planner round knows the current
    one, and master-eligible steps start only after every earlier step finished
    (:func:`es_framework.core.rollouts.candidates`), so moving a pending step never reorders one that
    ran. Unknown (None), not in the rollout, or not pending: unchanged."""
    step = rollout.steps.get(elected) if elected is not None else None
    if step is None or step.state is not StepState.PENDING or not step.master_eligible:
        return rollout
    order = [i for i in rollout.order if i != elected] + [step.node_id]
    if list(rollout.order) == order and rollout.order_note is None:
        return rollout
    steps = {i: replace(rollout.steps[i], position=position) for position, i in enumerate(order)}
    return replace(rollout, steps=MappingProxyType(steps), order_note=None)


def preparing(state: ClusterState) -> tuple[Disruption, ...]:
    """Started restarts (rollout steps and operator restarts) whose node is not stopped yet: the
    monitor prepares them and reports them ready."""
    return started_on_their_task(state, RESTART_KINDS)


def summary(rollout: Rollout, now: float) -> dict[str, Any]:
    """A finished rollout as ``rollout_history`` keeps it (constant size)."""
    done, total = rollout.progress
    return {
        "id": rollout.id,
        "reason": rollout.reason.value,
        "created_at": rollout.created_at,
        "finished_at": now,
        "outcome": "aborted" if rollout.aborted else "completed",
        "done": done,
        "total": total,
        "note": rollout.paused if rollout.aborted else None,
    }


def with_restore(restore: Mapping[str, str | None], actions: tuple[Action, ...]) -> Mapping[str, str | None]:
    """``restore`` with the settings the actions put back (a value already queued is the original)."""
    out = dict(restore)
    for action in actions:
        if isinstance(action, RestoreSettings):
            for name, value in action.settings:
                out.setdefault(name, value)
    return MappingProxyType(out)


@dataclass(frozen=True)
class Driven:
    """A rollout round's result before the planner runs: the new state (not yet persisted) and the
    tasks to kill once it is."""

    state: ClusterState
    kills: tuple[tuple[int, str, str], ...]
    messages: tuple[tuple[int | None, str], ...]


def drive(
    state: ClusterState,
    ended: tuple[int, ...],
    seen: Observation,
    *,
    ready: frozenset[int],
    settings: Settings,
    now: float,
    timeout_s: float = STEP_TIMEOUT_S,
) -> Driven:
    """Advance the rollout and the started restarts of ``state`` (its ledger already settled):
    stop prepared nodes, move steps on, finish settled ones, fail stuck ones (pure)."""
    kills: list[tuple[int, str, str]] = []
    messages: list[tuple[int | None, str]] = []
    # Settings the monitor saw put back are no longer pending.
    restore = {
        k: v
        for k, v in state.rollout_restore.items()
        if not (isinstance(seen, Seen) and k == ALLOCATION_ENABLE and seen.allocation_enable == v)
    }
    state = replace(state, rollout_restore=MappingProxyType(restore))
    for entry in preparing(state):
        if entry.node_id in ready:
            outcome = operations.restart_node(state, entry.node_id, now=now)
            state = outcome.state
            kills.extend(outcome.kills)
            messages.append((entry.node_id, f"node {entry.node_id}: prepared; {outcome.message}"))
    rollout = state.rollout
    if rollout is None or rollout.aborted:
        return Driven(state, tuple(kills), tuple(messages))
    ordered = elected_last(rollout, elected_master_id(seen, settings.framework_name))
    if ordered.order != rollout.order:
        messages.append(
            (None, f"rollout {rollout.id}: order {', '.join(map(str, ordered.order))}, the elected master last")
        )
    rollout = ordered
    actions: list[Action] = []
    for node_id in rollout.in_progress:
        step, record = rollout.steps[node_id], state.nodes.get(node_id)
        if step.state is StepState.DRAINING and node_id in ended:
            rollout, _ = rollouts.advance(rollout, node_id, now)
            messages.append((node_id, f"node {node_id}: stopped; rollout {rollout.id} waits for it to run again"))
        elif (
            step.state is StepState.RESTARTING
            and record is not None
            and record.state is TaskState.RUNNING
            and record.stopping is None
        ):
            rollout, _ = rollouts.advance(rollout, node_id, now)
            messages.append((node_id, f"node {node_id}: running again; rollout {rollout.id} waits for green"))
        elif step.state is StepState.WAITING_HEALTHY and step_settled(node_id, state, seen, settings):
            rollout, done = rollouts.step_done(rollout, node_id, now)
            actions.extend(done)
            done_n, total = rollout.progress
            messages.append((node_id, f"node {node_id}: restarted; rollout {rollout.id} {done_n}/{total}"))
    for node_id in rollouts.stuck_steps(rollout, now, timeout_s):
        why = f"{rollout.steps[node_id].state.value} for more than {timeout_s:.0f}s"
        rollout, failed = rollouts.step_failed(rollout, node_id, why, now)
        actions.extend(failed)
        messages.append((node_id, f"rollout {rollout.id} paused: node {node_id}: {why}"))
    ledger = state.disruptions
    if rollout.paused is not None:
        # A failed step's node that was not stopped is available again: it must not count for ever.
        ledger = MappingProxyType(
            {
                i: e
                for i, e in ledger.items()
                if not (e.kind is Kind.ROLLOUT and i in state.nodes and state.nodes[i].stopping is None)
            }
        )
    state = replace(state, disruptions=ledger, rollout_restore=with_restore(state.rollout_restore, tuple(actions)))
    return Driven(_finish(state, rollout, now, messages), tuple(kills), tuple(messages))


def _finish(state: ClusterState, rollout: Rollout, now: float, messages: list[tuple[int | None, str]]) -> ClusterState:
    """``state`` with ``rollout``, or with it moved to the history once it is finished."""
    if not rollout.finished:
        return replace(state, rollout=rollout)
    messages.append((None, f"rollout {rollout.id} {'aborted' if rollout.aborted else 'completed'}"))
    history = (*state.rollout_history, MappingProxyType(summary(rollout, now)))[-HISTORY_KEPT:]
    return replace(state, rollout=None, rollout_history=history)


def _ended(state: ClusterState, aborted: Rollout, now: float, messages: list[tuple[int | None, str]]) -> ClusterState:
    """``state`` with the ``aborted`` rollout moved to the history. Nodes of it not stopped yet are
    not restarted: their entries leave the ledger (a node already stopped still comes back)."""
    ledger = {
        i: e
        for i, e in state.disruptions.items()
        if not (e.kind is Kind.ROLLOUT and i in state.nodes and state.nodes[i].stopping is None)
    }
    return _finish(replace(state, disruptions=MappingProxyType(ledger)), aborted, now, messages)


def configuration_rollout(
    before: ClusterState,
    after: ClusterState,
    *,
    now: float,
    elected_master: int | None,
    master_nodes: int,
    target_version: TargetVersion | None = None,
) -> tuple[ClusterState, tuple[str, ...]]:
    """``after`` (``before`` with the configuration recorded by
    :func:`es_framework.core.config_record.record_configuration`) with a ``configuration`` rollout of
    its outdated nodes when the fingerprint changed, and what to log (pure).

    Nothing changed (or the first recording): ``after`` as it is, so a rollout under way stays (a
    failover mid-rollout resumes it). Changed: a rollout under way towards another target is aborted
    (its settings queued in ``rollout_restore``, as the operator's abort does) and replaced. A node
    being stopped already (restart, replace) is not in the new rollout: its next task is built from
    the configuration the scheduler runs with now. When a node runs an Elasticsearch older than
    ``target_version``, the rollout is a version upgrade (``Rollout.upgrade``): yellow is allowed.
    The same configuration with another executor (a new release, :func:`executor_change`) gives an
    ``executor`` rollout of the nodes, which ``record_configuration`` marked outdated."""
    old = before.config.get("fingerprint") if before.config is not None else None
    new = str(after.config.get("fingerprint", "")) if after.config is not None else ""
    executor = executor_change(before, after) if old == new else None
    if old is None or (old == new and executor is None):
        return after, ()
    reason = RolloutReason.CONFIGURATION if executor is None else RolloutReason.EXECUTOR
    changed_what = (
        f"configuration changed (fingerprint {old} → {new})" if executor is None else f"executor changed ({executor})"
    )
    state, lines, messages = after, list[str](), list[tuple[int | None, str]]()
    active = state.rollout
    if active is not None and active.target == new and executor is None:
        return after, ()
    if active is not None:
        why = f"the configuration changed again ({old} -> {new})" if executor is None else changed_what
        changed, actions = rollouts.abort(active, why, now)
        state = _ended(
            replace(state, rollout_restore=with_restore(state.rollout_restore, actions)), changed, now, messages
        )
        lines.append(
            f"rollout {active.id} ({active.reason.value}, target {active.target}) aborted: {reason.value} changed"
        )
    outdated = tuple(i for i, r in sorted(state.nodes.items()) if r.outdated and r.stopping is None)
    rollout = rollouts.plan_rollout(
        state, reason, now, elected_master, master_nodes=master_nodes, target=new, nodes=outdated
    )
    if not rollout.steps:
        return state, (*lines, f"{changed_what}: no running node to restart")
    upgrade = upgrade_of(state, target_version) if target_version is not None else None
    rollout = replace(rollout, upgrade=upgrade)
    order = ", ".join(map(str, rollout.order))
    note = f" ({rollout.order_note})" if rollout.order_note else ""
    if upgrade is not None:
        note += f"; it upgrades Elasticsearch {upgrade[0]} → {upgrade[1]} (yellow allowed)"
    lines.append(f"{changed_what}: rollout {rollout.id} restarts nodes [{order}] one at a time{note}")
    return replace(state, rollout=rollout), tuple(lines)


class RolloutCommands:
    """Mixed into :class:`~es_framework.core.engine.Engine`, which provides what is declared here."""

    config: Config
    state: ClusterState
    _clock: Callable[[], float]
    #: The elected master's node id as last seen by a planner round (orders a new rollout).
    elected_master: int | None = None

    def require_action(self) -> None:
        raise NotImplementedError

    def _persist(self, state: ClusterState) -> bool:
        raise NotImplementedError

    def _event(self, message: str, node_id: int | None = None, state: str | None = None) -> None:
        raise NotImplementedError

    def _write(self, state: ClusterState, what: str) -> None:
        if not self._persist(state):
            raise operations.OperatorError(503, f"the state could not be written; {what}")

    def start_rollout(
        self, reason: RolloutReason, nodes: tuple[int, ...] | None = None, disabled: frozenset[str] = frozenset()
    ) -> tuple[Rollout, list[Call]]:
        """Create a rollout (409 while another one is under way) and persist it; the planner starts
        its steps one by one, without the predicates the operator ``disabled`` for it (400: a name
        that is unknown or never disabled)."""
        self.require_action()
        disabled = check_disabled(disabled)
        state, now = self.state, self._clock()
        if state.rollout is not None:
            raise operations.OperatorError(409, f"rollout {state.rollout.id} is under way: pause, resume or abort it")
        target = str(state.config.get("fingerprint", "")) if state.config is not None else ""
        rollout = rollouts.plan_rollout(
            state, reason, now, self.elected_master, master_nodes=self.config.master_nodes, target=target, nodes=nodes
        )
        if not rollout.steps:
            raise operations.OperatorError(409, "no running node to restart")
        rollout = replace(rollout, disabled_predicates=disabled)
        self._write(replace(state, rollout=rollout), "no rollout was created")
        message = f"rollout {rollout.id} ({reason.value}) created: nodes {', '.join(map(str, rollout.order))} in order"
        if disabled:
            message += f"; predicates disabled by the operator: {', '.join(sorted(disabled))}"
        log.info("%s%s", message, f" ({rollout.order_note})" if rollout.order_note else "")
        self._event(message)
        return rollout, []

    def rollout_command(
        self, rollout_id: str, verb: str, reason: str = "", disabled: frozenset[str] = frozenset()
    ) -> tuple[Rollout, list[Call]]:
        """``pause``, ``resume``, ``abort``, ``force`` (the next step past the cluster's health
        predicates, once; ``reason`` says why) or ``predicates`` (exactly ``disabled`` disabled for
        its steps from now on) the current rollout ``rollout_id``."""
        self.require_action()
        state, now = self.state, self._clock()
        rollout = state.rollout
        if rollout is None or rollout.id != rollout_id:
            raise operations.OperatorError(404, f"no rollout {rollout_id} is under way")
        if verb == "pause":
            changed, actions = rollouts.pause(rollout, reason or "paused by the operator")
        elif verb == "resume":
            changed, actions = rollouts.resume(rollout, now)
        elif verb == "abort":
            changed, actions = rollouts.abort(rollout, reason or "aborted by the operator", now)
        elif verb == "force":
            changed, actions = rollouts.grant_force(rollout, reason)
        elif verb == "predicates":
            changed, actions = rollouts.disable_predicates(rollout, disabled)
            reason = f"disabled: {', '.join(sorted(disabled)) or 'none'}"
        else:
            raise operations.OperatorError(400, f"unknown rollout command {verb!r}")
        new = replace(state, rollout_restore=with_restore(state.rollout_restore, actions))
        new = _ended(new, changed, now, []) if changed.aborted else replace(new, rollout=changed)
        self._write(new, f"rollout {rollout_id} was not changed")
        log.info("rollout %s: %s by the operator%s", rollout_id, verb, f" ({reason})" if reason else "")
        self._event(f"rollout {rollout_id}: {verb}")
        return changed, []

    def rollout_on_change(self, before: ClusterState, after: ClusterState) -> ClusterState:
        """``after`` with the rollout a configuration change creates (see :func:`configuration_rollout`),
        logged once; the caller persists it."""
        state, lines = configuration_rollout(
            before,
            after,
            now=self._clock(),
            elected_master=self.elected_master,
            master_nodes=self.config.master_nodes,
            target_version=self.config.target_version,
        )
        for line in lines:
            log.info("%s", line)
            self._event(line)
        return state

    def request_restart(self, node_id: int) -> tuple[str, list[Call]]:
        """Queue the operator's restart of ``node_id``: the planner starts it when it is safe."""
        self.require_action()
        state = self.state
        external = self.config.strategy_name == "external"
        ledger = request_by_operator(state, Kind.RESTART, node_id, now=self._clock(), external_volumes=external)
        record = state.nodes.get(node_id)
        if ledger is not state.disruptions:
            self._write(replace(state, disruptions=ledger), "the restart was not queued")
        message = f"node {node_id}: restart queued; the planner starts it when safe"
        log.info("%s (task %s)", message, record.task_id if record else None)
        self._event(message, node_id, record.state.value if record else None)
        return message, []

    def _drive_rollout(
        self, state: ClusterState, ended: tuple[int, ...], seen: Observation, ready: frozenset[int], settings: Settings
    ) -> tuple[ClusterState, list[Call]]:
        """The rollout's part of a planner round (not persisted yet): see :func:`drive`."""
        elected = elected_master_id(seen, settings.framework_name)
        if elected is not None:
            self.elected_master = elected
        driven = drive(
            state,
            ended,
            seen,
            ready=ready,
            settings=settings,
            now=self._clock(),
            timeout_s=self.config.rollout_step_timeout_s,
        )
        for node_id, message in driven.messages:
            record = driven.state.nodes.get(node_id) if node_id is not None else None
            log.info("%s%s", message, f" (task {record.task_id})" if record is not None else "")
        return driven.state, [Kill(task_id, agent_id) for _, task_id, agent_id in driven.kills]


def started_step(state: ClusterState, start: Disruption, seen: Observation, now: float) -> ClusterState:
    """``state`` with the planner's rollout start taken: the step drains, and on a version without
    node shutdown the allocation setting's current value is recorded before the monitor changes it."""
    rollout = state.rollout
    if rollout is None or start.kind is not Kind.ROLLOUT:
        return state
    rollout, _ = rollouts.start_step(rollout, start.node_id, now)
    if not uses_shutdown_api(state.nodes.get(start.node_id)):
        previous = seen.allocation_enable if isinstance(seen, Seen) else None
        rollout = rollouts.record_setting(rollout, ALLOCATION_ENABLE, previous)
    return replace(state, rollout=rollout)


def planning_rollout(state: ClusterState) -> Rollout | None:
    """The rollout as the planner sees it: no new step while settings are still to be put back (the
    next step would record the rollout's own value as the original)."""
    rollout = state.rollout
    if rollout is not None and state.rollout_restore and rollout.paused is None:
        return replace(rollout, paused="putting cluster settings back first")
    return rollout
