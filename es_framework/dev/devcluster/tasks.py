"""Task bookkeeping of the development master (development tool, not for production).

Independent of how executors are simulated: a :class:`Task` holds what the master knows of a task
and, like an agent's status update manager, the executor's status updates not yet acknowledged.
Only the oldest unacknowledged update of a task is forwarded (and re-sent) until the framework
acknowledges it; the next one follows. Updates the master makes itself carry no ``uuid`` and are
never re-sent. Status JSON has the shape recorded from a real Mesos 1.12 master.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from es_framework.dev.devcluster.executors import ExecutorRef
from es_framework.dev.devcluster.resource_bags import ResourceBag

TERMINAL_STATES = frozenset(
    {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST", "TASK_DROPPED", "TASK_GONE"}
)
TASK_STATES = TERMINAL_STATES | {
    "TASK_STAGING",
    "TASK_STARTING",
    "TASK_RUNNING",
    "TASK_KILLING",
    "TASK_UNREACHABLE",
    "TASK_GONE_BY_OPERATOR",
    "TASK_UNKNOWN",
}


def is_terminal(state: str) -> bool:
    return state in TERMINAL_STATES


def new_uuid_b64() -> str:
    """A status update uuid as the v1 JSON carries it: 16 random bytes, base64."""
    return base64.b64encode(uuid.uuid4().bytes).decode("ascii")


def status_json(
    task_id: str,
    state: str,
    *,
    source: str,
    message: str | None = None,
    reason: str | None = None,
    agent_id: str | None = None,
    executor_id: str | None = None,
    uuid_b64: str | None = None,
    unreachable_time_ns: int | None = None,
    container_status: dict[str, Any] | None = None,
    data: str | None = None,
    timestamp: float | None = None,
    healthy: bool | None = None,
) -> dict[str, Any]:
    """A v1 ``TaskStatus``, fields in the order a real master writes them."""
    status: dict[str, Any] = {"task_id": {"value": task_id}, "state": state}
    if message is not None:
        status["message"] = message
    status["source"] = source
    if reason is not None:
        status["reason"] = reason
    if data is not None:
        status["data"] = data
    if healthy is not None:
        status["healthy"] = healthy
    if agent_id is not None:
        status["agent_id"] = {"value": agent_id}
    if executor_id is not None:
        status["executor_id"] = {"value": executor_id}
    status["timestamp"] = time.time() if timestamp is None else timestamp
    if uuid_b64 is not None:
        status["uuid"] = uuid_b64
    if unreachable_time_ns is not None:
        status["unreachable_time"] = {"nanoseconds": unreachable_time_ns}
    if container_status is not None:
        status["container_status"] = container_status
    return status


@dataclass
class PendingUpdate:
    """An executor status update the framework has not acknowledged yet."""

    status: dict[str, Any]
    #: When it was last put on the framework's stream (None: never).
    last_sent: float | None = None
    #: How long after ``last_sent`` it is sent again (None: the first interval); doubles with each
    #: re-send (:func:`es_framework.dev.devcluster.status_updates.resend_due`).
    retry_interval: float | None = None

    @property
    def uuid(self) -> str:
        return str(self.status["uuid"])

    @property
    def state(self) -> str:
        return str(self.status["state"])


@dataclass
class Task:
    framework_id: str
    task_id: str
    agent_id: str
    executor_id: str
    info: dict[str, Any]
    resources: ResourceBag
    container_status: dict[str, Any]
    #: Latest state the executor reported.
    state: str = "TASK_STAGING"
    #: State of the latest update forwarded to the framework (what reconciliation answers).
    status_update_state: str | None = None
    #: ``healthy`` of that forwarded update (``None``: it had none), which reconciliation answers with:
    #: Mesos' ``getTaskHealth`` reads the task's latest status (``src/common/protobuf_utils.cpp``).
    status_update_healthy: bool | None = None
    updates: deque[PendingUpdate] = field(default_factory=deque)
    #: Whether the task's resources went back to the agent (terminal state reached).
    resources_released: bool = False

    @property
    def name(self) -> str:
        return str(self.info.get("name", ""))

    @property
    def ref(self) -> ExecutorRef:
        """The executor that runs the task, as the executor backend knows it."""
        return ExecutorRef(self.framework_id, self.agent_id, self.executor_id)

    def reconciliation_state(self) -> str:
        return self.status_update_state or self.state

    def executor_status(
        self,
        state: str,
        *,
        message: str | None = None,
        reason: str | None = None,
        healthy: bool | None = None,
        data: str | None = None,
    ) -> PendingUpdate:
        status = status_json(
            self.task_id,
            state,
            source="SOURCE_EXECUTOR",
            message=message,
            reason=reason,
            agent_id=self.agent_id,
            executor_id=self.executor_id,
            uuid_b64=new_uuid_b64(),
            container_status=self.container_status,
            healthy=healthy,
            data=data,
        )
        return PendingUpdate(status)

    def agent_status(self, state: str, *, message: str, reason: str) -> PendingUpdate:
        """An update the agent makes itself (its container failed to launch): ``SOURCE_AGENT``, with a
        uuid (the agent's status update manager re-sends it until acknowledged) and no container status,
        since the container is already destroyed (``Slave::sendExecutorTerminatedStatusUpdate`` and
        ``Slave::_statusUpdate`` in ``src/slave/slave.cpp``)."""
        status = status_json(
            self.task_id,
            state,
            source="SOURCE_AGENT",
            message=message,
            reason=reason,
            agent_id=self.agent_id,
            executor_id=self.executor_id,
            uuid_b64=new_uuid_b64(),
        )
        return PendingUpdate(status)

    def summary(self) -> dict[str, Any]:
        return {
            "framework_id": self.framework_id,
            "task_id": self.task_id,
            "name": self.name,
            "agent_id": self.agent_id,
            "executor_id": self.executor_id,
            "state": self.state,
            "status_update_state": self.status_update_state,
            "unacknowledged": [{"state": u.state, "uuid": u.uuid} for u in self.updates],
            "resources": self.resources.to_json(),
        }
