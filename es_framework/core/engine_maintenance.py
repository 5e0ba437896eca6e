"""The engine's Mesos-maintenance half: answering inverse offers, keeping new nodes off agents
whose maintenance window has started or starts soon (see :mod:`es_framework.core.maintenance`), and
moving our nodes off them first through the disruption planner
(:mod:`es_framework.core.maintenance_moves`).

Inverse offers are answered as they come: an answer with a short ``refuse_seconds`` makes the
master ask again (a new inverse offer id), so the answer follows the state without a timer. The one
exception: while every node of ours on the agent is being moved, the inverse offer is held unanswered
and accepted as the last one's task ends (:meth:`MaintenanceAnswers.release_inverse_offers`, after
each batch of status updates): the master asks a framework again only while it has resources
offered or allocated there, so a decline could otherwise stay its last answer.

Each window seen (an inverse offer's, an offer's ``unavailability``) requests a ``maintenance`` move
of every node of ours on that agent, persisted in the ledger before the answer goes out; the planner
round (``engine.plan_disruptions``) stops each move the monitor prepared. The windows themselves are
kept in memory only: after a failover the master's next inverse offers and offers bring them back.

A machine Mesos reports ``DOWN`` (:meth:`MaintenanceAnswers.machines_down`): START_MAINTENANCE shuts
down every agent registered on the machine, killing its executors, and removes it, sending each
framework ``TASK_LOST`` (``Master::Http::_startMaintenance``, ``src/master/http.cpp``; Mesos
``docs/maintenance.md``, "Starting maintenance"); while the machine is DOWN no agent on it may register
again ("Machine is `DOWN`", ``Master::_registerSlave`` / ``_reregisterSlave``, ``src/master/master.cpp``).
That TASK_LOST has no uuid and is never re-sent, so a framework not subscribed at that moment (a
scheduler failover) never hears it; its reconciliation then answers ``TASK_UNKNOWN`` (task and agent
unknown: case (6) of ``Master::reconcile``, ``src/master/master.cpp``), which alone keeps the id
reserved for an operator (see :mod:`es_framework.core.status_updates`). So the app layer asks the master's operator API
``GET_MAINTENANCE_STATUS`` while a task of ours is UNKNOWN (``app/maintenance_status.py``), and an
UNKNOWN task whose agent's machine is in ``down_machines`` gets the TASK_LOST it missed: its id is free
and the node is launched again with the same id and volumes. Never for an UNREACHABLE task: an agent
that was partitioned when its machine went DOWN is not removed by START_MAINTENANCE (the master
answers TASK_UNREACHABLE for it) and may still run its task until it reconnects and is told to shut
down.

Logs: each inverse offer at INFO with the agent, the window and the answer (the nodes still there);
each move requested, stopped, or late (WARNING: still there when the window starts) with the node and
task id; each offer declined under the ``maintenance`` rule at DEBUG (routine while a window lasts)
and counted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from es_framework.config import Config
from es_framework.core.engine_stats import DeclineCounts
from es_framework.core.maintenance import (
    REFUSE_S,
    Machine,
    MaintenanceError,
    Unavailability,
    answer,
    has_unknown,
    keeps_new_nodes_off,
    parse_inverse_offer,
    unknown_on_down_machines,
)
from es_framework.core.maintenance_moves import (
    apply_requests,
    cancelled,
    late,
    move_requests,
    moves_cover,
    releasable,
    stop_ready,
)
from es_framework.core.mesos_calls import AnswerInverseOffers, Call, Decline, Kill
from es_framework.core.node_state import ClusterState
from es_framework.core.offers import Offer

log = logging.getLogger("es_framework.core.engine")


@dataclass
class MoveMemory:
    """What the engine remembers of maintenance between events (not persisted: see the module)."""

    #: agent id -> the last window Mesos showed for it (None: an offer with none).
    windows: dict[str, Unavailability | None] = field(default_factory=dict)
    #: (node id, task id) already warned about as late.
    warned: set[tuple[int, str]] = field(default_factory=set)
    #: agent id -> inverse offers held unanswered while our nodes there are moved off (accepted as
    #: the last one leaves; lost on a failover, when the master sends new ones).
    held: dict[str, tuple[str, ...]] = field(default_factory=dict)


class MaintenanceAnswers:
    """Mixed into :class:`~es_framework.core.engine.Engine`, which provides what is declared here."""

    config: Config
    state: ClusterState
    declines: DeclineCounts
    may_act: bool
    #: agent id -> the last line said about its maintenance (repeats go to DEBUG).
    maintenance_said: dict[str, str]
    moves: MoveMemory
    _clock: Callable[[], float]

    def _persist(self, state: ClusterState) -> bool:
        raise NotImplementedError

    def _event(self, message: str, node_id: int | None = None, state: str | None = None) -> None:
        raise NotImplementedError

    def on_updates(self, raw_statuses: Sequence[object]) -> list[Call]:
        raise NotImplementedError

    def down_machines_wanted(self) -> tuple[bool, list[Call]]:
        """Whether the master's maintenance status is worth asking for: this engine may act and a task
        of ours is UNKNOWN to Mesos (a command for the engine thread: ``(answer, calls)``)."""
        return self.may_act and has_unknown(self.state), []

    def machines_down(self, machines: Sequence[Machine]) -> tuple[tuple[int, ...], list[Call]]:
        """``machines`` are DOWN for maintenance (the master's ``GET_MAINTENANCE_STATUS``): each node whose
        task Mesos answered UNKNOWN for and whose agent is on one of them gets the ``TASK_LOST`` that
        START_MAINTENANCE sent while no scheduler was subscribed (see the module), through the ordinary
        status update path: written first, the id freed, the node launched again with its id and volumes.
        Returns the node ids freed, and the calls."""
        if not self.may_act:
            return (), []
        freed = unknown_on_down_machines(self.state, machines)
        raws: list[object] = []
        for node_id in freed:
            record = self.state.nodes[node_id]
            log.warning(
                "node %d task %s: Mesos does not know the task and agent %s (%s) is on a machine DOWN for "
                "maintenance, which shut the agent down with its tasks: node %d is free and launched again with "
                "the same id and volumes",
                node_id,
                record.task_id,
                record.agent_id,
                record.hostname,
                node_id,
            )
            raws.append(
                {
                    "task_id": {"value": record.task_id},
                    "state": "TASK_LOST",
                    "agent_id": {"value": record.agent_id},
                    "reason": "REASON_AGENT_REMOVED",
                    "message": f"Agent {record.hostname} removed: its machine is DOWN for maintenance "
                    "(GET_MAINTENANCE_STATUS; the master's TASK_LOST was not heard)",
                }
            )
        return freed, self.on_updates(raws) if raws else []

    def _request_moves(self, windows: Mapping[str, Unavailability | None]) -> None:
        """Queue a ``maintenance`` move for each node of ours on an agent in ``windows`` whose window
        keeps nodes off it (once: a node already in the ledger is not asked again), drop the queued
        ones whose agent has no such window any more, and persist that before anything is answered.
        A failed write requests nothing: the next inverse offer or offer tries again."""
        self.moves.windows.update(windows)
        now, state = self._clock(), self.state
        requests = move_requests(state, windows, now)
        void = cancelled(state, windows, now) if state.disruptions else ()
        if not requests and not void:
            return
        new = apply_requests(state, requests, now=now, external_volumes=self.config.strategy_name == "external")
        if void:
            new = replace(
                new, disruptions=MappingProxyType({i: e for i, e in new.disruptions.items() if i not in void})
            )
        if not self._persist(new):
            log.error("maintenance moves not recorded (state not written); asked again with the next window")
            return
        for r in requests:
            log.info(
                "node %d task %s: %s: maintenance queued for the disruption planner", r.node_id, r.task_id, r.reason
            )
            record = new.nodes[r.node_id]
            self._event(f"{r.reason}: queued for the disruption planner", r.node_id, record.state.value)
        for node_id in void:
            record = state.nodes[node_id]
            log.info(
                "node %d task %s: maintenance of agent %s no longer scheduled: its queued move is dropped",
                node_id,
                record.task_id,
                record.agent_id,
            )

    def _drive_maintenance(self, state: ClusterState, ready: frozenset[int]) -> tuple[ClusterState, list[Call]]:
        """The maintenance part of a planner round (not persisted yet): stop the moves the monitor
        prepared (``ready``), and warn once per task about a move still on its agent when the window
        has started (it goes on: the master kills the task when the machine goes down)."""
        now = self._clock()
        for node_id in late(state, self.moves.windows, now):
            record = state.nodes[node_id]
            if (node_id, record.task_id) in self.moves.warned:
                continue
            self.moves.warned.add((node_id, record.task_id))
            window = self.moves.windows.get(record.agent_id)
            log.warning(
                "node %d task %s: still on agent %s when its maintenance window started (%s); the move goes on, "
                "and Mesos kills the task when the machine goes down",
                node_id,
                record.task_id,
                record.agent_id,
                window.text() if window is not None else "window unknown",
            )
        stopped = stop_ready(state, ready)
        for node_id, message in stopped.messages:
            log.info("%s (task %s)", message, state.nodes[node_id].task_id)
        return stopped.state, [Kill(task_id, agent_id) for _, task_id, agent_id in stopped.kills]

    def on_inverse_offers(self, raw_offers: Sequence[object]) -> list[Call]:
        """INVERSE_OFFERS: accept each whose agent holds no node of ours, decline the others."""
        offers = []
        for raw in raw_offers:
            try:
                offers.append(parse_inverse_offer(raw))
            except MaintenanceError as error:
                # Unanswered, it stays outstanding until the machine goes down: nothing is lost.
                log.error("ignoring a malformed inverse offer: %s", error)
        if not self.may_act:
            # A state that cannot be trusted could accept too early; "not yet" is always safe, and
            # the master asks again after REFUSE_S.
            return [AnswerInverseOffers(tuple(o.id for o in offers), False, REFUSE_S)] if offers else []
        self._request_moves({o.agent_id: o.unavailability for o in offers})
        answers = answer(offers, self.state)
        hold = {o.id for o in offers if o.id in answers.reasons and moves_cover(self.state, o.agent_id)}
        for o in offers:
            window = o.unavailability.text() if o.unavailability else "with no window"
            verdict = "accepted: no node of ours there"
            if o.id in hold:
                verdict = f"held: {answers.reasons[o.id]}, being moved off; accepted once they have left"
                self.moves.held[o.agent_id] = (*self.moves.held.get(o.agent_id, ()), o.id)
            elif o.id in answers.reasons:
                verdict = f"declined: {answers.reasons[o.id]}"
            line = f"maintenance of agent {o.agent_id} {window}: {verdict}"
            # The master asks again every REFUSE_S: the same answer is routine.
            level = logging.DEBUG if self.maintenance_said.get(o.agent_id) == line else logging.INFO
            self.maintenance_said[o.agent_id] = line
            log.log(level, "%s (inverse offer %s)", line, o.id)
        calls: list[Call] = []
        if answers.accept:
            calls.append(AnswerInverseOffers(answers.accept, True, REFUSE_S))
        decline = tuple(i for i in answers.decline if i not in hold)
        if decline:
            calls.append(AnswerInverseOffers(decline, False, REFUSE_S))
        return calls

    def release_inverse_offers(self) -> list[Call]:
        """ACCEPT the held inverse offers of agents no node of ours occupies any more (after a
        status update freed the last one)."""
        if not self.moves.held or not self.may_act:
            return []
        accept: list[str] = []
        for agent_id in releasable(self.moves.held, self.state):
            ids = self.moves.held.pop(agent_id)
            accept.extend(ids)
            line = f"maintenance of agent {agent_id}: accepted: our nodes have moved off"
            self.maintenance_said[agent_id] = line
            log.info("%s (inverse offer %s)", line, ", ".join(ids))
        return [AnswerInverseOffers(tuple(accept), True, REFUSE_S)] if accept else []

    def _maintenance_declines(self, offers: list[Offer]) -> tuple[list[Offer], list[Call]]:
        """The offers a new node may use, and a DECLINE of those from agents under maintenance (refused
        briefly: the window may be moved or end)."""
        now = self._clock()
        kept: list[Offer] = []
        declined: list[str] = []
        for offer in offers:
            if not keeps_new_nodes_off(offer.unavailability, now):
                kept.append(offer)
                continue
            assert offer.unavailability is not None
            why = f"agent {offer.agent_id} ({offer.hostname}) maintenance {offer.unavailability.text()}"
            log.debug("declining offer %s: %s", offer.id, why)
            self.declines.add("maintenance", why, now)
            declined.append(offer.id)
        return kept, [Decline(tuple(declined), REFUSE_S)] if declined else []
