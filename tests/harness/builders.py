"""Builders for Mesos v1 JSON used across the unit tests (offers, resources)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from es_framework.config import Config, resolve_config

EXAMPLE_OFFERS = Path(__file__).resolve().parents[2] / "examples" / "offers.json"
#: What the external strategy declines in ``examples/offers.json``, by offer id (3 nodes wanted).
EXAMPLE_EXTERNAL_DECLINES = {
    "offer-2": "mem",
    "offer-4": "agent_has_node",
    "offer-5": "gpu_agent",
    "offer-7": "cluster_full",
    "offer-8": "cluster_full",
}
#: Variables Marathon and Mesos set in a scheduler's environment, all invalid as our values:
#: none of them may ever be read.
MARATHON_GARBAGE = {
    "PORT0": "not-a-port",
    "PORT1": "-5",
    "PORT": "garbage",
    "PORTS": "x,y",
    "HOST": "!!bad host!!",
    "MESOS_MASTER": "ftp://nonsense",
    "MESOS_SANDBOX": "relative/dir",
    "MESOS_TASK_ID": "garbage",
    "MESOS_ROLE": "-bad",
    "MARATHON_APP_ID": "/garbage",
    "ELASTICSEARCH_NODES": "abc",
    "WEB_UI_PORT": "0",
    "FRAMEWORK_NAME": "Es1",
    "elasticsearchNodes": "abc",
    "ZOOKEEPER_MESOS_URL": "zk://h:2181",
}


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
