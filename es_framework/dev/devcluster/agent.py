"""Simulated Mesos agents of the development master (development tool, not for production).

An :class:`AgentSpec` describes an agent (plain data), its ``--isolation`` included (Mesos' default
unless given; what it accepts: :mod:`.isolation`) and its ``--executor_environment_variables``
(:func:`executor_environment` is what its executors' environment gets from the agent);
:class:`AgentState` is the master's mutable view of it: reachability, free resources and the offer
filters frameworks set on it.
An :class:`OutstandingOffer` holds resources of one agent for one framework until it is
accepted, declined or rescinded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from es_framework.dev.devcluster.isolation import DEFAULT_ISOLATION, isolators
from es_framework.dev.devcluster.resource_bags import ResourceBag, ResourceKey, merge_ranges

Ranges = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Reservation:
    """Resources of an agent statically reserved for ``role``."""

    role: str
    cpus: float = 0.0
    mem: float = 0.0
    disk: float = 0.0
    ports: Ranges = ()


@dataclass(frozen=True)
class AgentSpec:
    id: str
    hostname: str
    cpus: float = 4.0
    mem: float = 4096.0
    disk: float = 20000.0
    ports: Ranges = ((31000, 32000),)
    gpus: int = 0
    #: ``(name, value)``: a string is a TEXT attribute, a number a SCALAR one.
    attributes: tuple[tuple[str, str | float], ...] = ()
    reserved: tuple[Reservation, ...] = ()
    ip: str = "127.0.0.1"
    port: int = 5051
    region: str | None = None
    zone: str | None = None
    #: The agent's ``--isolation`` flag. Mesos' default refuses every ContainerInfo volume; an agent
    #: that mounts external volumes for the Mesos containerizer runs ``filesystem/linux,docker/volume``.
    isolation: str = DEFAULT_ISOLATION
    #: The agent's ``--executor_environment_variables`` (a JSON object of strings on a real agent), as
    #: ``(name, value)`` pairs: put into the environment of every executor started on this agent (see
    #: :func:`executor_environment` for how it merges with the rest).
    executor_environment_variables: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        isolators(self.isolation)  # an agent with an isolation Mesos refuses never starts
        for pair in self.executor_environment_variables:
            # Mesos refuses the flag unless every value is a string (src/slave/flags.cpp).
            if len(pair) != 2 or not all(isinstance(part, str) for part in pair) or not pair[0]:
                raise ValueError(f"--executor_environment_variables: {pair!r} is not a (name, string value) pair")

    @property
    def isolators(self) -> frozenset[str]:
        """The isolators its Mesos containerizer runs (the flag as Mesos completes it)."""
        return isolators(self.isolation)

    def total_resources(self) -> ResourceBag:
        bag = _bag("*", cpus=self.cpus, mem=self.mem, disk=self.disk, ports=self.ports, gpus=float(self.gpus))
        for reservation in self.reserved:
            bag = bag + _bag(
                reservation.role,
                cpus=reservation.cpus,
                mem=reservation.mem,
                disk=reservation.disk,
                ports=reservation.ports,
                gpus=0.0,
            )
        return bag

    def attributes_json(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for name, value in self.attributes:
            if isinstance(value, str):
                out.append({"name": name, "type": "TEXT", "text": {"value": value}})
            else:
                out.append({"name": name, "type": "SCALAR", "scalar": {"value": float(value)}})
        return out

    def url_json(self) -> dict[str, Any]:
        return {
            "scheme": "http",
            "address": {"hostname": self.hostname, "ip": self.ip, "port": self.port},
            "path": "/slave(1)",
        }

    def domain_json(self) -> dict[str, Any] | None:
        if self.region is None or self.zone is None:
            return None
        return {"fault_domain": {"region": {"name": self.region}, "zone": {"name": self.zone}}}


def executor_environment(spec: AgentSpec, mesos: Mapping[str, str]) -> dict[str, str]:
    """What agent ``spec`` puts into the environment of an executor it starts, as Mesos'
    ``executorEnvironment`` (apache/mesos ``src/slave/slave.cpp``) builds it, later entries winning:
    ``LIBPROCESS_IP`` (the agent's own, which the agent's ``--ip`` sets, ``src/slave/main.cpp``),
    then ``--executor_environment_variables`` (so the flag may replace ``LIBPROCESS_IP``), then the
    agent's ``MESOS_*`` variables (``mesos``: ``MESOS_AGENT_ENDPOINT``, the ids, the sandbox, ...).

    The CommandInfo's variables are not here: how they merge depends on the containerizer. The Mesos
    containerizer lets them win over all of this (``MesosContainerizerProcess::_launch`` in
    ``src/slave/containerizer/mesos/containerizer.cpp``); the Docker containerizer lets this win
    (``Docker::RunOptions::create`` in ``src/docker/docker.cpp`` skips a command variable the agent set)."""
    env = {"LIBPROCESS_IP": spec.ip}
    env.update(dict(spec.executor_environment_variables))
    env.update(mesos)
    return env


def _key(name: str, kind: str, role: str) -> ResourceKey:
    chain = [] if role == "*" else [{"type": "STATIC", "role": role}]
    return ResourceKey(name, kind, json.dumps(chain, sort_keys=True, separators=(",", ":")), "{}")


def _bag(role: str, *, cpus: float, mem: float, disk: float, ports: Ranges, gpus: float) -> ResourceBag:
    entries: dict[ResourceKey, int | Ranges | frozenset[str]] = {}
    for name, amount in (("cpus", cpus), ("mem", mem), ("disk", disk), ("gpus", gpus)):
        if amount > 0:
            entries[_key(name, "SCALAR", role)] = round(amount * 1000)
    if ports:
        entries[_key("ports", "RANGES", role)] = merge_ranges(ports)
    return ResourceBag(entries)


class AgentStatus(Enum):
    REACHABLE = "REACHABLE"
    UNREACHABLE = "UNREACHABLE"
    GONE = "GONE"
    #: Removed by START_MAINTENANCE; re-registers (same id) after STOP_MAINTENANCE.
    DOWN = "DOWN"


@dataclass(frozen=True)
class OfferFilter:
    """Do not offer ``resources`` (or less) of this agent to the framework before ``expires``."""

    expires: float
    resources: ResourceBag


@dataclass
class OutstandingOffer:
    id: str
    framework_id: str
    agent_id: str
    resources: ResourceBag
    allocation_role: str


@dataclass
class AgentState:
    spec: AgentSpec
    #: Resources neither used by tasks nor held in outstanding offers.
    free: ResourceBag
    status: AgentStatus = AgentStatus.REACHABLE
    unreachable_time_ns: int | None = None
    #: Framework id -> active filters.
    filters: dict[str, list[OfferFilter]] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def reachable(self) -> bool:
        return self.status is AgentStatus.REACHABLE

    def filtered(self, framework_id: str, offerable: ResourceBag, now: float) -> bool:
        active = [f for f in self.filters.get(framework_id, []) if f.expires > now]
        self.filters[framework_id] = active
        return any(f.resources.contains(offerable) for f in active)
