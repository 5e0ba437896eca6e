"""Agents that are lost, come back, or are marked gone (development tool, not for production).

Like a Mesos 1.12 master:

- a lost agent (its health checks time out) becomes UNREACHABLE: its offers are rescinded, its
  non-terminal tasks become ``TASK_UNREACHABLE`` (``TASK_LOST`` without ``PARTITION_AWARE``) /
  ``REASON_AGENT_REMOVED`` with the ``unreachable_time``, and every framework gets a FAILURE event;
- an unreachable agent that re-registers brings its tasks back: each live task is reported in its
  latest state with ``REASON_AGENT_REREGISTERED``, then the unacknowledged updates follow;
- an agent the operator marks gone (``MARK_AGENT_GONE``) never comes back: every task on it becomes
  ``TASK_GONE_BY_OPERATOR`` (``TASK_LOST``) / ``REASON_AGENT_REMOVED_BY_OPERATOR`` and is forgotten,
  and the frameworks get a FAILURE event unless the agent was already unreachable.

Every function expects the master's lock held.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass

from es_framework.dev.devcluster.agent import AgentState, AgentStatus
from es_framework.dev.devcluster.master_state import MasterState
from es_framework.dev.devcluster.offers import rescind_offers
from es_framework.dev.devcluster.resource_bags import ResourceBag
from es_framework.dev.devcluster.status_updates import forget, forward_head
from es_framework.dev.devcluster.tasks import is_terminal, status_json

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Departure:
    """How the master reports the tasks of an agent that leaves."""

    status: AgentStatus
    #: The tasks' state for ``PARTITION_AWARE`` frameworks (the others get ``TASK_LOST``).
    task_state: str
    message: str
    reason: str
    #: Tasks already terminal are not reported again (a lost agent), or are (a gone one).
    skip_terminal: bool
    #: The master forgets the tasks for good (a gone agent).
    forget: bool
    #: The updates carry the agent's ``unreachable_time``.
    unreachable_time: bool


_LOST = _Departure(
    status=AgentStatus.UNREACHABLE,
    task_state="TASK_UNREACHABLE",
    message="health check timed out",
    reason="REASON_AGENT_REMOVED",
    skip_terminal=True,
    forget=False,
    unreachable_time=True,
)
_GONE = _Departure(
    status=AgentStatus.GONE,
    task_state="TASK_GONE_BY_OPERATOR",
    message="Agent has been marked gone",
    reason="REASON_AGENT_REMOVED_BY_OPERATOR",
    skip_terminal=False,
    forget=True,
    unreachable_time=False,
)


def _depart(state: MasterState, agent: AgentState, departure: _Departure) -> None:
    """The agent leaves: offers rescinded, its tasks reported, every framework told if it was reachable."""
    was_reachable = agent.reachable
    rescind_offers(state, None, notify=True, agent_id=agent.id)
    agent.status = departure.status
    for task in state.agent_tasks(agent.id):
        framework = state.frameworks.get(task.framework_id)
        if framework is not None and not (departure.skip_terminal and is_terminal(task.state)):
            state.send_update(
                framework,
                status_json(
                    task.task_id,
                    departure.task_state if framework.partition_aware else "TASK_LOST",
                    source="SOURCE_MASTER",
                    message=departure.message,
                    reason=departure.reason,
                    agent_id=agent.id,
                    unreachable_time_ns=agent.unreachable_time_ns if departure.unreachable_time else None,
                ),
            )
        if departure.forget:
            forget(state, task)
    if was_reachable:
        for framework in state.frameworks.values():
            state.send(framework, {"type": "FAILURE", "failure": {"agent_id": {"value": agent.id}}})


def lose_agent(state: MasterState, agent_id: str) -> None:
    """The agent stops answering: its tasks become unreachable (as after a health-check timeout)."""
    agent = state.agent(agent_id)
    if agent.status is not AgentStatus.REACHABLE:
        return
    agent.unreachable_time_ns = time.time_ns()
    _depart(state, agent, _LOST)
    logger.info("agent %s lost", agent_id)


def return_agent(state: MasterState, agent_id: str, now: float) -> None:
    """An unreachable agent re-registers with its tasks; their unacknowledged updates follow."""
    agent = state.agent(agent_id)
    if agent.status is not AgentStatus.UNREACHABLE:
        raise ValueError(f"agent {agent_id} is {agent.status.value}, not UNREACHABLE")
    agent.status = AgentStatus.REACHABLE
    agent.unreachable_time_ns = None
    tasks = state.agent_tasks(agent_id)
    for task in tasks:
        framework = state.frameworks.get(task.framework_id)
        if framework is None or is_terminal(task.state):
            continue
        state.send_update(
            framework,
            status_json(
                task.task_id,
                task.state,
                source="SOURCE_MASTER",
                message="Unreachable agent re-reregistered",
                reason="REASON_AGENT_REREGISTERED",
                agent_id=agent_id,
                container_status=copy.deepcopy(task.container_status),
            ),
        )
    for task in tasks:
        forward_head(state, task, now)
    logger.info("agent %s re-registered", agent_id)


def gone_agent(state: MasterState, agent_id: str) -> None:
    """The operator marks the agent gone: its tasks are gone for good."""
    agent = state.agent(agent_id)
    if agent.status is AgentStatus.GONE:
        return
    _depart(state, agent, _GONE)
    agent.free = ResourceBag()
    logger.info("agent %s marked gone", agent_id)
