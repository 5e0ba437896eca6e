"""The engine's agent-check half: blocking an agent whose limits a node's bootstrap checks refused,
lifting the block, and saying each once (see :mod:`es_framework.core.blocked_agents` for what
counts and why). Kept apart from the event handling in :mod:`es_framework.core.engine`.

Logs: a WARNING when an agent becomes blocked (agent, node id, task id, the checks and the fix),
an INFO when its block ends (why). In between its offers are declined under the ``agent_check``
rule, refused until the block ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from es_framework.config import Config
from es_framework.core.blocked_agents import BlockedAgents, agent_check_failure, clock_text
from es_framework.core.describe import describe
from es_framework.core.engine_stats import DeclineCounts
from es_framework.core.mesos_calls import Call, Revive
from es_framework.core.node_state import ClusterState
from es_framework.core.offers import Offer
from es_framework.core.operations import OperatorError
from es_framework.core.status_updates import StatusUpdate

log = logging.getLogger("es_framework.core.engine")


class AgentChecks:
    """Mixed into :class:`~es_framework.core.engine.Engine`, which provides what is declared here."""

    #: Replaced whole on every change: the API reads it from its own thread.
    agents: BlockedAgents
    config: Config
    agent_hostnames: dict[str, str]
    state: ClusterState
    suppressed: bool
    #: Its ``waiting`` (the missing nodes and why no offer fits) goes into the progress line.
    declines: DeclineCounts
    _clock: Callable[[], float]

    def _event(self, message: str, node_id: int | None = None, state: str | None = None) -> None:
        raise NotImplementedError

    def agents_now(self) -> tuple[BlockedAgents, float]:
        """The blocked agents and the engine's clock, for a reader on another thread (the API): the
        value is replaced whole on every change, so it is read without a lock, like the published state."""
        return self.agents, self._clock()

    def _describe(self) -> str:
        """The progress line (:func:`~es_framework.core.describe.describe`), with the blocked agents."""
        return describe(
            self.state, self.agents, self._clock(), self.config.max_nodes_per_agent, waiting=self.declines.waiting
        )

    def _agents_offered(self, offers: Sequence[Offer]) -> None:
        """Before an offer cycle: remember who offered, and end (and say) the blocks that are over."""
        self.agents, ended = self.agents.offered((o.agent_id, o.hostname) for o in offers).expire(self._clock())
        for block in ended:
            log.info(
                "%s: its block is over (--agentFailureBackoff %gs since %s failed %s): nodes may launch there again",
                block.agent(),
                self.agents.block_s,
                f"node {block.node_id} task {block.task_id}",
                block.names,
            )

    def _agent_check_failed(self, update: StatusUpdate, node_id: int) -> list[Call] | None:
        """If node ``node_id``'s failed task failed an agent check, block its agent and return the calls
        that bring the other agents' offers back at once (no crash-loop back-off: the node is fine);
        None for any other failure."""
        found = agent_check_failure(update)
        if found is None or update.agent_id is None:
            return None
        checks, source = found
        agent_id, now = update.agent_id, self._clock()
        report = update.agent_checks
        hostname = self.agent_hostnames.get(agent_id) or (report.agent if report is not None else "")
        self.agents, new = self.agents.block(
            agent_id, hostname, checks, node_id=node_id, task_id=update.task_id, now=now, source=source
        )
        block = self.agents.blocks[agent_id]
        if new:
            log.warning(
                "node %d task %s: %s failed an agent check (%s): %s. No node launches there until %s "
                "(--agentFailureBackoff, or DELETE /v1/agents/%s/failures once fixed); fix: %s. Node %d relaunches "
                "on another agent without back-off",
                node_id,
                update.task_id,
                block.agent(),
                source.value,
                block.failed(),
                clock_text(block.until),
                agent_id,
                block.fixes,
                node_id,
            )
            self._event(f"{block.agent()} blocked: {block.failed()}; fix: {block.fixes}", node_id, update.state.value)
        else:
            log.info(
                "node %d task %s: %s failed an agent check again (%s); it stays blocked, now until %s",
                node_id,
                update.task_id,
                block.agent(),
                block.names,
                clock_text(block.until),
            )
        # Agents declined while the cluster was complete may stay filtered for minutes (see failures.py).
        return [] if self.suppressed else [Revive()]

    def clear_agent_failures(self, agent_id: str) -> tuple[str, list[Call]]:
        """The operator lifts ``agent_id``'s block (it was fixed). Raises
        :class:`~es_framework.core.operations.OperatorError` 404 for an agent this scheduler has not
        heard of; an agent without a block is no error (nothing to lift)."""
        if not self.agents.knows(agent_id):
            raise OperatorError(404, f"no agent {agent_id} has offered to this scheduler or failed an agent check")
        now = self._clock()
        self.agents, block = self.agents.clear(agent_id)
        if block is None or now >= block.until:
            return f"agent {agent_id} has no agent-check failure in force: nothing to clear", []
        message = f"{block.agent()}: block lifted by the operator (it had failed {block.names}); nodes may launch there"
        log.info("%s", message)
        self._event(message)
        # Its offers were refused until the block's end: REVIVE drops that filter (when offers are wanted).
        return message, [] if self.suppressed else [Revive()]

    def on_agent_lost(self, agent_id: str) -> list[Call]:
        """The master removed ``agent_id`` (a ``FAILURE`` event without an executor): whatever comes back
        registers again, so its block is lifted."""
        self.agents, block = self.agents.clear(agent_id)
        if block is not None and self._clock() < block.until:
            log.info("%s: block lifted, the agent was lost (it is tried again once it re-registers)", block.agent())
        return []
