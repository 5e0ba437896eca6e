"""The engine's operator commands (the REST API's scale, restart, replace, stop-drained and gone,
and the cluster monitor's planner round), kept apart from the event handling in
:mod:`es_framework.core.engine`.

Each checks the request against the state (:mod:`es_framework.core.operations`), persists the new
state, and only then returns the kills it implies; a refused request raises
:class:`~es_framework.core.operations.OperatorError` and changes nothing.

The operator's replace of a running node is queued (:meth:`OperatorCommands.request_replace`): a
``replace`` entry in the disruption ledger, started by the planner when it is safe and then moved
like a maintenance move (:mod:`es_framework.core.maintenance_moves`: node shutdown ``restart`` with
external volumes, the allocation exclusion with local disk, then stopped and launched again with the
same id and volumes on any agent). With the operator's ``force`` reason, or for a node that is not
running (nothing to drain), it is carried out at once (:meth:`OperatorCommands.replace_node`).

:meth:`OperatorCommands.plan_disruptions` runs the disruption planner
(:mod:`es_framework.core.disruption`) here, on the engine thread that owns the state: it settles the
ledger, asks the planner, and persists a started action in the ledger before it returns, so the
monitor acts only on what a new leader will find in the stored state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import MappingProxyType

from es_framework.config import Config
from es_framework.core import operations, rollouts
from es_framework.core.disruption import Decision, Settings, plan_disruption, request_by_operator, settle
from es_framework.core.disruption_ledger import Disruption, Kind, ShutdownType
from es_framework.core.disruption_seen import Observation
from es_framework.core.engine_rollouts import planning_rollout, started_step
from es_framework.core.history_notes import noted_command
from es_framework.core.mesos_calls import Call, Kill
from es_framework.core.node_state import LIVE_STATES, ClusterState, TaskState

log = logging.getLogger("es_framework.core.engine")


#: Why an adopted ledger entry exists (see :meth:`OperatorCommands.plan_disruptions`).
ADOPTED = "excluded from allocation before the planner ran (an earlier scheduler's drain)"


@dataclass(frozen=True)
class PlannerRound:
    """One planner round: its decision, and the engine's state after it (the ledger as stored)."""

    decision: Decision
    state: ClusterState

    @property
    def admitted(self) -> frozenset[int]:
        """Leaving node ids whose scale-down drain has started: the only ones the drain acts on."""
        return frozenset(
            i for i, e in self.state.disruptions.items() if e.kind is Kind.SCALE_DOWN and e.started_at is not None
        )


