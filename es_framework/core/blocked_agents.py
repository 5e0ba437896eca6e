"""Agents that failed an agent check: no node is launched there until the block ends.

Elasticsearch in production mode refuses to start on an agent whose limits are too low
(``vm.max_map_count``, file descriptors, threads, memory locking: the checks of
``server/src/main/java/org/elasticsearch/bootstrap/BootstrapChecks.java``, ``MaxMapCountCheck``,
``FileDescriptorCheck``, ``MaxNumberOfThreadsCheck``, ``MlockallCheck``, ``MaxSizeVirtualMemoryCheck``,
``MaxFileSizeCheck``). That is the agent's fault, not the node's: relaunching the node there fails
the same way, while any other agent may run it. So such a failure is not counted as the node's
crash loop (:mod:`es_framework.core.failures`); the agent is *blocked* instead, for every node,
and the node relaunches on the next offer from another agent.

What counts as such a failure (:func:`agent_check_failure`): a ``TASK_FAILED`` carrying the executor's
:class:`~es_framework.contract.AgentCheckReport` (it checks the limits before it starts Elasticsearch),
or, from an executor of an earlier contract that sends no report, a bootstrap-check failure (exit 78)
whose message quotes one of the agent checks above in Elasticsearch's own words. A bootstrap check
about the node's own configuration (heap size, discovery) blocks no agent: it would fail anywhere.

A block ends when

- ``--agentFailureBackoff`` has passed (declined offers are refused until then, so the agent's
  offers come back when it ends and the node is tried there again);
- the operator clears it (``DELETE /v1/agents/{agentId}/failures``), after fixing the agent;
- the agent is lost: the master removed it and says so with a ``FAILURE`` event without an
  executor (pymesos' ``slaveLost``, for ``Engine.on_agent_lost``; seen on Mesos 1.12 when an agent
  was killed, shared/notes/facts.md §7); whatever comes back has
  re-registered. The scheduler API has no event for an agent that re-registers, so an agent
  restarted quickly (the master never removed it) keeps its block until one of the above. An agent
  restarted on a fresh work directory registers under a new agent id, which is a new agent: never
  blocked.

Blocks live in the scheduler's memory only, like the crash-loop back-off: after a failover the
first failure on a short agent blocks it again, at the price of one failed launch. Keeping them in
the state document would cost a schema version and a write for what one launch re-learns.

Pure: time comes from the caller.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType

from es_framework.contract import AgentCheck
from es_framework.core.agent_checks import refused_checks
from es_framework.core.node_state import TaskState
from es_framework.core.status_updates import StatusUpdate

#: ``--agentFailureBackoff``'s default: how long a blocked agent gets no node (seconds).
DEFAULT_BLOCK_S = 600.0


class Source(StrEnum):
    #: The executor's :class:`~es_framework.contract.AgentCheckReport` in ``TaskStatus.data``.
    REPORT = "report"
    #: Elasticsearch's exit-78 message, as an executor of an earlier contract forwards it.
    MESSAGE = "message"


def _empty() -> Mapping[str, str]:
    return MappingProxyType({})


def clock_text(seconds: float) -> str:
    """``15:20:05 UTC``: when a block ends, in words that stay true in a log or a stored reason."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%H:%M:%S UTC")


@dataclass(frozen=True)
class BlockedAgent:
    """One agent that failed an agent check: what it failed, since when, until when, and the task
    whose failure said so."""

    agent_id: str
    hostname: str
    checks: tuple[AgentCheck, ...]
    since: float
    until: float
    node_id: int
    task_id: str
    source: Source = Source.REPORT

    @property
    def names(self) -> str:
        return ", ".join(check.name for check in self.checks)

    @property
    def fixes(self) -> str:
        return "; ".join(dict.fromkeys(check.fix for check in self.checks))

    def agent(self) -> str:
        return f"agent {self.agent_id}" + (f" ({self.hostname})" if self.hostname else "")

    def failed(self) -> str:
        """What the agent failed: ``vm.max_map_count is 65530, needs 262144``, one per check."""
        return "; ".join(f"{check.name} is {check.found}, needs {check.needed}" for check in self.checks)

    def sentence(self) -> str:
        """The decline reason of its offers: the agent, what it failed, until when, and the fix."""
        return f"{self.agent()} failed {self.failed()}; blocked until {clock_text(self.until)}; fix: {self.fixes}"


