"""One executor backend for ``DOCKER`` executors, another for the rest (development tool, not for production).

:class:`RoutingExecutorBackend` sends executors whose container type is ``DOCKER`` to a Docker
backend and every other one to another backend (``ProcessExecutorBackend``), for a cluster whose
tasks use both::

    DevMaster(agents, backend=RoutingExecutorBackend(
        docker=DockerExecutorBackend("unix:///…/docker.sock", workdir),
        default=ProcessExecutorBackend(workdir)))
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from es_framework.dev.devcluster.docker_run import is_docker_executor
from es_framework.dev.devcluster.errors import CallError
from es_framework.dev.devcluster.executors import AgentSide, ExecutorAPI, ExecutorBackend, ExecutorHost, ExecutorRef
from es_framework.dev.devcluster.recordio import EventStream


class RoutingExecutorBackend:
    """Sends ``DOCKER`` executors to ``docker`` and every other one to ``default`` (development tool).

    Kills, messages, shutdowns and executor API calls go to the backend that launched the executor.
    """

    def __init__(self, *, docker: ExecutorBackend, default: ExecutorBackend) -> None:
        self.docker = docker
        self.default = default
        self._lock = threading.Lock()
        self._routes: dict[tuple[str, str], ExecutorBackend] = {}

    @property
    def backends(self) -> tuple[ExecutorBackend, ExecutorBackend]:
        return self.docker, self.default

    def backend_for(self, framework_id: str, executor_id: str) -> ExecutorBackend:
        with self._lock:
            return self._routes.get((framework_id, executor_id), self.default)

    # -------------------------------------------------------------- wiring (what DevMaster looks for)

    @property
    def executor_api(self) -> RoutingExecutorBackend:
        return self

    def attach(self, master: ExecutorHost) -> None:
        for backend in self.backends:
            attach = getattr(backend, "attach", None)
            if attach is not None:
                attach(master)

    def close(self) -> None:
        for backend in self.backends:
            close = getattr(backend, "close", None)
            if close is not None:
                close()

    def state(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for backend in self.backends:
            state = getattr(backend, "state", None)
            if callable(state):
                out.extend(state())
        return out

    # -------------------------------------------------------------- ExecutorBackend

    def launch(self, agent: AgentSide, ref: ExecutorRef, task_info: Mapping[str, Any]) -> None:
        backend = self.docker if is_docker_executor(task_info) else self.default
        with self._lock:
            self._routes[(ref.framework_id, ref.executor_id)] = backend
        backend.launch(agent, ref, task_info)

    def kill(self, agent: AgentSide, ref: ExecutorRef, task_id: str) -> None:
        self.backend_for(ref.framework_id, ref.executor_id).kill(agent, ref, task_id)

    def message(self, agent: AgentSide, ref: ExecutorRef, data: bytes) -> None:
        self.backend_for(ref.framework_id, ref.executor_id).message(agent, ref, data)

    def shutdown(self, ref: ExecutorRef) -> None:
        self.backend_for(ref.framework_id, ref.executor_id).shutdown(ref)

    # -------------------------------------------------------------- executor API

    def _api_for(self, call: Mapping[str, Any]) -> ExecutorAPI:
        framework_id = str((call.get("framework_id") or {}).get("value", ""))
        executor_id = str((call.get("executor_id") or {}).get("value", ""))
        api: ExecutorAPI | None = getattr(self.backend_for(framework_id, executor_id), "executor_api", None)
        if api is None:
            raise CallError(400, f"Executor {executor_id} of framework {framework_id} is not known to this agent")
        return api

    def executor_subscribe(self, call: dict[str, Any]) -> EventStream:
        return self._api_for(call).executor_subscribe(call)

    def executor_stream_closed(self, stream: EventStream) -> None:
        for backend in self.backends:
            api: ExecutorAPI | None = getattr(backend, "executor_api", None)
            if api is not None:
                api.executor_stream_closed(stream)

    def executor_call(self, call: dict[str, Any]) -> None:
        self._api_for(call).executor_call(call)
