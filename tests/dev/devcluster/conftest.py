"""Fixtures for the development cluster tests: a fast master on a port chosen by the OS."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from es_framework.dev.devcluster import AgentSpec, DevMaster

#: Intervals short enough that every test finishes in seconds.
FAST: dict[str, Any] = {
    "heartbeat_interval": 0.5,
    "allocation_interval": 0.05,
    "status_update_resend_interval": 0.3,
    "default_refuse_seconds": 0.3,
    "tick": 0.02,
}

AGENTS = [
    AgentSpec(
        id="agent-a-S0",
        hostname="a.devcluster.test",
        cpus=4,
        mem=4096,
        disk=20000,
        ports=((32000, 32999),),
        attributes=(("rack", "r1"), ("zone", "z1")),
        ip="127.0.0.2",
        port=5061,
    ),
    AgentSpec(
        id="agent-b-S0",
        hostname="b.devcluster.test",
        cpus=4,
        mem=4096,
        disk=20000,
        ports=((33000, 33999),),
        attributes=(("rack", "r2"), ("zone", "z2")),
        ip="127.0.0.3",
        port=5062,
    ),
]


@pytest.fixture
def master() -> Iterator[DevMaster]:
    dev = DevMaster(AGENTS, **FAST).start()
    try:
        yield dev
    finally:
        dev.stop()
