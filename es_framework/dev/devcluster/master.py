"""The development Mesos master (development tool, not for production).

:class:`DevMaster` keeps the state of one simulated Mesos master with its agents and serves it
over HTTP (see :mod:`.http_api`): ``GET /version``, the v1 scheduler API ``POST /api/v1/scheduler``
and control endpoints under ``/devcluster/``. Every method here is also callable in-process.

What it does like a Mesos 1.12 master (shapes recorded from a real one):

- SUBSCRIBE opens a RecordIO event stream (SUBSCRIBED, then HEARTBEAT at once and every
  ``heartbeat_interval``); re-subscribing with a known framework id within its
  ``failover_timeout`` keeps its tasks, and the old stream gets ERROR "Framework failed over" and
  is closed. A framework whose stream has been gone longer than ``failover_timeout`` is removed
  and its tasks killed. TEARDOWN does the same at once. A removed framework id is refused with
  ERROR "Framework has been removed".
- Offers: one per agent per allocation round with the agent's free resources that the
  framework's role may use (unreserved, or reserved to the role or an ancestor), the deprecated
  ``role`` field on each resource, ``allocation_info`` only for ``MULTI_ROLE`` frameworks (as Mesos
  strips it for the others), no offers of GPU agents to frameworks without ``GPU_RESOURCES``.
  Unused resources of an ACCEPT and declined ones are filtered for ``refuse_seconds`` (default
  5 s) as long as the agent offers no more than them; REVIVE clears filters and un-suppresses.
- LAUNCH validates each TaskInfo (unique task id among the framework's tasks, unreachable ones
  included; agent id; command xor executor; resources contained in what the offers hold, compared
  by name, type, reservations, other identity fields and ``allocation_info``). Invalid →
  ``TASK_ERROR``/``REASON_TASK_INVALID``; invalid offers → ``TASK_DROPPED`` (``TASK_LOST`` without
  ``PARTITION_AWARE``)/``REASON_INVALID_OFFERS``. Other offer operations are not simulated.
- Executor status updates carry a ``uuid``; per task, the oldest unacknowledged one is re-sent
  every ``status_update_resend_interval`` until acknowledged, then the next follows. Updates the
  master makes (reconciliation, agent lost/back/gone, invalid tasks) have no ``uuid``.
- RECONCILE (explicit and implicit) answers as Mesos does for ``PARTITION_AWARE`` frameworks
  (``TASK_LOST`` for the others). KILL of a task the master does not know reconciles it.

What it does not: leader election and redirects, authentication, offer operations other than
LAUNCH (RESERVE, CREATE, LAUNCH_GROUP, ...), inverse offers, operation status, quotas, weights,
offer timeouts, several roles of a ``MULTI_ROLE`` framework (its first role is used), and it
keeps nothing across restarts.
"""

from __future__ import annotations

import base64
import binascii
import collections
import copy
import dataclasses
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from es_framework.dev.devcluster.agent import AgentSpec, AgentState, AgentStatus, OfferFilter
from es_framework.dev.devcluster.errors import CallError
from es_framework.dev.devcluster.executors import ExecutorBackend, ExecutorRef, FakeExecutorBackend
from es_framework.dev.devcluster.http_api import MasterHTTPServer
from es_framework.dev.devcluster.recordio import RecordStream
from es_framework.dev.devcluster.resource_bags import ResourceBag, ResourceError
from es_framework.dev.devcluster.tasks import Task, is_terminal, status_json

logger = logging.getLogger(__name__)

MESOS_VERSION = "1.12.0"
#: Mesos caps refuse_seconds at a year.
MAX_REFUSE_SECONDS = 31536000.0
#: Mesos' minimum allocatable resources: an offer needs at least this much cpus or mem.
MIN_CPUS = 0.01
MIN_MEM = 32.0

CALL_TYPES = frozenset(
    {
        "SUBSCRIBE",
        "TEARDOWN",
        "ACCEPT",
        "DECLINE",
        "ACCEPT_INVERSE_OFFERS",
        "DECLINE_INVERSE_OFFERS",
        "REVIVE",
        "KILL",
        "SHUTDOWN",
        "ACKNOWLEDGE",
        "ACKNOWLEDGE_OPERATION_STATUS",
        "RECONCILE",
        "RECONCILE_OPERATIONS",
        "MESSAGE",
        "REQUEST",
        "SUPPRESS",
        "UPDATE_FRAMEWORK",
    }
)
#: Calls accepted and ignored (nothing here produces inverse offers, SHUTDOWN of an executor is not simulated).
_MISSING = "Failed to convert JSON into Call protobuf: Missing required fields: "
_IGNORED_CALLS = frozenset({"ACCEPT_INVERSE_OFFERS", "DECLINE_INVERSE_OFFERS", "REQUEST", "SHUTDOWN"})
_NOT_IMPLEMENTED_CALLS = frozenset({"ACKNOWLEDGE_OPERATION_STATUS", "RECONCILE_OPERATIONS", "UPDATE_FRAMEWORK"})
#: The body each call must carry.
_CALL_BODIES = {
    "ACCEPT": "accept",
    "DECLINE": "decline",
    "KILL": "kill",
    "ACKNOWLEDGE": "acknowledge",
    "RECONCILE": "reconcile",
    "MESSAGE": "message",
    "SHUTDOWN": "shutdown",
    "ACCEPT_INVERSE_OFFERS": "accept_inverse_offers",
    "DECLINE_INVERSE_OFFERS": "decline_inverse_offers",
    "REQUEST": "request",
}


