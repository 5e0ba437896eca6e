"""Task status updates between executors and frameworks (development tool, not for production).

As an agent's status update manager does with the master: executor updates (and the agent's own,
such as a container that failed to launch) carry a ``uuid``; per task, the oldest unacknowledged one
is forwarded and re-sent until the framework acknowledges it, then the next one follows. Re-sends
back off as the agent's status update manager does: the first after ``status_update_resend_interval``
(Mesos: ``STATUS_UPDATE_RETRY_INTERVAL_MIN``, 10 s), each later one after twice the previous wait, at
most ``STATUS_UPDATE_RETRY_INTERVAL_MAX`` (10 min) (src/slave/constants.hpp; the doubling in
src/status_update_manager/status_update_manager_process.hpp, ``timeout``). A scheduler that falls
behind is thus not buried under a fixed-rate re-send of every update it has not acknowledged yet.
An agent that cannot reach the master forwards nothing; once it is back its updates follow. A
terminal update frees the task's resources at once; its acknowledgement makes the master forget the
task and shut its executor down. The chaos runner can duplicate and delay forwarded updates, as
Mesos may, without reordering one task's (:mod:`.faults`).

Every function expects the master's lock held.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from es_framework.dev.devcluster.calls import decode_uuid, value
from es_framework.dev.devcluster.executors import ExecutorRef
from es_framework.dev.devcluster.faults import switches
from es_framework.dev.devcluster.frameworks import Framework
from es_framework.dev.devcluster.master_state import MasterState
from es_framework.dev.devcluster.offers import give_back
from es_framework.dev.devcluster.tasks import PendingUpdate, Task, is_terminal

logger = logging.getLogger(__name__)


def executor_update(
    state: MasterState,
    ref: ExecutorRef,
    task_id: str,
    task_state: str,
    now: float,
    *,
    message: str | None = None,
    reason: str | None = None,
    healthy: bool | None = None,
    data: str | None = None,
) -> None:
    """An executor reports a task's state: queue the update, forward it if it is the oldest."""
    task = state.tasks.get((ref.framework_id, task_id))
    if task is None or task.agent_id != ref.agent_id:
        logger.warning("status update %s for unknown task %s dropped", task_state, task_id)
        return
    update = task.executor_status(task_state, message=message, reason=reason, healthy=healthy, data=data)
    queue(state, task, update, now)


def agent_update(state: MasterState, task: Task, task_state: str, now: float, *, message: str, reason: str) -> None:
    """The agent reports a task's state itself (e.g. its container failed to launch)."""
    queue(state, task, task.agent_status(task_state, message=message, reason=reason), now)


def queue(state: MasterState, task: Task, update: PendingUpdate, now: float) -> None:
    """The agent's status update manager takes ``update``: forwarded at once if it is the oldest."""
    task_state = update.state
    task.state = task_state
    task.updates.append(update)
    if is_terminal(task_state):
        release(state, task)
    if len(task.updates) == 1:
        forward_head(state, task, now)


def forward_head(state: MasterState, task: Task, now: float) -> bool:
    """The agent forwards the task's oldest unacknowledged update (if it can reach the master);
    whether it went out on the framework's stream."""
    if not task.updates or not state.agent_reachable(task.agent_id):
        return False
    head = task.updates[0]
    task.status_update_state = head.state
    healthy = head.status.get("healthy")
    task.status_update_healthy = healthy if isinstance(healthy, bool) else None
    framework = state.frameworks.get(task.framework_id)
    if framework is not None and framework.subscription is not None:
        # Through the fault switches: at once unless the chaos runner duplicates or delays it.
        switches(state).deliver_update(_sender(state), (task.framework_id, task.task_id), head.status, now)
        head.last_sent = now
        return True
    return False


def _sender(state: MasterState) -> Callable[[str, dict[str, Any]], None]:
    def send(framework_id: str, status: dict[str, Any]) -> None:
        framework = state.frameworks.get(framework_id)
        if framework is not None and framework.subscription is not None:
            state.send_update(framework, status)

    return send


#: Mesos' ``STATUS_UPDATE_RETRY_INTERVAL_MAX`` (src/slave/constants.hpp).
RESEND_INTERVAL_MAX_S = 600.0


def resend_due(state: MasterState, now: float) -> None:
    """Re-send every oldest unacknowledged update whose wait is over (see the module docstring), and
    send the updates the fault switches held back whose time has come."""
    switches(state).release_due(_sender(state), now)
    first = state.options.status_update_resend_interval
    for task in list(state.tasks.values()):
        head = task.updates[0] if task.updates else None
        if head is None:
            continue
        wait = head.retry_interval or first
        if head.last_sent is None or now - head.last_sent >= wait:
            resend = head.last_sent is not None
            if forward_head(state, task, now) and resend:
                head.retry_interval = min(2 * wait, max(first, RESEND_INTERVAL_MAX_S))


def resume_updates(state: MasterState, framework_id: str) -> None:
    """A framework (re-)subscribed: its tasks' pending updates go out on the next tick and back off
    from the first interval again, as an agent's status update manager resumes when the master
    tells it the framework failed over (``UpdateFrameworkMessage``; ``Slave::updateFramework``
    calls ``taskStatusUpdateManager->resume()``, which forwards each stream's pending update with
    ``STATUS_UPDATE_RETRY_INTERVAL_MIN``: src/slave/slave.cpp, src/status_update_manager/)."""
    for task in state.tasks.values():
        if task.framework_id == framework_id and task.updates:
            task.updates[0].last_sent = None
            task.updates[0].retry_interval = None


def acknowledge(state: MasterState, framework: Framework, ack: dict[str, Any], now: float) -> None:
    """ACKNOWLEDGE: the oldest update is done; the next follows, or a terminal one ends the task."""
    task_id = str(value(ack.get("task_id")))
    task = state.tasks.get((framework.id, task_id))
    wanted = decode_uuid(ack.get("uuid"))
    if task is None or not task.updates or decode_uuid(task.updates[0].uuid) != wanted:
        logger.info("framework %s: acknowledgement of an unknown update of task %s ignored", framework.id, task_id)
        return
    if not state.agent_reachable(task.agent_id) or value(ack.get("agent_id")) != task.agent_id:
        logger.info("framework %s: acknowledgement for task %s cannot reach its agent", framework.id, task_id)
        return
    acked = task.updates.popleft()
    if is_terminal(acked.state):
        forget(state, task)
        return
    forward_head(state, task, now)


def release(state: MasterState, task: Task) -> None:
    """The task's resources go back to its agent (once)."""
    if task.resources_released:
        return
    task.resources_released = True
    give_back(state, task.agent_id, task.resources)
    # A terminal task's container is gone; a live one is forgotten when its agent is marked gone or
    # its framework removed, which ends its container too.
    ended_as = task.state if is_terminal(task.state) else "FORGOTTEN"
    state.attachments.detach(task.framework_id, task.task_id, ended_as, time.monotonic())


def forget(state: MasterState, task: Task) -> None:
    """The master is done with the task: resources back, executor shut down."""
    release(state, task)
    state.tasks.pop((task.framework_id, task.task_id), None)
    state.backend.shutdown(task.ref)
