"""A development cluster whose agents run real executors with demo nodes (one node per agent, two
reserved ports each), mounting external volumes as a REX-Ray agent does: what the end-to-end tests
of the development cluster share."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from es_framework.dev.devcluster import AgentSpec, DevMaster, ProcessExecutorBackend
from es_framework.dev.devcluster.loopback_agents import loopback_agent
from tests.harness.demo_nodes import DEMO_COMMAND


def demo_agent(n: int, **extra: Any) -> AgentSpec:
    """Agent ``n`` at 127.0.0.n with two reserved ports for one demo node; ``extra`` are AgentSpec fields."""
    return loopback_agent(n, **extra)


@contextlib.contextmanager
def demo_cluster(work: Path, agents: Iterable[AgentSpec]) -> Iterator[DevMaster]:
    """A started development master over ``agents`` whose executors run demo nodes; stopped after."""
    backend = ProcessExecutorBackend(work, extra_env={"ELASTICSEARCH_COMMAND": DEMO_COMMAND})
    dev = DevMaster(list(agents), backend=backend, heartbeat_interval=1.0, status_update_resend_interval=1.0)
    dev.start()
    try:
        yield dev
    finally:
        dev.stop()
