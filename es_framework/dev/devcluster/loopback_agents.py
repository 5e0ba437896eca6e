"""An agent on its own loopback address with room for one node: what the development cluster's
end-to-end runs with real executors use (the chaos runner's process mode, the e2e tests)."""

from __future__ import annotations

from typing import Any

from es_framework.dev.devcluster.agent import AgentSpec
from es_framework.dev.devcluster.isolation import DOCKER_VOLUME_ISOLATION
from es_framework.dev.ports import free_port


def loopback_agent(n: int, **extra: Any) -> AgentSpec:
    """Agent ``n`` at 127.0.0.n with two reserved ports (a node's HTTP and transport), mounting
    external volumes as a REX-Ray agent does; ``extra`` are further :class:`AgentSpec` fields."""
    return AgentSpec(
        id=f"agent{n}-S0",
        hostname=f"127.0.0.{n}",
        ip=f"127.0.0.{n}",
        cpus=4,
        mem=8192,
        ports=tuple((port, port) for port in sorted((free_port(), free_port()))),
        isolation=DOCKER_VOLUME_ISOLATION,
        **extra,
    )
