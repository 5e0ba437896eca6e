"""The engine's automatic-replacement half (``--permanentFailureTimeout``): the decision is
:mod:`es_framework.core.permanent_failures`; this runs it on the engine thread, persists the release
and says what happens. Kept apart from the event handling in :mod:`es_framework.core.engine`.

A round comes from the cluster monitor's thread through the shell's command queue
(:func:`es_framework.app.scheduler_api.replace_failed_node`): :meth:`AutomaticReplacement.replacement_round`
names at most one node whose agent is to be marked gone; the app layer sends ``MARK_AGENT_GONE``
(the ``gone`` command's code) and hands the answer to :meth:`AutomaticReplacement.fence_result`,
which frees the id only when the master accepted it. The HTTP call never runs on the engine thread.

Before an agent is marked gone the disruption planner's budget is checked
(:func:`es_framework.core.permanent_failures.admit`: the dead node's own absence does not hold it
back, another node away does), with Elasticsearch's last answer (the planner round's, kept by
:class:`~es_framework.core.engine_commands.OperatorCommands`) when it is at most :data:`SEEN_FRESH_S`
old. A replacement held back is logged once, with the predicate.

Logs: a WARNING before an agent is marked gone and when a node is replaced (node id, task id, agent,
how long it has been out of reach), an ERROR when the master refused; a node left reserved past the
timeout (no opt-in) is a WARNING once; every other reason to wait is INFO when it changes, else DEBUG.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from es_framework.config import Config
from es_framework.core import permanent_failures as pf
from es_framework.core.disruption_seen import Observation, Seen
from es_framework.core.mesos_calls import Call
from es_framework.core.node_state import ClusterState

log = logging.getLogger("es_framework.core.engine")

#: Elasticsearch's answer from a planner round older than this is not used for the admission.
SEEN_FRESH_S = 120.0


@dataclass(frozen=True)
class ReplacementMemory:
    """What the engine remembers between rounds (not stored: a new leader starts with none of it)."""

    #: Agents this scheduler marked gone (their nodes are released without asking again).
    fenced_agents: frozenset[str] = frozenset()
    #: Agent -> when marking it gone last failed.
    failed_fences: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    #: The last reason said, so a reason to wait is logged once, not every round.
    said: str = ""


class AutomaticReplacement:
    """Mixed into :class:`~es_framework.core.engine.Engine`, which provides what is declared here."""

    config: Config
    state: ClusterState
    may_act: bool
    replacements: ReplacementMemory
    last_seen: tuple[float, Observation] | None
    _clock: Callable[[], float]

    def _persist(self, state: ClusterState) -> bool:
        raise NotImplementedError

    def _event(self, message: str, node_id: int | None = None, state: str | None = None) -> None:
        raise NotImplementedError

    def _offer_interest(self, *, force: bool = False) -> list[Call]:
        raise NotImplementedError

    def _replacement_settings(self) -> pf.Settings:
        c = self.config
        return pf.Settings(c.permanent_failure_timeout_s, c.replacement_interval_s, c.mark_agent_gone_after_timeout)

    def replacement_round(self) -> tuple[pf.Choice | None, list[Call]]:
        """The node whose agent the caller must mark gone now (then :meth:`fence_result`), or None.
        Nothing while this engine may not act: marking an agent gone cannot be undone."""
        if not self.may_act or self.config.permanent_failure_timeout_s <= 0:
            return None, []
        memory, now = self.replacements, self._clock()
        choice = pf.decide(
            self.state,
            now,
            self._replacement_settings(),
            fenced_agents=memory.fenced_agents,
            failed_fences=memory.failed_fences,
        )
        seen = self.last_seen[1] if self.last_seen and now - self.last_seen[0] <= SEEN_FRESH_S else None
        choice = pf.admit(
            choice,
            self.state,
            max_unavailable=self.config.max_unavailable,
            framework_name=self.config.framework_name,
            seen=seen if isinstance(seen, Seen) else None,
        )
        if choice.step is pf.Step.NONE:
            if choice.reason != memory.said:
                level = logging.WARNING if choice.node_id is not None else logging.INFO
                log.log(level, "automatic replacement: %s", choice.reason)
                if choice.node_id is not None:
                    self._event(f"not replaced automatically: {choice.reason}", choice.node_id)
            else:
                log.debug("automatic replacement: %s", choice.reason)
            self.replacements = replace(memory, said=choice.reason)
            return None, []
        self.replacements = replace(memory, said="")
        if choice.step is pf.Step.RELEASE:
            return None, self._release_replaced(choice)
        log.warning("node %s task %s: %s", choice.node_id, choice.task_id, choice.reason)
        self._event(f"marking agent {choice.agent_id} gone: {choice.reason}", choice.node_id)
        return choice, []

    def fence_result(self, choice: pf.Choice, problem: str | None) -> tuple[str, list[Call]]:
        """The master's answer to marking ``choice``'s agent gone (``problem`` None: accepted). Only then
        is the node released; a refusal leaves it reserved and is tried again later."""
        memory, agent = self.replacements, choice.agent_id or ""
        if problem is not None:
            message = (
                f"node {choice.node_id} task {choice.task_id}: agent {agent} could NOT be marked gone ({problem}); "
                f"the node stays reserved, trying again in {pf.FENCE_RETRY_S:g}s"
            )
            log.error("%s", message)
            self._event(message, choice.node_id)
            failed = MappingProxyType({**memory.failed_fences, agent: self._clock()})
            self.replacements = replace(memory, failed_fences=failed)
            return message, []
        failed = MappingProxyType({a: t for a, t in memory.failed_fences.items() if a != agent})
        self.replacements = replace(memory, fenced_agents=memory.fenced_agents | {agent}, failed_fences=failed)
        log.warning("node %s task %s: agent %s is marked gone in Mesos (fenced)", choice.node_id, choice.task_id, agent)
        return f"agent {agent} marked gone", self._release_replaced(choice)

    def _release_replaced(self, choice: pf.Choice) -> list[Call]:
        if not self.may_act:
            log.warning("node %s task %s: not released now: the scheduler cannot act", choice.node_id, choice.task_id)
            return []
        now = self._clock()
        if not self._persist(pf.release_replaced(self.state, choice, now)):
            log.error("node %s task %s: the release could not be written; trying again", choice.node_id, choice.task_id)
            return []
        since = f"{now - choice.since:.0f}s" if choice.since is not None else "an unknown time"
        message = (
            f"replaced automatically: task {choice.task_id} on agent {choice.agent_id} was out of reach for {since} "
            f"(--permanentFailureTimeout {self.config.permanent_failure_timeout_s:g}s) and its agent is marked gone; "
            f"node {choice.node_id} is launched again with the same id"
        )
        log.warning("node %s task %s: %s", choice.node_id, choice.task_id, message)
        self._event(message, choice.node_id)
        return self._offer_interest()