@dataclass(frozen=True)
class MasterOptions:
    host: str = "127.0.0.1"
    #: 0: a free port chosen by the OS.
    port: int = 0
    heartbeat_interval: float = 15.0
    #: How often free resources are offered (Mesos' --allocation_interval, default 1 s).
    allocation_interval: float = 1.0
    #: refuse_seconds when a DECLINE or ACCEPT has no filters (Mesos: 5 s).
    default_refuse_seconds: float = 5.0
    #: How often an agent re-sends an unacknowledged status update (Mesos starts at 10 s).
    status_update_resend_interval: float = 10.0
    #: Resolution of the master's clock thread.
    tick: float = 0.05
    version: str = MESOS_VERSION
    #: Events kept for :meth:`DevMaster.events`.
    event_log_size: int = 10000


class Subscription(RecordStream):
    """A framework's SUBSCRIBE stream."""

    def __init__(self, framework_id: str) -> None:
        super().__init__()
        self.framework_id = framework_id
        self.last_heartbeat = 0.0


@dataclass
class Framework:
    id: str
    info: dict[str, Any]
    subscription: Subscription | None = None
    disconnected_at: float | None = None
    suppressed: bool = False

    @property
    def capabilities(self) -> frozenset[str]:
        caps = self.info.get("capabilities") or []
        return frozenset(str(c.get("type")) for c in caps if isinstance(c, dict))

    @property
    def multi_role(self) -> bool:
        return "MULTI_ROLE" in self.capabilities

    @property
    def partition_aware(self) -> bool:
        return "PARTITION_AWARE" in self.capabilities

    @property
    def role(self) -> str:
        roles = self.info.get("roles")
        if self.multi_role and isinstance(roles, list) and roles:
            return str(roles[0])
        return str(self.info.get("role") or "*")

    @property
    def failover_timeout(self) -> float:
        value = self.info.get("failover_timeout", 0.0)
        return float(value) if isinstance(value, int | float) else 0.0

    @property
    def connected(self) -> bool:
        return self.subscription is not None


@dataclass
class OutstandingOffer:
    id: str
    framework_id: str
    agent_id: str
    resources: ResourceBag
    allocation_role: str


def role_may_use(reservation_role: str, role: str) -> bool:
    """Unreserved resources, or reserved to ``role`` or one of its ancestors."""
    return reservation_role in ("*", role) or role.startswith(reservation_role + "/")


def _value(obj: object) -> str | None:
    """``{"value": "x"}`` → ``"x"``; anything else → None."""
    if isinstance(obj, dict) and isinstance(obj.get("value"), str):
        return str(obj["value"])
    return None


def _now_ns() -> int:
    return time.time_ns()


