"""RECONCILE and KILL on the development master (development tool, not for production).

RECONCILE, explicit and implicit, answers as a Mesos 1.12 master does for ``PARTITION_AWARE``
frameworks (``TASK_LOST`` for the others): the latest state forwarded for a task on a reachable
agent, with that update's ``healthy`` (``Master::reconcile`` passes ``getTaskHealth``,
``src/master/master.cpp``), else ``TASK_UNREACHABLE`` / ``TASK_GONE`` / ``TASK_GONE_BY_OPERATOR`` / ``TASK_UNKNOWN`` by
what the master knows of the agent named. The answers carry no ``uuid`` and are never re-sent. A
KILL of a task the master does not know (or whose agent it cannot reach) reconciles it.

Every function expects the master's lock held.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable
from typing import Any

from es_framework.dev.devcluster.agent import AgentStatus
from es_framework.dev.devcluster.calls import value
from es_framework.dev.devcluster.executors import AgentSide
from es_framework.dev.devcluster.frameworks import Framework
from es_framework.dev.devcluster.master_state import MasterState
from es_framework.dev.devcluster.tasks import Task, is_terminal, status_json

logger = logging.getLogger(__name__)


def kill(state: MasterState, agent_side: AgentSide, framework: Framework, body: dict[str, Any]) -> None:
    """KILL: the executor kills the task; an unknown task is reconciled instead."""
    task_id = str(value(body.get("task_id")))
    task = state.tasks.get((framework.id, task_id))
    if task is None or not state.agent_reachable(task.agent_id):
        logger.info("framework %s: cannot kill unknown task %s; reconciling it", framework.id, task_id)
        reconcile(state, framework, [{"task_id": {"value": task_id}, "agent_id": body.get("agent_id")}])
        return
    if not is_terminal(task.state):
        state.backend.kill(agent_side, task.ref, task_id)


def reconcile(state: MasterState, framework: Framework, entries: Iterable[dict[str, Any]]) -> None:
    """RECONCILE of ``entries`` (``[]``: implicit, every task of the framework on a reachable agent)."""
    entries = list(entries)
    if not entries:
        for known in list(state.tasks.values()):
            if known.framework_id == framework.id and state.agent_reachable(known.agent_id):
                state.send_update(framework, _latest_state(known))
        return
    for entry in entries:
        task_id = str(value(entry.get("task_id")))
        agent_id = value(entry.get("agent_id"))
        task = state.tasks.get((framework.id, task_id))
        if task is not None and state.agent_reachable(task.agent_id):
            state.send_update(framework, _latest_state(task))
            continue
        state.send_update(framework, _unknown_task_answer(state, framework, task_id, agent_id))


def _latest_state(task: Task) -> dict[str, Any]:
    return status_json(
        task.task_id,
        task.reconciliation_state(),
        source="SOURCE_MASTER",
        message="Reconciliation: Latest task state",
        reason="REASON_RECONCILIATION",
        agent_id=task.agent_id,
        executor_id=task.executor_id,
        container_status=copy.deepcopy(task.container_status),
        healthy=task.status_update_healthy,
    )


def _unknown_task_answer(
    state: MasterState, framework: Framework, task_id: str, agent_id: str | None
) -> dict[str, Any]:
    agent = state.agents.get(agent_id) if agent_id is not None else None
    if agent is not None and agent.status is AgentStatus.DOWN:
        agent = None  # removed by START_MAINTENANCE: the master no longer knows it (recorded, §2.7)
    answer_agent: str | None = agent_id
    unreachable_time: int | None = None
    if agent is not None and agent.reachable:
        task_state, message = "TASK_GONE", "Reconciliation: Task is unknown to the agent"
    elif agent is not None and agent.status is AgentStatus.UNREACHABLE:
        task_state, message = "TASK_UNREACHABLE", "Reconciliation: Task is unreachable"
        unreachable_time = agent.unreachable_time_ns
    elif agent is not None:
        task_state, message = "TASK_GONE_BY_OPERATOR", "Reconciliation: Task is gone"
    else:
        task_state, message, answer_agent = "TASK_UNKNOWN", "Reconciliation: Task is unknown", None
    if not framework.partition_aware:
        task_state = "TASK_LOST"
    return status_json(
        task_id,
        task_state,
        source="SOURCE_MASTER",
        message=message,
        reason="REASON_RECONCILIATION",
        agent_id=answer_agent,
        unreachable_time_ns=unreachable_time,
    )
