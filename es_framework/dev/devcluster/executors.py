"""How the development master's agents run executors (development tool, not for production).

The master calls an :class:`ExecutorBackend` to launch and kill tasks and to deliver framework
messages; the backend reports back through :class:`AgentSide` exactly what an executor would
send its agent (status updates, messages). :class:`FakeExecutorBackend` simulates executors in
memory; a backend that runs real executor processes (pymesos ``MesosExecutorDriver`` against an
agent endpoint) can replace it without touching the master's task bookkeeping. Such a backend
serves the v1 executor API (:class:`ExecutorAPI`, found by the HTTP front as the backend's
``executor_api``) and learns the master's address and what an agent hands its executors from an
:class:`ExecutorHost` (the started master, given to the backend's ``attach``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from es_framework.dev.devcluster.agent import AgentSpec
from es_framework.dev.devcluster.recordio import EventStream

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExecutorRef:
    framework_id: str
    agent_id: str
    executor_id: str


class AgentSide(Protocol):
    """What an executor can do: report a task's state, send the framework a message."""

    def executor_update(
        self,
        ref: ExecutorRef,
        task_id: str,
        state: str,
        *,
        message: str | None = None,
        reason: str | None = None,
        healthy: bool | None = None,
        data: str | None = None,
    ) -> None: ...

    def executor_message(self, ref: ExecutorRef, data: bytes) -> None: ...


class ExecutorBackend(Protocol):
    def launch(self, agent: AgentSide, ref: ExecutorRef, task_info: Mapping[str, Any]) -> None: ...

    def kill(self, agent: AgentSide, ref: ExecutorRef, task_id: str) -> None: ...

    def message(self, agent: AgentSide, ref: ExecutorRef, data: bytes) -> None: ...

    def shutdown(self, ref: ExecutorRef) -> None: ...


class ExecutorAPI(Protocol):
    """An executor backend that serves the v1 executor API (the agent side of real executors)."""

    def executor_subscribe(self, call: dict[str, Any]) -> EventStream: ...

    def executor_stream_closed(self, stream: EventStream) -> None: ...

    def executor_call(self, call: dict[str, Any]) -> None: ...


class ExecutorHost(Protocol):
    """What backends of real executors need of the started master."""

    @property
    def address(self) -> str:
        """``host:port`` of the master, which serves the executor API for every agent."""
        ...

    def framework_info(self, framework_id: str) -> dict[str, Any] | None: ...

    def agent_info(self, agent_id: str) -> dict[str, Any] | None: ...

    def agent_spec(self, agent_id: str) -> AgentSpec | None:
        """The agent's spec: its IP and ``--executor_environment_variables`` go into its executors' environment."""
        ...


class FakeExecutorBackend:
    """Executors that exist only in memory.

    A launched task reports ``TASK_STARTING`` then ``TASK_RUNNING``; a kill reports
    ``TASK_KILLED``. With ``echo_messages`` every framework message is sent straight back. With
    ``healthy`` set, ``TASK_RUNNING`` carries it as ``TaskStatus.healthy``, as the node executor's
    first ``TASK_RUNNING`` carries its Elasticsearch's health (green or yellow: healthy); unset
    (the default), no health is reported, as by an executor without health checks.
    Called with the master's lock held.
    """

    def __init__(self, *, echo_messages: bool = False, healthy: bool | None = None) -> None:
        self.echo_messages = echo_messages
        self.healthy = healthy
        self.running: set[ExecutorRef] = set()

    def launch(self, agent: AgentSide, ref: ExecutorRef, task_info: Mapping[str, Any]) -> None:
        task_id = str(task_info["task_id"]["value"])
        self.running.add(ref)
        logger.debug("fake executor %s launches task %s", ref.executor_id, task_id)
        agent.executor_update(ref, task_id, "TASK_STARTING")
        agent.executor_update(ref, task_id, "TASK_RUNNING", healthy=self.healthy)

    def kill(self, agent: AgentSide, ref: ExecutorRef, task_id: str) -> None:
        logger.debug("fake executor %s kills task %s", ref.executor_id, task_id)
        agent.executor_update(ref, task_id, "TASK_KILLED", message="Killed by the fake executor")
        self.running.discard(ref)

    def message(self, agent: AgentSide, ref: ExecutorRef, data: bytes) -> None:
        if self.echo_messages:
            agent.executor_message(ref, data)

    def shutdown(self, ref: ExecutorRef) -> None:
        self.running.discard(ref)