def _decode_uuid(text: object) -> bytes | None:
    if not isinstance(text, str):
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 16 else None


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
        self._agents: dict[str, AgentState] = {}
        for spec in agents if agents is not None else default_agents():
            if spec.id in self._agents:
                raise ValueError(f"duplicate agent id {spec.id}")
            self._agents[spec.id] = AgentState(spec=spec, free=spec.total_resources())
        self._frameworks: dict[str, Framework] = {}
        self._removed_frameworks: set[str] = set()
        self._tasks: dict[tuple[str, str], Task] = {}
        self._offers: dict[str, OutstandingOffer] = {}
        self._messages: list[dict[str, Any]] = []
        self._events: collections.deque[tuple[float, str, dict[str, Any]]] = collections.deque(
            maxlen=self.options.event_log_size
        )
        self._framework_seq = itertools.count()
        self._offer_seq = itertools.count()
        self._next_allocation = 0.0
        self._stopping = threading.Event()
        self._clock: threading.Thread | None = None
        self._server: Any = None
        self._server_thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> DevMaster:
        self._server = MasterHTTPServer((self.options.host, self.options.port), self)
        self._server_thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="devmaster-http", daemon=True
        )
        self._server_thread.start()
        self._stopping.clear()
        self._clock = threading.Thread(target=self._run_clock, name="devmaster-clock", daemon=True)
        self._clock.start()
        attach = getattr(self.backend, "attach", None)
        if attach is not None:
            attach(self)
        logger.info("development Mesos master %s listening on %s", self.master_id, self.address)
        return self

    def stop(self) -> None:
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()
        self._stopping.set()
        if self._clock is not None:
            self._clock.join(timeout=5)
            self._clock = None
        with self._lock:
            for framework in self._frameworks.values():
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
            for framework in list(self._frameworks.values()):
                sub = framework.subscription
                if sub is not None and now - sub.last_heartbeat >= self.options.heartbeat_interval:
                    sub.last_heartbeat = now
                    self._send(framework, {"type": "HEARTBEAT"})
                if (
                    sub is None
                    and framework.disconnected_at is not None
                    and now - framework.disconnected_at >= framework.failover_timeout
                ):
                    logger.info("framework %s failover timeout expired: removing it", framework.id)
                    self._remove_framework(framework)
            for task in list(self._tasks.values()):
                head = task.updates[0] if task.updates else None
                if head is not None and (
                    head.last_sent is None or now - head.last_sent >= self.options.status_update_resend_interval
                ):
                    self._forward_head(task, now)
            if now >= self._next_allocation:
                self._next_allocation = now + self.options.allocation_interval
                self._allocate(now)

    # ------------------------------------------------------------------ events

    def _send(self, framework: Framework, event: dict[str, Any]) -> None:
        if framework.subscription is None:
            return
        framework.subscription.send(event)
        self._events.append((time.time(), framework.id, copy.deepcopy(event)))

    def _send_update(self, framework: Framework, status: dict[str, Any]) -> None:
        self._send(framework, {"type": "UPDATE", "update": {"status": status}})

    def events(self, framework_id: str | None = None, event_type: str | None = None) -> list[dict[str, Any]]:
        """Copies of the events sent on framework streams, oldest first."""
        with self._lock:
            return [
                copy.deepcopy(e)
                for _, fid, e in self._events
                if (framework_id is None or fid == framework_id) and (event_type is None or e.get("type") == event_type)
            ]

    # ------------------------------------------------------------------ scheduler API

    def validate_call(self, call: object) -> dict[str, Any]:
        """The call, or :class:`CallError` with the status and reason Mesos gives."""
        if not isinstance(call, dict):
            raise CallError(400, "Failed to convert JSON into Call protobuf: Expecting a JSON object")
        call_type = call.get("type")
        if call_type is None:
            raise CallError(400, "Failed to validate scheduler::Call: Expecting 'type' to be present")
        if not isinstance(call_type, str) or call_type not in CALL_TYPES:
            raise CallError(400, f"Failed to convert JSON into Call protobuf: Failed to find enum for '{call_type}'")
        framework_id = call.get("framework_id")
        if framework_id is not None and _value(framework_id) is None:
            raise CallError(
                400, "Failed to convert JSON into Call protobuf: Missing required fields: framework_id.value"
            )
        if call_type == "SUBSCRIBE":
            subscribe = call.get("subscribe")
            if not isinstance(subscribe, dict):
                raise CallError(400, "Failed to validate scheduler::Call: Expecting 'subscribe' to be present")
            info = subscribe.get("framework_info")
            missing = [
                f"subscribe.framework_info.{f}"
                for f in ("user", "name")
                if not isinstance(info, dict) or not isinstance(info.get(f), str)
            ]
            if missing:
                raise CallError(
                    400, "Failed to convert JSON into Call protobuf: Missing required fields: " + ", ".join(missing)
                )
            assert isinstance(info, dict)
            if framework_id is not None and info.get("id") != framework_id:
                raise CallError(
                    400, "Failed to validate scheduler::Call: 'framework_id' differs from 'subscribe.framework_info.id'"
                )
            return call
        if framework_id is None:
            raise CallError(400, "Failed to validate scheduler::Call: Expecting 'framework_id' to be present")
        body_name = _CALL_BODIES.get(call_type)
        if body_name is not None and not isinstance(call.get(body_name), dict):
            raise CallError(400, f"Failed to validate scheduler::Call: Expecting '{body_name}' to be present")
        if call_type == "ACKNOWLEDGE":
            ack = call["acknowledge"]
            if _value(ack.get("task_id")) is None or _value(ack.get("agent_id")) is None or "uuid" not in ack:
                raise CallError(400, "Failed to convert JSON into Call protobuf: Missing required fields: acknowledge")
            if _decode_uuid(ack.get("uuid")) is None:
                raise CallError(400, "Failed to validate scheduler::Call: Not a valid UUID")
        if call_type == "KILL" and _value(call["kill"].get("task_id")) is None:
            raise CallError(400, "Failed to convert JSON into Call protobuf: Missing required fields: kill.task_id")
        if call_type == "MESSAGE":
            message = call["message"]
            if _value(message.get("agent_id")) is None or _value(message.get("executor_id")) is None:
                raise CallError(400, "Failed to convert JSON into Call protobuf: Missing required fields: message")
            try:
                base64.b64decode(str(message.get("data", "")), validate=True)
            except (binascii.Error, ValueError) as error:
                raise CallError(400, f"Failed to convert JSON into Call protobuf: bad base64 data: {error}") from None
        if call_type == "RECONCILE":
            tasks = call["reconcile"].get("tasks", [])
            if not isinstance(tasks, list) or any(
                not isinstance(t, dict) or _value(t.get("task_id")) is None for t in tasks
            ):
                raise CallError(
                    400, "Failed to convert JSON into Call protobuf: Missing required fields: reconcile.tasks"
                )
        return call

    def subscribe(self, call: dict[str, Any]) -> Subscription:
        """Handle a validated SUBSCRIBE; the caller streams the subscription's records."""
        info = copy.deepcopy(call["subscribe"]["framework_info"])
        requested_id = _value(info.get("id")) or _value(call.get("framework_id"))
        now = time.monotonic()
        with self._lock:
            if requested_id is not None and requested_id in self._removed_frameworks:
                sub = Subscription(requested_id)
                sub.send({"type": "ERROR", "error": {"message": "Framework has been removed"}})
                sub.close()
                return sub
            framework_id = requested_id or f"{self.master_id}-{next(self._framework_seq):04d}"
            info["id"] = {"value": framework_id}
            sub = Subscription(framework_id)
            framework = self._frameworks.get(framework_id)
            if framework is None:
                framework = Framework(id=framework_id, info=info)
                self._frameworks[framework_id] = framework
                logger.info("framework %s (%s) subscribed", framework_id, info.get("name"))
            else:
                old = framework.subscription
                if old is not None:
                    self._send(framework, {"type": "ERROR", "error": {"message": "Framework failed over"}})
                    old.close()
                self._rescind_offers(framework, notify=False)
                framework.info = info
                logger.info("framework %s (%s) re-subscribed", framework_id, info.get("name"))
            framework.subscription = sub
            framework.disconnected_at = None
            framework.suppressed = bool(call["subscribe"].get("suppressed_roles"))
            self._send(
                framework,
                {
                    "type": "SUBSCRIBED",
                    "subscribed": {
                        "framework_id": {"value": framework_id},
                        "heartbeat_interval_seconds": float(self.options.heartbeat_interval),
                        "master_info": self.master_info(),
                    },
                },
            )
            sub.last_heartbeat = now
            self._send(framework, {"type": "HEARTBEAT"})
            return sub

    def stream_closed(self, sub: Subscription) -> None:
        """The HTTP connection of a subscription is gone."""
        with self._lock:
            sub.closed = True
            framework = self._frameworks.get(sub.framework_id)
            if framework is None or framework.subscription is not sub:
                return
            framework.subscription = None
            framework.disconnected_at = time.monotonic()
            self._rescind_offers(framework, notify=False)
            logger.info(
                "framework %s disconnected; failover timeout %ss", framework.id, f"{framework.failover_timeout:g}"
            )

    def handle_call(self, call: object, stream_id: str | None) -> None:
        """Any call but SUBSCRIBE. Raises :class:`CallError`; returning means 202 Accepted."""
        valid = self.validate_call(call)
        call_type = valid["type"]
        if call_type == "SUBSCRIBE":
            raise CallError(400, "SUBSCRIBE must open a stream")
        with self._lock:
            framework = self._frameworks.get(str(_value(valid["framework_id"])))
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
            if call_type in _NOT_IMPLEMENTED_CALLS:
                raise CallError(501, f"{call_type} is not implemented by the development master")
            if call_type in _IGNORED_CALLS:
                logger.info("framework %s: %s ignored (not simulated)", framework.id, call_type)
                return
            now = time.monotonic()
            if call_type == "TEARDOWN":
                logger.info("framework %s tore itself down", framework.id)
                self._remove_framework(framework)
            elif call_type == "ACCEPT":
                self._accept(framework, valid["accept"], now)
            elif call_type == "DECLINE":
                self._decline(framework, valid["decline"], now)
            elif call_type == "REVIVE":
                framework.suppressed = False
                for agent in self._agents.values():
                    agent.filters.pop(framework.id, None)
                self._next_allocation = now
            elif call_type == "SUPPRESS":
                framework.suppressed = True
            elif call_type == "KILL":
                self._kill(framework, valid["kill"])
            elif call_type == "ACKNOWLEDGE":
                self._acknowledge(framework, valid["acknowledge"], now)
            elif call_type == "RECONCILE":
                self._reconcile(framework, valid["reconcile"].get("tasks", []))
            elif call_type == "MESSAGE":
                self._framework_message(framework, valid["message"])

    # ------------------------------------------------------------------ offers

    def _offerable(self, framework: Framework, agent: AgentState) -> ResourceBag:
        role = framework.role
        return agent.free.filter(lambda key: role_may_use(key.reservation_role, role))

    def _allocate(self, now: float) -> None:
        frameworks = [f for f in self._frameworks.values() if f.connected and not f.suppressed]
        if not frameworks:
            return
        batches: dict[str, list[dict[str, Any]]] = {}
        for agent in self._agents.values():
            if not agent.reachable:
                continue
            for framework in frameworks:
                if agent.spec.gpus and "GPU_RESOURCES" not in framework.capabilities:
                    continue
                offerable = self._offerable(framework, agent)
                if offerable.scalar("cpus") < MIN_CPUS and offerable.scalar("mem") < MIN_MEM:
                    continue
                if agent.filtered(framework.id, offerable, now):
                    continue
                offer = OutstandingOffer(
                    id=f"{self.master_id}-O{next(self._offer_seq)}",
                    framework_id=framework.id,
                    agent_id=agent.id,
                    resources=offerable,
                    allocation_role=framework.role,
                )
                agent.free = agent.free - offerable
                self._offers[offer.id] = offer
                batches.setdefault(framework.id, []).append(self._offer_json(framework, agent, offer))
        for framework_id, offers in batches.items():
            framework = self._frameworks[framework_id]
            logger.debug("offering %d offer(s) to framework %s", len(offers), framework_id)
            self._send(framework, {"type": "OFFERS", "offers": {"offers": offers}})

    def _offer_json(self, framework: Framework, agent: AgentState, offer: OutstandingOffer) -> dict[str, Any]:
        spec = agent.spec
        out: dict[str, Any] = {
            "id": {"value": offer.id},
            "framework_id": {"value": framework.id},
            "agent_id": {"value": spec.id},
            "hostname": spec.hostname,
            "url": spec.url_json(),
        }
        domain = spec.domain_json()
        if domain is not None:
            out["domain"] = domain
        out["resources"] = offer.resources.to_json(offer.allocation_role if framework.multi_role else None)
        out["attributes"] = spec.attributes_json()
        return out

    def _return_offer(self, offer: OutstandingOffer) -> None:
        self._offers.pop(offer.id, None)
        agent = self._agents.get(offer.agent_id)
        if agent is not None and agent.status is not AgentStatus.GONE:
            agent.free = agent.free + offer.resources

    def _rescind_offers(self, framework: Framework | None, *, notify: bool, agent_id: str | None = None) -> None:
        for offer in list(self._offers.values()):
            if (framework is None or offer.framework_id == framework.id) and (
                agent_id is None or offer.agent_id == agent_id
            ):
                self._return_offer(offer)
                owner = self._frameworks.get(offer.framework_id)
                if notify and owner is not None:
                    self._send(owner, {"type": "RESCIND", "rescind": {"offer_id": {"value": offer.id}}})

    def _refuse_seconds(self, filters: object) -> float:
        value = filters.get("refuse_seconds") if isinstance(filters, dict) else None
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            return self.options.default_refuse_seconds
        return min(float(value), MAX_REFUSE_SECONDS)

    def _filter(self, framework: Framework, agent: AgentState, resources: ResourceBag, seconds: float) -> None:
        if seconds > 0 and resources:
            expires = time.monotonic() + seconds
            agent.filters.setdefault(framework.id, []).append(OfferFilter(expires, resources))

    def _take_offers(self, framework: Framework, offer_ids: object) -> tuple[list[OutstandingOffer], str | None]:
        """Remove the offers from the outstanding ones; the second item is why they are invalid."""
        ids = [_value(o) for o in offer_ids] if isinstance(offer_ids, list) else []
        taken: list[OutstandingOffer] = []
        error: str | None = None if ids else "No offers specified"
        seen: set[str] = set()
        for offer_id in ids:
            if offer_id is None:
                error = error or "Offer id is missing"
                continue
            if offer_id in seen:
                error = error or f"Duplicate offer {offer_id} in offer list"
                continue
            seen.add(offer_id)
            offer = self._offers.get(offer_id)
            if offer is None or offer.framework_id != framework.id:
                error = error or f"Offer {offer_id} is no longer valid"
                continue
            del self._offers[offer_id]
            if taken and offer.agent_id != taken[0].agent_id:
                error = error or (
                    f"Aggregated offers must belong to one single agent. Offer {offer_id} uses agent "
                    f"{offer.agent_id} and offer {taken[0].id} uses agent {taken[0].agent_id}"
                )
            taken.append(offer)
        return taken, error

    def _decline(self, framework: Framework, decline: dict[str, Any], now: float) -> None:
        offers, _ = self._take_offers(framework, decline.get("offer_ids", []))
        seconds = self._refuse_seconds(decline.get("filters"))
        for offer in offers:
            self._return_offer(offer)
            agent = self._agents.get(offer.agent_id)
            if agent is not None:
                self._filter(framework, agent, offer.resources, seconds)

    # ------------------------------------------------------------------ launching

    def _accept(self, framework: Framework, accept: dict[str, Any], now: float) -> None:
        offers, error = self._take_offers(framework, accept.get("offer_ids", []))
        operations = accept.get("operations") or []
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
                self._return_offer(offer)
            state = "TASK_DROPPED" if framework.partition_aware else "TASK_LOST"
            for info in task_infos:
                self._send_update(
                    framework,
                    status_json(
                        _value(info.get("task_id")) or "",
                        state,
                        source="SOURCE_MASTER",
                        message=f"Task launched with invalid offers: {error}",
                        reason="REASON_INVALID_OFFERS",
                        agent_id=_value(info.get("agent_id")),
                    ),
                )
            logger.info("framework %s: ACCEPT with invalid offers: %s", framework.id, error)
            return
        agent = self._agents[offers[0].agent_id]
        allocation_role = offers[0].allocation_role
        pool = ResourceBag()
        for offer in offers:
            pool = pool + offer.resources
        launched: set[str] = set()
        for info in task_infos:
            problem, resources = self._validate_task(
                framework, info, agent=agent, pool=pool, launched=launched, allocation_role=allocation_role
            )
            task_id = _value(info.get("task_id")) or ""
            if problem is not None:
                logger.info("framework %s: task %s invalid: %s", framework.id, task_id, problem)
                self._send_update(
                    framework,
                    status_json(
                        task_id,
                        "TASK_ERROR",
                        source="SOURCE_MASTER",
                        message=problem,
                        reason="REASON_TASK_INVALID",
                        agent_id=_value(info.get("agent_id")),
                    ),
                )
                continue
            pool = pool - resources
            launched.add(task_id)
            self._launch(framework, agent, info, resources)
        if pool:
            agent.free = agent.free + pool
            self._filter(framework, agent, pool, self._refuse_seconds(accept.get("filters")))

    def _validate_task(
        self,
        framework: Framework,
        info: dict[str, Any],
        *,
        agent: AgentState,
        pool: ResourceBag,
        launched: set[str],
        allocation_role: str,
    ) -> tuple[str | None, ResourceBag]:
        task_id = _value(info.get("task_id"))
        empty = ResourceBag()
        if not task_id:
            return "Task ID must not be empty", empty
        if (framework.id, task_id) in self._tasks or task_id in launched:
            return f"Task has duplicate ID: {task_id}", empty
        agent_id = _value(info.get("agent_id"))
        if agent_id != agent.id:
            return f"Task uses invalid agent: {agent_id}", empty
        if ("command" in info) == ("executor" in info):
            return "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present", empty
        raw_resources = list(info.get("resources") or [])
        executor = info.get("executor")
        if isinstance(executor, dict):
            if _value(executor.get("executor_id")) is None:
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

    def _launch(self, framework: Framework, agent: AgentState, info: dict[str, Any], resources: ResourceBag) -> None:
        task_id = str(_value(info.get("task_id")))
        executor = info.get("executor")
        executor_id = _value(executor.get("executor_id")) if isinstance(executor, dict) else None
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
        self._tasks[(framework.id, task_id)] = task
        logger.info("framework %s: launching task %s on agent %s", framework.id, task_id, agent.id)
        self.backend.launch(self, self._ref(task), task.info)

    @staticmethod
    def _ref(task: Task) -> ExecutorRef:
        return ExecutorRef(task.framework_id, task.agent_id, task.executor_id)

    def _release(self, task: Task) -> None:
        if task.resources_released:
            return
        task.resources_released = True
        agent = self._agents.get(task.agent_id)
        if agent is not None and agent.status is not AgentStatus.GONE:
            agent.free = agent.free + task.resources

    # ------------------------------------------------------------------ status updates (the agent side)

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
            task = self._tasks.get((ref.framework_id, task_id))
            if task is None or task.agent_id != ref.agent_id:
                logger.warning("status update %s for unknown task %s dropped", state, task_id)
                return
            update = task.executor_status(state, message=message, reason=reason, healthy=healthy, data=data)
            task.state = state
            task.updates.append(update)
            if is_terminal(state):
                self._release(task)
            if len(task.updates) == 1:
                self._forward_head(task, time.monotonic())

    def executor_message(self, ref: ExecutorRef, data: bytes) -> None:
        """An executor sends its framework a message (called by executor backends)."""
        with self._lock:
            encoded = base64.b64encode(data).decode("ascii")
            self._messages.append(
                {
                    "direction": "executor_to_framework",
                    "framework_id": ref.framework_id,
                    "agent_id": ref.agent_id,
                    "executor_id": ref.executor_id,
                    "data": encoded,
                }
            )
            framework = self._frameworks.get(ref.framework_id)
            agent = self._agents.get(ref.agent_id)
            if framework is None or agent is None or not agent.reachable:
                return
            self._send(
                framework,
                {
                    "type": "MESSAGE",
                    "message": {
                        "agent_id": {"value": ref.agent_id},
                        "executor_id": {"value": ref.executor_id},
                        "data": encoded,
                    },
                },
            )

    def _forward_head(self, task: Task, now: float) -> None:
        """The agent forwards the task's oldest unacknowledged update (if it can reach the master)."""
        agent = self._agents.get(task.agent_id)
        if not task.updates or agent is None or not agent.reachable:
            return
        head = task.updates[0]
        task.status_update_state = head.state
        framework = self._frameworks.get(task.framework_id)
        if framework is not None and framework.subscription is not None:
            self._send_update(framework, copy.deepcopy(head.status))
            head.last_sent = now

    def _acknowledge(self, framework: Framework, ack: dict[str, Any], now: float) -> None:
        task_id = str(_value(ack.get("task_id")))
        task = self._tasks.get((framework.id, task_id))
        wanted = _decode_uuid(ack.get("uuid"))
        if task is None or not task.updates or _decode_uuid(task.updates[0].uuid) != wanted:
            logger.info("framework %s: acknowledgement of an unknown update of task %s ignored", framework.id, task_id)
            return
        agent = self._agents.get(task.agent_id)
        if agent is None or not agent.reachable or _value(ack.get("agent_id")) != task.agent_id:
            logger.info("framework %s: acknowledgement for task %s cannot reach its agent", framework.id, task_id)
            return
        acked = task.updates.popleft()
        if is_terminal(acked.state):
            self._forget(task)
            return
        self._forward_head(task, now)

    def _forget(self, task: Task) -> None:
        self._release(task)
        self._tasks.pop((task.framework_id, task.task_id), None)
        self.backend.shutdown(self._ref(task))

    # ------------------------------------------------------------------ kill, reconcile, messages

    def _kill(self, framework: Framework, kill: dict[str, Any]) -> None:
        task_id = str(_value(kill.get("task_id")))
        task = self._tasks.get((framework.id, task_id))
        agent = self._agents.get(task.agent_id) if task is not None else None
        if task is None or agent is None or not agent.reachable:
            logger.info("framework %s: cannot kill unknown task %s; reconciling it", framework.id, task_id)
            self._reconcile(framework, [{"task_id": {"value": task_id}, "agent_id": kill.get("agent_id")}])
            return
        if not is_terminal(task.state):
            self.backend.kill(self, self._ref(task), task_id)

    def _reconcile(self, framework: Framework, entries: Iterable[dict[str, Any]]) -> None:
        entries = list(entries)
        if not entries:
            for known in list(self._tasks.values()):
                agent = self._agents.get(known.agent_id)
                if known.framework_id == framework.id and agent is not None and agent.reachable:
                    self._send_update(framework, self._latest_state(known))
            return
        for entry in entries:
            task_id = str(_value(entry.get("task_id")))
            agent_id = _value(entry.get("agent_id"))
            task = self._tasks.get((framework.id, task_id))
            task_agent = self._agents.get(task.agent_id) if task is not None else None
            if task is not None and task_agent is not None and task_agent.reachable:
                self._send_update(framework, self._latest_state(task))
                continue
            self._send_update(framework, self._unknown_task_answer(framework, task_id, agent_id))

    def _latest_state(self, task: Task) -> dict[str, Any]:
        return status_json(
            task.task_id,
            task.reconciliation_state(),
            source="SOURCE_MASTER",
            message="Reconciliation: Latest task state",
            reason="REASON_RECONCILIATION",
            agent_id=task.agent_id,
            executor_id=task.executor_id,
            container_status=copy.deepcopy(task.container_status),
        )

    def _unknown_task_answer(self, framework: Framework, task_id: str, agent_id: str | None) -> dict[str, Any]:
        agent = self._agents.get(agent_id) if agent_id is not None else None
        answer_agent: str | None = agent_id
        unreachable_time: int | None = None
        if agent is not None and agent.reachable:
            state, message = "TASK_GONE", "Reconciliation: Task is unknown to the agent"
        elif agent is not None and agent.status is AgentStatus.UNREACHABLE:
            state, message = "TASK_UNREACHABLE", "Reconciliation: Task is unreachable"
            unreachable_time = agent.unreachable_time_ns
        elif agent is not None:
            state, message = "TASK_GONE_BY_OPERATOR", "Reconciliation: Task is gone"
        else:
            state, message, answer_agent = "TASK_UNKNOWN", "Reconciliation: Task is unknown", None
        if not framework.partition_aware:
            state = "TASK_LOST"
        return status_json(
            task_id,
            state,
            source="SOURCE_MASTER",
            message=message,
            reason="REASON_RECONCILIATION",
            agent_id=answer_agent,
            unreachable_time_ns=unreachable_time,
        )

    def _framework_message(self, framework: Framework, message: dict[str, Any]) -> None:
        agent_id = str(_value(message.get("agent_id")))
        executor_id = str(_value(message.get("executor_id")))
        data = str(message.get("data", ""))
        self._messages.append(
            {
                "direction": "framework_to_executor",
                "framework_id": framework.id,
                "agent_id": agent_id,
                "executor_id": executor_id,
                "data": data,
            }
        )
        agent = self._agents.get(agent_id)
        if agent is None or not agent.reachable:
            logger.info("framework %s: message to executor %s on unreachable agent dropped", framework.id, executor_id)
            return
        self.backend.message(self, ExecutorRef(framework.id, agent_id, executor_id), base64.b64decode(data))

    # ------------------------------------------------------------------ frameworks

    def _remove_framework(self, framework: Framework) -> None:
        for task in [t for t in self._tasks.values() if t.framework_id == framework.id]:
            logger.info("framework %s removed: killing task %s", framework.id, task.task_id)
            self._forget(task)
        self._rescind_offers(framework, notify=False)
        for agent in self._agents.values():
            agent.filters.pop(framework.id, None)
        if framework.subscription is not None:
            framework.subscription.close()
            framework.subscription = None
        self._frameworks.pop(framework.id, None)
        self._removed_frameworks.add(framework.id)

    def _framework(self, framework_id: str) -> Framework:
        framework = self._frameworks.get(framework_id)
        if framework is None:
            raise LookupError(f"no framework {framework_id}")
        return framework

    # ------------------------------------------------------------------ control operations

    def _agent(self, agent_id: str) -> AgentState:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise LookupError(f"no agent {agent_id}")
        return agent

    def _agent_tasks(self, agent_id: str) -> list[Task]:
        return [t for t in self._tasks.values() if t.agent_id == agent_id]

    def lose_agent(self, agent_id: str) -> None:
        """The agent stops answering: its tasks become unreachable (as after a health-check timeout)."""
        with self._lock:
            agent = self._agent(agent_id)
            if agent.status is not AgentStatus.REACHABLE:
                return
            self._rescind_offers(None, notify=True, agent_id=agent_id)
            agent.status = AgentStatus.UNREACHABLE
            agent.unreachable_time_ns = _now_ns()
            for task in self._agent_tasks(agent_id):
                framework = self._frameworks.get(task.framework_id)
                if framework is None or is_terminal(task.state):
                    continue
                self._send_update(
                    framework,
                    status_json(
                        task.task_id,
                        "TASK_UNREACHABLE" if framework.partition_aware else "TASK_LOST",
                        source="SOURCE_MASTER",
                        message="health check timed out",
                        reason="REASON_AGENT_REMOVED",
                        agent_id=agent_id,
                        unreachable_time_ns=agent.unreachable_time_ns,
                    ),
                )
            for framework in self._frameworks.values():
                self._send(framework, {"type": "FAILURE", "failure": {"agent_id": {"value": agent_id}}})
            logger.info("agent %s lost", agent_id)

    def return_agent(self, agent_id: str) -> None:
        """An unreachable agent re-registers with its tasks; their unacknowledged updates follow."""
        with self._lock:
            agent = self._agent(agent_id)
            if agent.status is not AgentStatus.UNREACHABLE:
                raise ValueError(f"agent {agent_id} is {agent.status.value}, not UNREACHABLE")
            agent.status = AgentStatus.REACHABLE
            agent.unreachable_time_ns = None
            tasks = self._agent_tasks(agent_id)
            for task in tasks:
                framework = self._frameworks.get(task.framework_id)
                if framework is None or is_terminal(task.state):
                    continue
                self._send_update(
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
            now = time.monotonic()
            for task in tasks:
                self._forward_head(task, now)
            logger.info("agent %s re-registered", agent_id)

    def gone_agent(self, agent_id: str) -> None:
        """The operator marks the agent gone: its tasks are gone for good."""
        with self._lock:
            agent = self._agent(agent_id)
            if agent.status is AgentStatus.GONE:
                return
            was_reachable = agent.reachable
            self._rescind_offers(None, notify=True, agent_id=agent_id)
            agent.status = AgentStatus.GONE
            for task in self._agent_tasks(agent_id):
                framework = self._frameworks.get(task.framework_id)
                if framework is not None:
                    self._send_update(
                        framework,
                        status_json(
                            task.task_id,
                            "TASK_GONE_BY_OPERATOR" if framework.partition_aware else "TASK_LOST",
                            source="SOURCE_MASTER",
                            message="Agent has been marked gone",
                            reason="REASON_AGENT_REMOVED_BY_OPERATOR",
                            agent_id=agent_id,
                        ),
                    )
                self._forget(task)
            if was_reachable:
                for framework in self._frameworks.values():
                    self._send(framework, {"type": "FAILURE", "failure": {"agent_id": {"value": agent_id}}})
            agent.free = ResourceBag()
            logger.info("agent %s marked gone", agent_id)

    def _find_task(self, task_id: str, framework_id: str | None) -> Task:
        matches = [t for (fid, tid), t in self._tasks.items() if tid == task_id and framework_id in (None, fid)]
        if not matches:
            raise LookupError(f"no task {task_id}")
        if len(matches) > 1:
            raise ValueError(f"task id {task_id} is used by several frameworks: give the framework id")
        return matches[0]

    def _executor_reports(self, task_id: str, state: str, message: str | None, framework_id: str | None) -> None:
        with self._lock:
            task = self._find_task(task_id, framework_id)
            if is_terminal(task.state):
                raise ValueError(f"task {task_id} is already {task.state}")
            self.executor_update(self._ref(task), task_id, state, message=message)

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
            self._agent(agent_id)
            if framework_id is None:
                owners = {t.framework_id for t in self._agent_tasks(agent_id) if t.executor_id == executor_id}
                if len(owners) != 1:
                    raise LookupError(f"no single framework runs executor {executor_id} on agent {agent_id}")
                framework_id = owners.pop()
            self.executor_message(ExecutorRef(framework_id, agent_id, executor_id), data)

    def disconnect_framework(self, framework_id: str) -> None:
        """Close the framework's event stream, as a network failure would."""
        with self._lock:
            framework = self._framework(framework_id)
            if framework.subscription is not None:
                framework.subscription.close()

    def send_error(self, framework_id: str, message: str) -> None:
        """Send the framework an ERROR event."""
        with self._lock:
            self._send(self._framework(framework_id), {"type": "ERROR", "error": {"message": message}})

    def framework_info(self, framework_id: str) -> dict[str, Any] | None:
        """The FrameworkInfo a framework subscribed with (what an agent hands its executors)."""
        with self._lock:
            framework = self._frameworks.get(framework_id)
            return copy.deepcopy(framework.info) if framework is not None else None

    def agent_info(self, agent_id: str) -> dict[str, Any] | None:
        """The AgentInfo of an agent (what an agent hands its executors)."""
        with self._lock:
            agent = self._agents.get(agent_id)
            if agent is None:
                return None
            return {
                "id": {"value": agent.id},
                "hostname": agent.spec.hostname,
                "port": agent.spec.port,
                "resources": agent.spec.total_resources().to_json(),
                "attributes": agent.spec.attributes_json(),
            }

    def messages(self) -> list[dict[str, Any]]:
        """Framework → executor and executor → framework messages, ``data`` in base64."""
        with self._lock:
            return copy.deepcopy(self._messages)

    def state(self) -> dict[str, Any]:
        """Everything the master knows, as JSON (``GET /devcluster/state``)."""
        now = time.monotonic()
        with self._lock:
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
                    for f in self._frameworks.values()
                ],
                "removed_frameworks": sorted(self._removed_frameworks),
                "agents": [
                    {
                        "id": a.id,
                        "hostname": a.spec.hostname,
                        "status": a.status.value,
                        "total": a.spec.total_resources().to_json(),
                        "free": a.free.to_json(),
                        "unreachable_time_ns": a.unreachable_time_ns,
                    }
                    for a in self._agents.values()
                ],
                "tasks": [t.summary() for t in self._tasks.values()],
                "offers": [
                    {
                        "id": o.id,
                        "framework_id": o.framework_id,
                        "agent_id": o.agent_id,
                        "resources": o.resources.to_json(),
                    }
                    for o in self._offers.values()
                ],
                "messages": copy.deepcopy(self._messages),
                **self._backend_state(),
            }

    def _backend_state(self) -> dict[str, Any]:
        state = getattr(self.backend, "state", None)
        return {"executors": state()} if callable(state) else {}


__all__ = ["CallError", "DevMaster", "Framework", "MasterOptions", "Subscription", "default_agents"]
