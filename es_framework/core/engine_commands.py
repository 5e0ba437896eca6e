"""The engine's operator commands (the REST API's scale, restart, replace, stop-drained and gone),
kept apart from the event handling in :mod:`es_framework.core.engine`.

Each checks the request against the state (:mod:`es_framework.core.operations`), persists the new
state, and only then returns the kills it implies; a refused request raises
:class:`~es_framework.core.operations.OperatorError` and changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from es_framework.core import operations
from es_framework.core.mesos_calls import Call, Kill
from es_framework.core.node_state import LIVE_STATES, ClusterState

log = logging.getLogger("es_framework.core.engine")


class OperatorCommands:
    """Mixed into :class:`~es_framework.core.engine.Engine`, which provides what is declared here."""

    state: ClusterState
    may_act: bool
    _clock: Callable[[], float]

    def _persist(self, state: ClusterState) -> bool:
        raise NotImplementedError

    def _event(self, message: str, node_id: int | None = None, state: str | None = None) -> None:
        raise NotImplementedError

    def _offer_interest(self, *, force: bool = False) -> list[Call]:
        raise NotImplementedError

    def _operate(self, outcome: operations.Outcome) -> tuple[str, list[Call]]:
        if outcome.state is not self.state and not self._persist(outcome.state):
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
        self.require_action()
        return self._operate(operations.set_desired_nodes(self.state, count, copies_needed=copies_needed))

    def restart_node(self, node_id: int) -> tuple[str, list[Call]]:
        self.require_action()
        return self._operate(operations.restart_node(self.state, node_id, now=self._clock()))

    def replace_node(self, node_id: int) -> tuple[str, list[Call]]:
        self.require_action()
        return self._operate(operations.replace_node(self.state, node_id))

    def stop_drained(self, node_id: int) -> tuple[str, list[Call]]:
        self.require_action()
        return self._operate(operations.stop_drained(self.state, node_id))

    def release_gone(self, node_id: int, task_id: str) -> tuple[str, list[Call]]:
        self.require_action()
        return self._operate(operations.release_gone(self.state, node_id, task_id))

    def pending_kills(self) -> list[Call]:
        """Kill again every task being stopped on purpose that still runs (a KILL may be lost while
        disconnected; Mesos answers a kill of an unknown task with TASK_LOST or nothing)."""
        return [
            Kill(r.task_id, r.agent_id)
            for r in sorted(self.state.nodes.values(), key=lambda r: r.node_id)
            if r.stopping is not None and r.state in LIVE_STATES
        ]
