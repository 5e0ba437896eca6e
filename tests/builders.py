"""Builders for Mesos v1 JSON used across the unit tests (offers, resources)."""

from __future__ import annotations

from typing import Any

from es_framework.config import Config, resolve_config


def config(**flags: str) -> Config:
    return resolve_config(flags, {})


def scalar(
    name: str, value: float, role: str | None = None, *, allocation_role: str = "*", **extra: Any
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "name": name,
        "type": "SCALAR",
        "scalar": {"value": value},
        "allocation_info": {"role": allocation_role},
    }
    if role is None:
        resource["role"] = "*"
    else:
        resource["role"] = role
        resource["reservations"] = [{"type": "STATIC", "role": role}]
    resource.update(extra)
    return resource


def ports(*ranges: tuple[int, int], role: str | None = None, allocation_role: str = "*") -> dict[str, Any]:
    resource: dict[str, Any] = {
        "name": "ports",
        "type": "RANGES",
        "ranges": {"range": [{"begin": b, "end": e} for b, e in ranges]},
        "allocation_info": {"role": allocation_role},
        "role": role or "*",
    }
    if role is not None:
        resource["reservations"] = [{"type": "DYNAMIC", "role": role, "principal": "ops"}]
    return resource


def offer(
    n: int = 1,
    *,
    cpus: float = 4,
    mem: float = 8192,
    disk: float = 20000,
    port_ranges: tuple[tuple[int, int], ...] = ((31000, 32000),),
    hostname: str | None = None,
    agent_id: str | None = None,
    extra: tuple[dict[str, Any], ...] = (),
    resources: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    if resources is None:
        resources = [scalar("cpus", cpus), scalar("mem", mem), scalar("disk", disk)]
        if port_ranges:
            resources.append(ports(*port_ranges))
    return {
        "id": {"value": f"offer-{n}"},
        "framework_id": {"value": "fw-1"},
        "agent_id": {"value": agent_id or f"agent-{n}-S0"},
        "hostname": hostname or f"agent{n}.example.com",
        "resources": [*resources, *extra],
        "attributes": [],
    }
