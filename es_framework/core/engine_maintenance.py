"""The engine's Mesos-maintenance half: answering inverse offers and keeping new nodes off agents
whose maintenance window has started or starts soon (see :mod:`es_framework.core.maintenance`).

Inverse offers are answered as they come, never kept: an answer with a short ``refuse_seconds``
makes the master ask again (a new inverse offer id), so the answer follows the state without a timer.

Logs: each inverse offer at INFO with the agent, the window and the answer (the nodes still there);
each offer declined under the ``maintenance`` rule at DEBUG (routine while a window lasts) and counted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from es_framework.core.engine_stats import DeclineCounts
from es_framework.core.maintenance import (
    REFUSE_S,
    MaintenanceError,
    answer,
    keeps_new_nodes_off,
    parse_inverse_offer,
)
from es_framework.core.mesos_calls import AnswerInverseOffers, Call, Decline
from es_framework.core.node_state import ClusterState
from es_framework.core.offers import Offer

log = logging.getLogger("es_framework.core.engine")


class MaintenanceAnswers:
    """Mixed into :class:`~es_framework.core.engine.Engine`, which provides what is declared here."""

    state: ClusterState
    declines: DeclineCounts
    may_act: bool
    #: agent id -> the last line said about its maintenance (repeats go to DEBUG).
    maintenance_said: dict[str, str]
    _clock: Callable[[], float]

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
        answers = answer(offers, self.state)
        for o in offers:
            window = o.unavailability.text() if o.unavailability else "with no window"
            verdict = "accepted: no node of ours there"
            if o.id in answers.reasons:
                # Not moved by the scheduler yet (issue 12): the operator's replace moves a node now.
                verdict = f"declined: {answers.reasons[o.id]}; move them before it (POST /v1/nodes/<id>/replace)"
            line = f"maintenance of agent {o.agent_id} {window}: {verdict}"
            # The master asks again every REFUSE_S: the same answer is routine.
            level = logging.DEBUG if self.maintenance_said.get(o.agent_id) == line else logging.INFO
            self.maintenance_said[o.agent_id] = line
            log.log(level, "%s (inverse offer %s)", line, o.id)
        calls: list[Call] = []
        if answers.accept:
            calls.append(AnswerInverseOffers(answers.accept, True, REFUSE_S))
        if answers.decline:
            calls.append(AnswerInverseOffers(answers.decline, False, REFUSE_S))
        return calls

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