@dataclass(frozen=True)
class BlockedAgents:
    """Which agents are blocked (agent id -> :class:`BlockedAgent`), and which agents offered since
    this scheduler started (agent id -> hostname), against which "every agent is blocked" is said.

    Replaced whole on every change, so a reader on another thread (the API) always sees one value."""

    block_s: float = DEFAULT_BLOCK_S
    blocks: Mapping[str, BlockedAgent] = field(default_factory=lambda: MappingProxyType({}))
    seen: Mapping[str, str] = field(default_factory=_empty)

    def active(self, agent_id: str, now: float) -> BlockedAgent | None:
        """The block of ``agent_id`` in force at ``now``; None when there is none or it has ended."""
        block = self.blocks.get(agent_id)
        return block if block is not None and now < block.until else None

    def current(self, now: float) -> tuple[BlockedAgent, ...]:
        """The blocks in force at ``now``, by agent id."""
        return tuple(b for _, b in sorted(self.blocks.items()) if now < b.until)

    def block(
        self,
        agent_id: str,
        hostname: str,
        checks: tuple[AgentCheck, ...],
        *,
        node_id: int,
        task_id: str,
        now: float,
        source: Source = Source.REPORT,
    ) -> tuple[BlockedAgents, bool]:
        """Block ``agent_id`` from ``now`` for :attr:`block_s`; True when it was not blocked before
        (say so loudly), False when a block in force is extended (a second node launched there before
        the first one failed: the checks are merged, nothing new to say)."""
        before = self.active(agent_id, now)
        if before is not None:
            merged = tuple({(c.name, c.found): c for c in (*before.checks, *checks)}.values())
            entry = replace(before, checks=merged, until=now + self.block_s)
        else:
            entry = BlockedAgent(agent_id, hostname, checks, now, now + self.block_s, node_id, task_id, source)
        blocks = MappingProxyType({**self.blocks, agent_id: entry})
        return replace(self, blocks=blocks), before is None

    def expire(self, now: float) -> tuple[BlockedAgents, tuple[BlockedAgent, ...]]:
        """Drop the blocks that ended by ``now``; return them too (each is said once)."""
        ended = tuple(b for _, b in sorted(self.blocks.items()) if now >= b.until)
        if not ended:
            return self, ()
        gone = {b.agent_id for b in ended}
        return replace(self, blocks=MappingProxyType({a: b for a, b in self.blocks.items() if a not in gone})), ended

    def clear(self, agent_id: str) -> tuple[BlockedAgents, BlockedAgent | None]:
        """Lift ``agent_id``'s block (an operator's request, or the agent was lost); the block lifted,
        or None when it had none."""
        block = self.blocks.get(agent_id)
        if block is None:
            return self, None
        return replace(self, blocks=MappingProxyType({a: b for a, b in self.blocks.items() if a != agent_id})), block

    def offered(self, agents: Iterable[tuple[str, str]]) -> BlockedAgents:
        """Remember the agents (id, hostname) that offered; ``self`` when none is new or renamed."""
        news = {agent_id: hostname for agent_id, hostname in agents if self.seen.get(agent_id) != hostname}
        if not news:
            return self
        return replace(self, seen=MappingProxyType({**self.seen, **news}))

    def knows(self, agent_id: str) -> bool:
        return agent_id in self.seen or agent_id in self.blocks

    def all_blocked(self, now: float, missing: int, busy: Iterable[str] = ()) -> bool:
        """Whether no missing node can start at ``now`` for agent checks: ``missing`` nodes are missing,
        and every agent that offered, but the ``busy`` ones (they run as many nodes as an agent may),
        is blocked."""
        taken = set(busy)
        candidates = [agent_id for agent_id in self.seen if agent_id not in taken]
        return missing > 0 and bool(candidates) and all(self.active(a, now) is not None for a in candidates)

    def no_start(self, now: float, missing: int, busy: Iterable[str] = ()) -> str | None:
        """Why no missing node can start at ``now`` (see :meth:`all_blocked`), every block quoted; None
        when a node may start."""
        taken = frozenset(busy)
        if not self.all_blocked(now, missing, taken):
            return None
        listed = "; ".join(b.sentence() for b in self.current(now) if b.agent_id not in taken)
        running = len(taken & self.seen.keys())
        others = f" (but the {running} that run as many nodes as an agent may)" if running else ""
        return (
            f"no node can start: {missing} node(s) missing, and every agent that offered{others} failed an agent "
            f"check: {listed}"
        )

    def status(self, now: float) -> str | None:
        """The blocks in force at ``now`` for the progress line, or None when there are none."""
        blocks = self.current(now)
        if not blocks:
            return None
        return "; ".join(f"{b.agent()} blocked until {clock_text(b.until)} ({b.names})" for b in blocks)


# --- which failures are agent checks ---------------------------------------------------------------

#: A failed bootstrap check: Elasticsearch's exit code 78 (``ExitCodes.CONFIG``) or its own words.
_BOOTSTRAP_FAILURE = re.compile(r"bootstrap check|exit(?:ed)?(?: with)?(?: status| code)? 78\b", re.I)


def checks_in_message(message: str) -> tuple[AgentCheck, ...]:
    """The agent checks an Elasticsearch bootstrap-check failure message quotes (none for a message
    about anything else, or for checks about the node's own settings: heap, JVM, discovery), each once."""
    if not _BOOTSTRAP_FAILURE.search(message):
        return ()
    return refused_checks(message)


def agent_check_failure(update: StatusUpdate) -> tuple[tuple[AgentCheck, ...], Source] | None:
    """The agent checks a failed task names, and where they came from; None for any other update
    (the node's own failure, to be backed off as a crash loop)."""
    if update.state is not TaskState.FAILED:
        return None
    if update.agent_checks is not None:
        return update.agent_checks.checks, Source.REPORT
    checks = checks_in_message(update.message or "")
    return (checks, Source.MESSAGE) if checks else None
