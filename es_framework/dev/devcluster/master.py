"""The development Mesos master (development tool, not for production).

:class:`DevMaster` keeps the state of one simulated Mesos master with its agents and serves it
over HTTP (see :mod:`.http_api`): ``GET /version``, the v1 scheduler API ``POST /api/v1/scheduler``
and control endpoints under ``/devcluster/``. Every method here is also callable in-process.

It behaves like a Mesos 1.12 master (shapes recorded from a real one); each concept has its module,
whose docstring says what is simulated and how: :mod:`.calls` (call validation),
:mod:`.subscriptions` (SUBSCRIBE, heartbeats, failover, TEARDOWN), :mod:`.offers` (allocation,
filters, DECLINE, REVIVE), :mod:`.launching` (ACCEPT with LAUNCH; what an agent's ``--isolation``
refuses: :mod:`.isolation`), :mod:`.status_updates`
(executor updates, re-sends, ACKNOWLEDGE), :mod:`.reconciliation` (RECONCILE, KILL),
:mod:`.messages` (framework messages), :mod:`.agent_lifecycle` (agents lost, back, gone) and
:mod:`.maintenance_ops` (maintenance schedules, inverse offers, machines down and up; the data in
:mod:`.maintenance`). They
all work on one :class:`~.master_state.MasterState`, always under this master's lock.

What it does not: leader election and redirects, authentication, offer operations other than
LAUNCH (RESERVE, CREATE, LAUNCH_GROUP, ...), operation status, quotas, weights,
offer timeouts, several roles of a ``MULTI_ROLE`` framework (its first role is used), and it
keeps nothing across restarts of its process (:meth:`DevMaster.restart` fails over in place:
:mod:`.failover`).
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from es_framework.dev.devcluster import (
    agent_lifecycle,
    failover,
    launching,
    maintenance_ops,
    offers,
    reconciliation,
    status_updates,
    subscriptions,
)
from es_framework.dev.devcluster import messages as framework_messages
from es_framework.dev.devcluster.agent import AgentSpec
from es_framework.dev.devcluster.attachments import Attachment
from es_framework.dev.devcluster.calls import IGNORED_CALLS, NOT_IMPLEMENTED_CALLS, validate_call, value
from es_framework.dev.devcluster.errors import CallError
from es_framework.dev.devcluster.executors import ExecutorBackend, ExecutorRef, FakeExecutorBackend
from es_framework.dev.devcluster.faults import FaultSwitches, switches
from es_framework.dev.devcluster.frameworks import Subscription
from es_framework.dev.devcluster.http_api import MasterHTTPServer
from es_framework.dev.devcluster.master_state import MasterOptions, MasterState
from es_framework.dev.devcluster.tasks import is_terminal

logger = logging.getLogger(__name__)


def default_agents(count: int = 2) -> list[AgentSpec]:
    return [
        AgentSpec(
            id=f"devcluster-agent-{n}-S0",
            hostname=f"agent{n}.devcluster.local",
            ports=((31000 + 1000 * n, 31999 + 1000 * n),),
            attributes=(("rack", f"r{n}"), ("zone", f"z{n}")),
            port=5051 + n,
        )
        for n in range(count)
    ]


class DevMaster:
    """A Mesos master for one machine. ``start()`` serves it; every operation is a method too."""

    validate_call = staticmethod(validate_call)

    def __init__(
        self,
        agents: Sequence[AgentSpec] | None = None,
        options: MasterOptions | None = None,
        *,
        backend: ExecutorBackend | None = None,
        **overrides: Any,
    ) -> None:
        self.options = dataclasses.replace(options or MasterOptions(), **overrides)
        self.backend: ExecutorBackend = backend if backend is not None else FakeExecutorBackend()
        self.master_id = str(uuid.uuid4())
        self._lock = threading.RLock()
        self._state = MasterState(
            self.master_id, self.options, agents if agents is not None else default_agents(), self.backend
        )
        self._stopping = threading.Event()
        self._clock: threading.Thread | None = None
        self._server: MasterHTTPServer | None = None
        self._server_thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> DevMaster:
        self._serve(self.options.port)
        self._stopping.clear()
        self._clock = threading.Thread(target=self._run_clock, name="devmaster-clock", daemon=True)
        self._clock.start()
        attach = getattr(self.backend, "attach", None)
        if attach is not None:
            attach(self)
        logger.info("development Mesos master %s listening on %s", self.master_id, self.address)
        return self

    def _serve(self, port: int) -> None:
        self._server = MasterHTTPServer((self.options.host, port), self)
        self._server_thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="devmaster-http", daemon=True
        )
        self._server_thread.start()

    def restart(self, down_s: float = 0.0) -> None:
        """A master failover with the registry kept (:mod:`.failover`): every connection cut, nothing
        answers for ``down_s``, then a new master id serves on the same address."""
        port = self.port
        if self._server is not None and self._server_thread is not None:
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()
            self._server_thread.join(timeout=5)
        with self._lock:
            self.master_id = str(uuid.uuid4())
            failover.fail_over(self._state, self.master_id, time.monotonic())
        time.sleep(down_s)
        self._serve(port)

    def stop(self) -> None:
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()
        self._stopping.set()
        if self._clock is not None:
            self._clock.join(timeout=5)
            self._clock = None
        with self._lock:
            for framework in self._state.frameworks.values():
                if framework.subscription is not None:
                    framework.subscription.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()
            self._server = None
        if self._server_thread is not None:
            self._server_thread.join(timeout=5)
            self._server_thread = None

    def __enter__(self) -> DevMaster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the master is not started")
        return int(self._server.server_address[1])

    @property
    def address(self) -> str:
        """``host:port``, what pymesos' ``MesosSchedulerDriver`` takes as master."""
        return f"{self.options.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def version_json(self) -> dict[str, Any]:
        return {
            "version": self.options.version,
            "build_date": "devcluster",
            "build_user": "devcluster",
            "git_tag": self.options.version,
        }

    def master_info(self) -> dict[str, Any]:
        host = self.options.host
        octets = [int(p) for p in host.split(".")] if host.count(".") == 3 else [127, 0, 0, 1]
        ip_int = octets[0] | octets[1] << 8 | octets[2] << 16 | octets[3] << 24
        port = self.port if self._server is not None else self.options.port
        return {
            "id": self.master_id,
            "ip": ip_int,
            "port": port,
            "pid": f"master@{host}:{port}",
            "hostname": "localhost",
            "version": self.options.version,
            "address": {"hostname": "localhost", "ip": host, "port": port},
            "capabilities": [{"type": "AGENT_UPDATE"}, {"type": "AGENT_DRAINING"}, {"type": "QUOTA_V2"}],
        }

    # ------------------------------------------------------------------ clock

    def _run_clock(self) -> None:
        while not self._stopping.wait(self.options.tick):
            try:
                self.tick()
            except Exception:
                logger.exception("development master clock failed")

    def tick(self, now: float | None = None) -> None:
        """Heartbeats, failover timeouts, status update re-sends and offers that are due."""
        now = time.monotonic() if now is None else now
        with self._lock:
            state = self._state
            subscriptions.heartbeats_and_failovers(state, now)
            status_updates.resend_due(state, now)
            if now >= state.next_allocation:
                state.next_allocation = now + self.options.allocation_interval
                offers.allocate(state, now)
                maintenance_ops.allocate_inverse_offers(state, now)

    def events(self, framework_id: str | None = None, event_type: str | None = None) -> list[dict[str, Any]]:
        """Copies of the events sent on framework streams, oldest first."""
        with self._lock:
            return self._state.events(framework_id, event_type)

    # ------------------------------------------------------------------ scheduler API

    def subscribe(self, call: dict[str, Any]) -> Subscription:
        """Handle a validated SUBSCRIBE; the caller streams the subscription's records."""
        now = time.monotonic()
        with self._lock:
            return subscriptions.subscribe(self._state, call, self.master_info(), now)

    def stream_closed(self, sub: Subscription) -> None:
        """The HTTP connection of a subscription is gone."""
        with self._lock:
            subscriptions.stream_closed(self._state, sub, time.monotonic())

    def handle_call(self, call: object, stream_id: str | None) -> None:
        """Any call but SUBSCRIBE. Raises :class:`CallError`; returning means 202 Accepted."""
        valid = validate_call(call)
        call_type = valid["type"]
        if call_type == "SUBSCRIBE":
            raise CallError(400, "SUBSCRIBE must open a stream")
        with self._lock:
            state = self._state
            framework = state.frameworks.get(str(value(valid["framework_id"])))
            if framework is None:
                raise CallError(400, "Framework cannot be found")
            if framework.subscription is None:
                raise CallError(403, "Framework is not subscribed")
            if stream_id is None:
                raise CallError(400, "All non-subscribe calls should include the 'Mesos-Stream-Id' header")
            if stream_id != framework.subscription.stream_id:
                raise CallError(
                    400,
                    f"The stream ID '{stream_id}' included in this request didn't match the stream ID currently "
                    f"associated with framework ID {framework.id}",
                )
            if call_type in NOT_IMPLEMENTED_CALLS:
                raise CallError(501, f"{call_type} is not implemented by the development master")
            if call_type in IGNORED_CALLS:
                logger.info("framework %s: %s ignored (not simulated)", framework.id, call_type)
                return
            now = time.monotonic()
            if call_type == "TEARDOWN":
                logger.info("framework %s tore itself down", framework.id)
                subscriptions.remove_framework(state, framework)
            elif call_type == "ACCEPT":
                launching.accept(state, self, framework, valid["accept"])
            elif call_type == "DECLINE":
                offers.decline(state, framework, valid["decline"])
            elif call_type in ("ACCEPT_INVERSE_OFFERS", "DECLINE_INVERSE_OFFERS"):
                answer = "ACCEPT" if call_type == "ACCEPT_INVERSE_OFFERS" else "DECLINE"
                maintenance_ops.answer_inverse_offers(state, framework, valid[call_type.lower()], answer, now)
            elif call_type == "REVIVE":
                offers.revive(state, framework, now)
            elif call_type == "SUPPRESS":
                framework.suppressed = True
            elif call_type == "KILL":
                reconciliation.kill(state, self, framework, valid["kill"])
            elif call_type == "ACKNOWLEDGE":
                status_updates.acknowledge(state, framework, valid["acknowledge"], now)
            elif call_type == "RECONCILE":
                reconciliation.reconcile(state, framework, valid["reconcile"].get("tasks", []))
            elif call_type == "MESSAGE":
                framework_messages.framework_message(state, self, framework, valid["message"])

    # ------------------------------------------------------------------ the agent side (called by executor backends)

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
    ) -> None:
        """An executor reports a task's state (called by executor backends)."""
        with self._lock:
            status_updates.executor_update(
                self._state,
                ref,
                task_id,
                state,
                time.monotonic(),
                message=message,
                reason=reason,
                healthy=healthy,
                data=data,
            )

    def executor_message(self, ref: ExecutorRef, data: bytes) -> None:
        """An executor sends its framework a message (called by executor backends)."""
        with self._lock:
            framework_messages.executor_message(self._state, ref, data)

    # ------------------------------------------------------------------ operator API

    def maintenance_call(self, call: dict[str, Any]) -> dict[str, Any] | None:
        """A maintenance operator call (:data:`.maintenance_ops.OPERATOR_CALLS`): a GET's answer,
        ``None`` for an empty ``200``; :class:`CallError` with Mesos' text when refused."""
        with self._lock:
            return maintenance_ops.operator_call(self._state, call, time.monotonic())

    # ------------------------------------------------------------------ control operations

    def lose_agent(self, agent_id: str) -> None:
        """The agent stops answering: its tasks become unreachable (as after a health-check timeout)."""
        with self._lock:
            agent_lifecycle.lose_agent(self._state, agent_id)

    def return_agent(self, agent_id: str) -> None:
        """An unreachable agent re-registers with its tasks; their unacknowledged updates follow."""
        with self._lock:
            agent_lifecycle.return_agent(self._state, agent_id, time.monotonic())

    def gone_agent(self, agent_id: str) -> None:
        """The operator marks the agent gone: its tasks are gone for good."""
        with self._lock:
            agent_lifecycle.gone_agent(self._state, agent_id)

    def _executor_reports(self, task_id: str, state: str, message: str | None, framework_id: str | None) -> None:
        with self._lock:
            task = self._state.find_task(task_id, framework_id)
            if is_terminal(task.state):
                raise ValueError(f"task {task_id} is already {task.state}")
            self.executor_update(task.ref, task_id, state, message=message)

    def fail_task(self, task_id: str, *, message: str | None = None, framework_id: str | None = None) -> None:
        """The task's executor reports TASK_FAILED."""
        self._executor_reports(task_id, "TASK_FAILED", message or "Failed by the development cluster", framework_id)

    def finish_task(self, task_id: str, *, message: str | None = None, framework_id: str | None = None) -> None:
        """The task's executor reports TASK_FINISHED."""
        self._executor_reports(task_id, "TASK_FINISHED", message, framework_id)

    def send_executor_message(
        self, agent_id: str, executor_id: str, data: bytes, *, framework_id: str | None = None
    ) -> None:
        """The executor sends its framework a message."""
        with self._lock:
            self._state.agent(agent_id)
            if framework_id is None:
                owners = {t.framework_id for t in self._state.agent_tasks(agent_id) if t.executor_id == executor_id}
                if len(owners) != 1:
                    raise LookupError(f"no single framework runs executor {executor_id} on agent {agent_id}")
                framework_id = owners.pop()
            self.executor_message(ExecutorRef(framework_id, agent_id, executor_id), data)

    def disconnect_framework(self, framework_id: str) -> None:
        """Close the framework's event stream, as a network failure would."""
        with self._lock:
            framework = self._state.framework(framework_id)
            if framework.subscription is not None:
                framework.subscription.close()

    def send_error(self, framework_id: str, message: str) -> None:
        """Send the framework an ERROR event."""
        with self._lock:
            self._state.send(self._state.framework(framework_id), {"type": "ERROR", "error": {"message": message}})

    # ------------------------------------------------------------------ what the master knows

    def framework_info(self, framework_id: str) -> dict[str, Any] | None:
        """The FrameworkInfo a framework subscribed with (what an agent hands its executors)."""
        with self._lock:
            framework = self._state.frameworks.get(framework_id)
            return copy.deepcopy(framework.info) if framework is not None else None

    def agent_info(self, agent_id: str) -> dict[str, Any] | None:
        """The AgentInfo of an agent (what an agent hands its executors)."""
        with self._lock:
            agent = self._state.agents.get(agent_id)
            if agent is None:
                return None
            return {
                "id": {"value": agent.id},
                "hostname": agent.spec.hostname,
                "port": agent.spec.port,
                "resources": agent.spec.total_resources().to_json(),
                "attributes": agent.spec.attributes_json(),
            }

    def agent_spec(self, agent_id: str) -> AgentSpec | None:
        """The spec of an agent (what its executors' environment gets from it, see ``executor_environment``)."""
        with self._lock:
            agent = self._state.agents.get(agent_id)
            return agent.spec if agent is not None else None

    def attachments(self) -> list[Attachment]:
        """Every executor task launched since the start with the named volumes it held, and when
        (see :mod:`.attachments`); an open one (``detached_at`` ``None``) holds them now."""
        with self._lock:
            return self._state.attachments.history()

    def faults(self, action: Callable[[FaultSwitches], Any]) -> Any:
        """``action`` on the master's fault switches, under its lock (:mod:`.faults`: the chaos runner)."""
        with self._lock:
            return action(switches(self._state))

    def rescind_offers(self) -> int:
        """Rescind every outstanding offer (``RESCIND`` to its framework); how many there were."""
        with self._lock:
            return sum(offers.rescind_offer(self._state, offer_id) for offer_id in list(self._state.offers))

    def task_states(self) -> dict[str, int]:
        """How many tasks are in each state: what :meth:`state` says of them, without building the
        rest of it (a poller at 10,000 agents must not hold the master's lock for long)."""
        with self._lock:
            return dict(collections.Counter(t.state for t in self._state.tasks.values()))

    def messages(self) -> list[dict[str, Any]]:
        """Framework → executor and executor → framework messages, ``data`` in base64."""
        with self._lock:
            return copy.deepcopy(self._state.messages)

    def state(self) -> dict[str, Any]:
        """Everything the master knows, as JSON (``GET /devcluster/state``)."""
        now = time.monotonic()
        with self._lock:
            state = self._state
            return {
                "master": {"id": self.master_id, "version": self.options.version},
                "frameworks": [
                    {
                        "id": f.id,
                        "name": f.info.get("name"),
                        "role": f.role,
                        "capabilities": sorted(f.capabilities),
                        "connected": f.connected,
                        "stream_id": f.subscription.stream_id if f.subscription else None,
                        "suppressed": f.suppressed,
                        "failover_timeout": f.failover_timeout,
                        "disconnected_for": None if f.disconnected_at is None else now - f.disconnected_at,
                    }
                    for f in state.frameworks.values()
                ],
                "removed_frameworks": sorted(state.removed_frameworks),
                "agents": [
                    {
                        "id": a.id,
                        "hostname": a.spec.hostname,
                        "isolation": a.spec.isolation,
                        "status": a.status.value,
                        "total": a.spec.total_resources().to_json(),
                        "free": a.free.to_json(),
                        "unreachable_time_ns": a.unreachable_time_ns,
                    }
                    for a in state.agents.values()
                ],
                "tasks": [t.summary() for t in state.tasks.values()],
                "offers": [
                    {
                        "id": o.id,
                        "framework_id": o.framework_id,
                        "agent_id": o.agent_id,
                        "resources": o.resources.to_json(),
                    }
                    for o in state.offers.values()
                ],
                "messages": copy.deepcopy(state.messages),
                **self._backend_state(),
            }

    def _backend_state(self) -> dict[str, Any]:
        state = getattr(self.backend, "state", None)
        return {"executors": state()} if callable(state) else {}


__all__ = ["CallError", "DevMaster", "MasterOptions", "default_agents"]
