"""Mesos maintenance as the scheduler sees it: unavailability windows and inverse offers.

An operator posts a maintenance schedule (``UPDATE_MAINTENANCE_SCHEDULE``); from then on every offer
from an agent in it carries ``unavailability`` (``Offer.unavailability`` in Mesos'
``include/mesos/v1/mesos.proto``: ``start`` as ``TimeInfo.nanoseconds``, optional ``duration`` as
``DurationInfo.nanoseconds``; no duration means the machine does not come back), and frameworks with
tasks there receive ``InverseOffer`` s (``id``, ``framework_id``, ``agent_id``, ``unavailability``;
no ``resources`` means the whole agent). Answering is per framework: ACCEPT says "nothing of mine
needs this agent any more", DECLINE says "not yet"; after either, the master sends a new inverse
offer once the answer's ``refuse_seconds`` pass (Mesos ``docs/maintenance.md``; the wire recorded in
shared/notes/mesos-maintenance-domains-reservations.md §2). START_MAINTENANCE takes the agent down
whatever the answers were: the tasks there become TASK_LOST.

What this module decides, purely: whether an offer's window has started or starts within
:data:`LEAD_S` (a new node is not placed there: an Elasticsearch node is long-lived, and one launched
now would have to move again), which of our nodes sit on an agent under maintenance (the ones to
drain and move), and the answer to each inverse offer: accept once no node of ours is on the agent,
decline with :data:`REFUSE_S` while one is, so the question comes back soon.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from es_framework.core.node_state import FREEING_STATES, ClusterState, TaskState

#: A window starting within this many seconds already keeps new nodes off the agent.
LEAD_S = 3600.0
#: refuse_seconds of a declined (or accepted) inverse offer: the master asks again after it.
REFUSE_S = 5.0


class MaintenanceError(ValueError):
    """An inverse offer or an unavailability that does not have Mesos' shape."""


@dataclass(frozen=True)
class Unavailability:
    """A maintenance window, in Unix seconds; ``end`` is None when it has no duration (forever)."""

    start: float
    end: float | None

    def text(self) -> str:
        start = _when(self.start)
        return f"from {start} until {_when(self.end)}" if self.end is not None else f"from {start} with no end"


@dataclass(frozen=True)
class InverseOffer:
    id: str
    agent_id: str
    unavailability: Unavailability | None


