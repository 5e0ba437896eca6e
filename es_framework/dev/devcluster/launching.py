"""ACCEPT with LAUNCH operations on the development master (development tool, not for production).

Like a Mesos 1.12 master, LAUNCH validates each TaskInfo: a task id unique among the framework's
tasks (unreachable ones included), the offers' agent id, a command xor an executor, and resources
contained in what the offers hold, compared by name, type, reservations, other identity fields and
``allocation_info``. An invalid task gets ``TASK_ERROR`` / ``REASON_TASK_INVALID``; tasks launched
with invalid offers get ``TASK_DROPPED`` (``TASK_LOST`` without ``PARTITION_AWARE``) /
``REASON_INVALID_OFFERS``. Other offer operations (RESERVE, CREATE, LAUNCH_GROUP, ...) are logged and
ignored. What the tasks leave of the offers goes back to the agent, filtered for ``refuse_seconds``.

A valid task goes to its agent, which may still fail to launch its container: a task whose Mesos
container the agent's ``--isolation`` refuses (see :mod:`.isolation`; e.g. any ContainerInfo volume
under Mesos' default ``filesystem/posix``) never reaches the executor backend, and the agent reports
``TASK_FAILED`` / ``REASON_CONTAINER_LAUNCH_FAILED`` with Mesos' message ("Failed to launch container:
Volumes in ContainerInfo is not supported"), ``SOURCE_AGENT``, re-sent until acknowledged like every
agent update. Volumes the agent's isolators skip are left out of what the backend is given, and so is
``rlimit_info`` unless the agent runs ``posix/rlimits`` (:func:`.isolation.as_launched`).

Every function expects the master's lock held.
"""

from __future__ import annotations

import copy
import logging
import time
import uuid
from typing import Any

from es_framework.dev.devcluster.agent import AgentState
from es_framework.dev.devcluster.calls import value
from es_framework.dev.devcluster.executors import AgentSide
from es_framework.dev.devcluster.frameworks import Framework
from es_framework.dev.devcluster.isolation import (
    LAUNCH_FAILED,
    RLIMITS_ISOLATOR,
    as_launched,
    ignored_rlimits,
    launch_failure,
    unmounted_volumes,
)
from es_framework.dev.devcluster.master_state import MasterState
from es_framework.dev.devcluster.offers import add_filter, refuse_seconds, return_offer, take_offers
from es_framework.dev.devcluster.resource_bags import ResourceBag, ResourceError
from es_framework.dev.devcluster.status_updates import agent_update
from es_framework.dev.devcluster.tasks import Task, status_json

logger = logging.getLogger(__name__)


def accept(state: MasterState, agent_side: AgentSide, framework: Framework, body: dict[str, Any]) -> None:
    """ACCEPT: launch the valid tasks on the offers' agent; the rest of the offers goes back."""
    offers, error = take_offers(state, framework, body.get("offer_ids", []))
    operations = body.get("operations") or []
    task_infos: list[dict[str, Any]] = []
    for operation in operations if isinstance(operations, list) else []:
        op_type = operation.get("type") if isinstance(operation, dict) else None
        if op_type == "LAUNCH":
            infos = operation.get("launch", {}).get("task_infos", [])
            task_infos.extend(t for t in infos if isinstance(t, dict))
        else:
            logger.warning("framework %s: offer operation %s is not simulated; ignored", framework.id, op_type)
    if error is not None:
        for offer in offers:
            return_offer(state, offer)
        lost = "TASK_DROPPED" if framework.partition_aware else "TASK_LOST"
        for info in task_infos:
            message = f"Task launched with invalid offers: {error}"
            _refuse(state, framework, info, lost, message=message, reason="REASON_INVALID_OFFERS")
        logger.info("framework %s: ACCEPT with invalid offers: %s", framework.id, error)
        return
    agent = state.agents[offers[0].agent_id]
    allocation_role = offers[0].allocation_role
    pool = ResourceBag()
    for offer in offers:
        pool = pool + offer.resources
    launched: set[str] = set()
    for info in task_infos:
        problem, resources = _validate_task(
            state, framework, info, agent=agent, pool=pool, launched=launched, allocation_role=allocation_role
        )
        task_id = value(info.get("task_id")) or ""
        if problem is not None:
            logger.info("framework %s: task %s invalid: %s", framework.id, task_id, problem)
            _refuse(state, framework, info, "TASK_ERROR", message=problem, reason="REASON_TASK_INVALID")
            continue
        pool = pool - resources
        launched.add(task_id)
        _launch(state, agent_side, framework, agent, info, resources=resources)
    if pool:
        agent.free = agent.free + pool
        add_filter(framework, agent, pool, refuse_seconds(state, body.get("filters")))