class OperatorCommands:
    """Mixed into :class:`~es_framework.core.engine.Engine`, which provides what is declared here."""

    config: Config
    state: ClusterState
    may_act: bool
    _clock: Callable[[], float]
    #: When the last planner round ran and what Elasticsearch said then (in memory only; read by the
    #: automatic replacement's admission, :mod:`es_framework.core.engine_replacement`).
    last_seen: tuple[float, Observation] | None = None
    #: The rollout's part of a planner round (:class:`~es_framework.core.engine_rollouts.RolloutCommands`).
    _drive_rollout: Callable[
        [ClusterState, tuple[int, ...], Observation, frozenset[int], Settings], tuple[ClusterState, list[Call]]
    ]
    #: The maintenance moves' part (:class:`~es_framework.core.engine_maintenance.MaintenanceAnswers`).
    _drive_maintenance: Callable[[ClusterState, frozenset[int]], tuple[ClusterState, list[Call]]]

    def _persist(self, state: ClusterState) -> bool:
        raise NotImplementedError

    def _event(self, message: str, node_id: int | None = None, state: str | None = None) -> None:
        raise NotImplementedError

    def _offer_interest(self, *, force: bool = False) -> list[Call]:
        raise NotImplementedError

    def _operate(
        self, outcome: operations.Outcome, named: int | None = None, command: str = ""
    ) -> tuple[str, list[Call]]:
        # The command is in the history of the node it names and of each node it stops, in the same write.
        acted = [i for i, _, _ in outcome.kills] + ([named] if named is not None else [])
        noted = noted_command(
            self.state, outcome.state, acted, command=command, message=outcome.message, now=self._clock()
        )
        if outcome.state is not self.state and not self._persist(noted):
            raise operations.OperatorError(503, "the state could not be written; nothing was changed")
        log.info("%s", outcome.message)
        if not outcome.kills:
            self._event(outcome.message)
        calls: list[Call] = []
        for node_id, task_id, agent_id in outcome.kills:
            log.info("node %d task %s: killing on agent %s", node_id, task_id, agent_id)
            # In the node's own history too (GET /v1/nodes/<id>).
            self._event(outcome.message, node_id, self.state.nodes[node_id].state.value)
            calls.append(Kill(task_id, agent_id))
        calls.extend(self._offer_interest())
        return outcome.message, calls

    def require_action(self) -> None:
        """Refuse (503, changing nothing) a command while this engine may not act: it does not lead, or
        its state is in doubt. Every operator command and the API's ``gone`` fence go through here."""
        if not self.may_act:
            raise operations.OperatorError(503, "the scheduler cannot change anything now (state store unavailable)")

    def set_desired_nodes(self, count: int, *, copies_needed: int | None) -> tuple[str, list[Call]]:
        """Scale; a rollout under way skips its pending steps of the ids scaled away (they are drained
        and stopped, never restarted: :func:`es_framework.core.rollouts.drop_leaving`), or it would
        wait for ever on steps the planner never starts."""
        self.require_action()
        outcome = operations.set_desired_nodes(self.state, count, copies_needed=copies_needed)
        rollout = outcome.state.rollout
        if rollout is not None:
            dropped = rollouts.drop_leaving(rollout, outcome.state.desired_nodes, self._clock())
            outcome = replace(outcome, state=replace(outcome.state, rollout=dropped))
        return self._operate(outcome)

    def restart_node(self, node_id: int) -> tuple[str, list[Call]]:
        """Restart at once, past the planner (the operator forced it); a restart of the node still
        queued for the planner is dropped with it, or it would restart the node a second time."""
        self.require_action()
        outcome = operations.restart_node(self.state, node_id, now=self._clock())
        return self._operate(_without_queued(outcome, node_id), node_id, "restart (at once)")

    def replace_node(self, node_id: int) -> tuple[str, list[Call]]:
        """Replace at once, past the planner (the operator forced it, or the node is not running); a
        request of the node still queued for the planner is dropped with it, as :meth:`restart_node`
        does (the node is stopped now; left queued, it would be moved a second time)."""
        self.require_action()
        outcome = operations.replace_node(self.state, node_id)
        return self._operate(_without_queued(outcome, node_id), node_id, "replace (at once)")

    def request_replace(self, node_id: int) -> tuple[str, list[Call]]:
        """Queue the operator's replace of a running ``node_id``: the planner starts it when it is
        safe, counted with every other disruption (node shutdown ``restart`` with external volumes,
        ``remove`` — its shards moved away first — with local disk). A node that is not running
        (staging, starting) has nothing to drain: it is replaced at once, as before the planner; an
        unreachable or stopping one is refused as :func:`es_framework.core.operations.replace_node`
        refuses it."""
        self.require_action()
        state = self.state
        record = state.nodes.get(node_id)
        if record is not None and record.state is not TaskState.RUNNING:
            message, calls = self.replace_node(node_id)
            return f"{message} (it is {record.state.value}: nothing to drain, so not queued)", calls
        external = self.config.strategy_name == "external"
        ledger = request_by_operator(state, Kind.REPLACE, node_id, now=self._clock(), external_volumes=external)
        if ledger is not state.disruptions and not self._persist(replace(state, disruptions=ledger)):
            raise operations.OperatorError(503, "the state could not be written; the replace was not queued")
        shutdown = ledger[node_id].shutdown.value
        how = "node shutdown restart" if shutdown == ShutdownType.RESTART.value else "its shards moved away first"
        message = (
            f"node {node_id}: replace queued; the planner starts it when safe ({how}), then it is launched again "
            "as the same node id on any agent with the same volumes"
        )
        log.info("%s (task %s)", message, record.task_id if record else None)
        self._event(message, node_id, record.state.value if record else None)
        return message, []

    def stop_drained(self, node_id: int) -> tuple[str, list[Call]]:
        self.require_action()
        return self._operate(operations.stop_drained(self.state, node_id), node_id, "stop-drained")

    def release_gone(self, node_id: int, task_id: str) -> tuple[str, list[Call]]:
        self.require_action()
        return self._operate(operations.release_gone(self.state, node_id, task_id), node_id, "gone")

    def plan_disruptions(
        self, seen: Observation, *, adopt: frozenset[int] = frozenset(), ready: frozenset[int] = frozenset()
    ) -> tuple[PlannerRound, list[Call]]:
        """One round of the disruption planner over what Elasticsearch said (``seen``; an
        :class:`~es_framework.core.disruption_seen.Unknown` starts nothing). Ended actions leave the
        ledger; the one action the planner starts is persisted before this returns (503 and nothing
        started when the state cannot be written). ``adopt``: leaving node ids that already carry our
        allocation exclusion with no ledger entry (a drain begun by a release without the planner):
        they are entered as started, so they are not drained again from scratch and they count.
        ``ready``: started restarts and maintenance moves the monitor prepared (node shutdown complete,
        flushed, or drained): they are stopped in this round, and the rollout's steps move on
        (:mod:`es_framework.core.engine_rollouts`, :mod:`es_framework.core.maintenance_moves`);
        the kills are returned only after the state is written."""
        self.require_action()
        now, state = self._clock(), self.state
        self.last_seen = (now, seen)
        settled, ended = settle(state.disruptions, state)
        ledger = dict(settled)
        for node_id in sorted(adopt):
            record = state.nodes.get(node_id)
            if node_id in ledger or record is None or node_id <= state.desired_nodes:
                continue
            ledger[node_id] = Disruption(
                node_id, Kind.SCALE_DOWN, ShutdownType.REMOVE, now, now, record.task_id, ADOPTED
            )
            log.warning("node %d task %s: scale-down drain taken over: %s", node_id, record.task_id, ADOPTED)
        settings = Settings(
            self.config.max_unavailable,
            self.config.framework_name,
            self.config.master_nodes,
            external_volumes=self.config.strategy_name == "external",
        )
        driven, kills = self._drive_rollout(
            replace(state, disruptions=MappingProxyType(ledger)), ended, seen, ready, settings
        )
        driven, moved = self._drive_maintenance(driven, ready)
        kills += moved
        ledger = dict(driven.disruptions)
        rollout = planning_rollout(driven)
        decision = plan_disruption(driven, ledger=ledger, rollout=rollout, seen=seen, now=now, settings=settings)
        start = decision.start
        if start is not None:
            ledger[start.node_id] = start
            driven = started_step(driven, start, seen, now)
        new = replace(driven, disruptions=MappingProxyType(ledger))
        if new != state:
            if not self._persist(new):
                raise operations.OperatorError(503, "the disruption ledger could not be written; nothing starts")
            for node_id, old in sorted(state.disruptions.items()):
                if node_id not in ledger:
                    why = "the task ended" if node_id in ended else "no longer wanted"
                    log.info("node %d task %s: its %s is over (%s)", node_id, old.task_id, old.kind.value, why)
            if start is not None:
                message = (
                    f"node {start.node_id}: {start.kind.value} starts (node shutdown type {start.shutdown.value}; "
                    f"at most {settings.max_unavailable} node(s) unavailable at once)"
                )
                log.info("%s, task %s", message, start.task_id)
                record = self.state.nodes.get(start.node_id)
                self._event(message, start.node_id, record.state.value if record else None)
        return PlannerRound(decision, self.state), kills

    def pending_kills(self) -> list[Call]:
        """Kill again every task being stopped on purpose that still runs (a KILL may be lost while
        disconnected; Mesos answers a kill of an unknown task with TASK_LOST or nothing)."""
        return [
            Kill(r.task_id, r.agent_id)
            for r in sorted(self.state.nodes.values(), key=lambda r: r.node_id)
            if r.stopping is not None and r.state in LIVE_STATES
        ]


def _without_queued(outcome: operations.Outcome, node_id: int) -> operations.Outcome:
    """``outcome`` without ``node_id``'s request still queued for the planner: a command forced past
    the planner stops the node now, and left queued the request would stop it a second time."""
    queued = outcome.state.disruptions.get(node_id)
    if queued is None or queued.started_at is not None:
        return outcome
    ledger = {i: d for i, d in outcome.state.disruptions.items() if i != node_id}
    return replace(outcome, state=replace(outcome.state, disruptions=MappingProxyType(ledger)))