@dataclass(frozen=True)
class Answers:
    """Inverse offer ids to accept and to decline (both with :data:`REFUSE_S`), and why each decline."""

    accept: tuple[str, ...]
    decline: tuple[str, ...]
    reasons: Mapping[str, str]


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _nanoseconds(raw: object, where: str) -> int:
    value = raw.get("nanoseconds") if isinstance(raw, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MaintenanceError(f"{where} must be an object with integer 'nanoseconds', got {raw!r}")
    return value


def parse_unavailability(raw: object, where: str) -> Unavailability | None:
    """``Unavailability`` from the v1 JSON (absent → None)."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise MaintenanceError(f"{where}: 'unavailability' must be an object")
    start = _nanoseconds(raw.get("start"), f"{where}: 'unavailability.start'") / 1e9
    if raw.get("duration") is None:
        return Unavailability(start, None)
    duration = _nanoseconds(raw.get("duration"), f"{where}: 'unavailability.duration'")
    if duration < 0:
        raise MaintenanceError(f"{where}: 'unavailability.duration' is negative")
    return Unavailability(start, start + duration / 1e9)


def parse_inverse_offer(raw: object) -> InverseOffer:
    """One inverse offer from ``event.inverse_offers.inverse_offers[i]``."""
    if not isinstance(raw, Mapping):
        raise MaintenanceError("an inverse offer must be a JSON object")
    ids = []
    for key in ("id", "agent_id"):
        inner = raw.get(key)
        value = inner.get("value") if isinstance(inner, Mapping) else None
        if not isinstance(value, str) or not value:
            raise MaintenanceError(f"inverse offer: '{key}' must be an object with a non-empty string 'value'")
        ids.append(value)
    return InverseOffer(ids[0], ids[1], parse_unavailability(raw.get("unavailability"), f"inverse offer {ids[0]}"))


def keeps_new_nodes_off(window: Unavailability | None, now: float, lead_s: float = LEAD_S) -> bool:
    """Whether an agent with ``window`` takes no new node at ``now``: the window has started, or
    starts within ``lead_s``, and is not over."""
    if window is None or not math.isfinite(window.start):
        return False
    return now >= window.start - lead_s and (window.end is None or now < window.end)


def nodes_on_agent(state: ClusterState, agent_id: str) -> tuple[int, ...]:
    """Our nodes that may still occupy ``agent_id``: any state but one after which the task
    certainly runs nowhere (a launching, unreachable or unknown task may still be there)."""
    return tuple(
        sorted(r.node_id for r in state.nodes.values() if r.agent_id == agent_id and r.state not in FREEING_STATES)
    )


def nodes_to_move(state: ClusterState, agents: Iterable[str]) -> tuple[int, ...]:
    """The nodes on agents under maintenance that still need a maintenance request: wanted (not being
    scaled away), not already being stopped, and with no disruption of theirs in the ledger."""
    out: set[int] = set()
    for agent_id in set(agents):
        for node_id in nodes_on_agent(state, agent_id):
            record = state.nodes[node_id]
            if node_id <= state.desired_nodes and record.stopping is None and node_id not in state.disruptions:
                out.add(node_id)
    return tuple(sorted(out))


def answer(inverse_offers: Iterable[InverseOffer], state: ClusterState) -> Answers:
    """Accept each inverse offer whose agent holds no node of ours; decline the others."""
    accept: list[str] = []
    decline: list[str] = []
    reasons: dict[str, str] = {}
    for offer in inverse_offers:
        held = nodes_on_agent(state, offer.agent_id)
        if held:
            decline.append(offer.id)
            nodes = ", ".join(f"node {i} (task {state.nodes[i].task_id})" for i in held)
            reasons[offer.id] = f"{nodes} still on agent {offer.agent_id}"
        else:
            accept.append(offer.id)
    return Answers(tuple(accept), tuple(decline), reasons)


# --- machines Mesos reports DOWN ------------------------------------------------------------------


@dataclass(frozen=True)
class Machine:
    """A ``MachineID`` (``include/mesos/v1/mesos.proto``): at least one of ``hostname`` and ``ip``."""

    hostname: str
    ip: str


def parse_down_machines(raw: object) -> tuple[Machine, ...]:
    """The ``down_machines`` of the operator API's ``GET_MAINTENANCE_STATUS`` answer
    (``{"type": …, "get_maintenance_status": {"status": ClusterStatus}}``, ``master.proto``
    ``Response.GetMaintenanceStatus``; ``ClusterStatus`` in ``maintenance.proto``: ``draining_machines``
    and ``down_machines``, a key left out when its list is empty, as recorded on Mesos 1.12 in
    shared/notes/mesos-maintenance-domains-reservations.md §2.4, §2.7)."""
    body = raw.get("get_maintenance_status") if isinstance(raw, Mapping) else None
    status = body.get("status") if isinstance(body, Mapping) else None
    if not isinstance(status, Mapping):
        raise MaintenanceError("GET_MAINTENANCE_STATUS: no 'get_maintenance_status.status' object")
    down = status.get("down_machines", [])
    if not isinstance(down, list):
        raise MaintenanceError("GET_MAINTENANCE_STATUS: 'down_machines' must be a list")
    machines = []
    for entry in down:
        hostname = entry.get("hostname", "") if isinstance(entry, Mapping) else None
        ip = entry.get("ip", "") if isinstance(entry, Mapping) else None
        if not isinstance(hostname, str) or not isinstance(ip, str) or not (hostname or ip):
            raise MaintenanceError(f"GET_MAINTENANCE_STATUS: {entry!r} is not a machine id")
        machines.append(Machine(hostname, ip))
    return tuple(machines)


def on_down_machine(hostname: str, machines: Iterable[Machine]) -> bool:
    """Whether an agent with ``hostname`` (an offer's ``hostname``: the agent's ``SlaveInfo.hostname``)
    runs on one of ``machines``. Mesos puts an agent on the machine named by its hostname and the IP
    of its address (``Master::_registerSlave``) and matches machines on both, the hostname without case
    (``operator==(MachineID)``, ``include/mesos/type_utils.hpp``), so a machine named without a
    hostname holds no agent. The scheduler knows an agent's hostname only: two agents with one
    hostname on different IPs would both match (agents of one host share its machine anyway)."""
    name = hostname.lower()
    return bool(name) and any(m.hostname.lower() == name for m in machines)


def unknown_on_down_machines(state: ClusterState, machines: Iterable[Machine]) -> tuple[int, ...]:
    """The nodes whose task Mesos answered ``TASK_UNKNOWN`` for and whose agent's machine is ``DOWN``:
    their tasks are certainly dead, so their ids may be freed (see
    :meth:`~es_framework.core.engine_maintenance.MaintenanceAnswers.machines_down`)."""
    machines = tuple(machines)
    if not machines:
        return ()
    return tuple(
        sorted(
            r.node_id
            for r in state.nodes.values()
            if r.state is TaskState.UNKNOWN and on_down_machine(r.hostname, machines)
        )
    )


def has_unknown(state: ClusterState) -> bool:
    """Whether a task of ours is UNKNOWN to Mesos (only then is the maintenance status worth asking)."""
    return any(r.state is TaskState.UNKNOWN for r in state.nodes.values())