def _refuse(
    state: MasterState, framework: Framework, info: dict[str, Any], task_state: str, *, message: str, reason: str
) -> None:
    """The master's own update for a task it does not launch."""
    state.send_update(
        framework,
        status_json(
            value(info.get("task_id")) or "",
            task_state,
            source="SOURCE_MASTER",
            message=message,
            reason=reason,
            agent_id=value(info.get("agent_id")),
        ),
    )


def _validate_task(
    state: MasterState,
    framework: Framework,
    info: dict[str, Any],
    *,
    agent: AgentState,
    pool: ResourceBag,
    launched: set[str],
    allocation_role: str,
) -> tuple[str | None, ResourceBag]:
    task_id = value(info.get("task_id"))
    empty = ResourceBag()
    if not task_id:
        return "Task ID must not be empty", empty
    if (framework.id, task_id) in state.tasks or task_id in launched:
        return f"Task has duplicate ID: {task_id}", empty
    agent_id = value(info.get("agent_id"))
    if agent_id != agent.id:
        return f"Task uses invalid agent: {agent_id}", empty
    if ("command" in info) == ("executor" in info):
        return "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present", empty
    raw_resources = list(info.get("resources") or [])
    executor = info.get("executor")
    if isinstance(executor, dict):
        if value(executor.get("executor_id")) is None:
            return "Executor has no executor_id", empty
        raw_resources.extend(executor.get("resources") or [])
    try:
        resources = ResourceBag.from_json(raw_resources)
    except ResourceError as error:
        return f"Invalid resources: {error}", empty
    misallocated = [
        r
        for r in raw_resources
        if (r.get("allocation_info") or {}).get("role", None if framework.multi_role else allocation_role)
        != allocation_role
    ]
    if misallocated or not pool.contains(resources):
        return f"Task uses more resources {resources.describe()} than available {pool.describe()}", empty
    return None, resources


def _launch(
    state: MasterState,
    agent_side: AgentSide,
    framework: Framework,
    agent: AgentState,
    info: dict[str, Any],
    *,
    resources: ResourceBag,
) -> None:
    task_id = str(value(info.get("task_id")))
    executor = info.get("executor")
    executor_id = value(executor.get("executor_id")) if isinstance(executor, dict) else None
    task = Task(
        framework_id=framework.id,
        task_id=task_id,
        agent_id=agent.id,
        executor_id=executor_id or task_id,
        info=copy.deepcopy(info),
        resources=resources,
        container_status={
            "container_id": {"value": str(uuid.uuid4())},
            "network_infos": [{"ip_addresses": [{"protocol": "IPv4", "ip_address": agent.spec.ip}]}],
        },
    )
    state.tasks[(framework.id, task_id)] = task
    logger.info("framework %s: launching task %s on agent %s", framework.id, task_id, agent.id)
    running = agent.spec.isolators
    failure = launch_failure(running, info)
    if failure is not None:
        logger.info(
            "agent %s (--isolation=%s): container of task %s failed to launch: %s",
            agent.id,
            agent.spec.isolation,
            task_id,
            failure,
        )
        agent_update(
            state,
            task,
            "TASK_FAILED",
            time.monotonic(),
            message=LAUNCH_FAILED + failure,
            reason="REASON_CONTAINER_LAUNCH_FAILED",
        )
        return
    for volume in unmounted_volumes(running, info):
        logger.warning(
            "agent %s (--isolation=%s): no isolator mounts volume %s of task %s; its container path stays a "
            "sandbox directory",
            agent.id,
            agent.spec.isolation,
            volume,
            task_id,
        )
    if ignored_rlimits(running, info):
        # Mesos says nothing: the executor's own limit check is what tells the operator.
        logger.debug(
            "agent %s (--isolation=%s): no %s isolator; the rlimit_info of task %s is ignored",
            agent.id,
            agent.spec.isolation,
            RLIMITS_ISOLATOR,
            task_id,
        )
    mounted = as_launched(running, task.info)
    state.attachments.attach(framework.id, task_id, agent.id, mounted, time.monotonic())
    state.backend.launch(agent_side, task.ref, mounted)
