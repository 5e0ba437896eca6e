"""The monitor's maintenance-status round (es_framework/app/maintenance_status.py) against the
development master's operator API: a task Mesos answered UNKNOWN for is freed once, and only once, its
agent's machine is DOWN (a DRAINING machine still runs it)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest

from es_framework.app.maintenance_status import free_on_down_machines
from es_framework.core.engine import Engine
from es_framework.core.mesos_calls import Accept, Call
from es_framework.dev.devcluster import DevMaster
from es_framework.shell.driver import SchedulerShell
from tests.core.test_engine import make, status
from tests.dev.devcluster.conftest import AGENTS, FAST
from tests.harness.builders import offer

MACHINE_A = {"hostname": "a.devcluster.test", "ip": "127.0.0.2"}


class FakeShell:
    """What the round uses of :class:`SchedulerShell`: the engine thread is the caller's."""

    def __init__(self, engine: Engine, master: str | None) -> None:
        self.engine = engine
        self.master = master
        self.leading = True
        self.sent: list[Call] = []

    def master_address(self) -> str | None:
        return self.master

    def call(self, body: Callable[[], tuple[Any, list[Call]]]) -> Any:
        value, calls = body()
        self.sent.extend(calls)
        return value


@pytest.fixture
def master() -> Iterator[DevMaster]:
    dev = DevMaster(AGENTS, **FAST).start()
    try:
        yield dev
    finally:
        dev.stop()


def unknown_node_on_agent_a() -> Engine:
    """Node 1 ran on agent a under an earlier leader; the new leader's reconciliation answered UNKNOWN."""
    leader, store, _ = make(elasticsearchNodes="1")
    (accept,) = [
        c
        for c in leader.on_offers([offer(1, hostname="a.devcluster.test", agent_id="agent-a-S0")])
        if isinstance(c, Accept)
    ]
    task_id = accept.task_infos[0]["task_id"]["value"]
    leader.on_update(status(task_id, "TASK_RUNNING", "agent-a-S0"))
    engine, _, clock = make(store, elasticsearchNodes="1")
    clock.now += 60
    engine.on_update({"task_id": {"value": task_id}, "state": "TASK_UNKNOWN", "reason": "REASON_RECONCILIATION"})
    assert engine.state.nodes[1].needs_operator
    return engine


def test_an_unknown_task_is_freed_once_its_machine_is_down(master: DevMaster) -> None:
    engine = unknown_node_on_agent_a()
    shell = FakeShell(engine, master.address)
    config = engine.config
    free_on_down_machines(config, cast(SchedulerShell, shell))
    assert 1 in engine.state.nodes  # nothing scheduled

    window = {
        "machine_ids": [MACHINE_A],
        "unavailability": {"start": {"nanoseconds": time.time_ns()}, "duration": {"nanoseconds": 3600 * 10**9}},
    }
    master.maintenance_call(
        {"type": "UPDATE_MAINTENANCE_SCHEDULE", "update_maintenance_schedule": {"schedule": {"windows": [window]}}}
    )
    free_on_down_machines(config, cast(SchedulerShell, shell))
    assert 1 in engine.state.nodes  # DRAINING: the machine still runs its agent

    master.maintenance_call({"type": "START_MAINTENANCE", "start_maintenance": {"machines": [MACHINE_A]}})
    shell.leading = False
    free_on_down_machines(config, cast(SchedulerShell, shell))
    assert 1 in engine.state.nodes  # a scheduler that does not lead asks nothing
    shell.leading = True
    free_on_down_machines(config, cast(SchedulerShell, shell))
    assert 1 not in engine.state.nodes
    assert engine.state.missing_nodes == 1


def test_a_master_that_cannot_say_leaves_the_node_reserved(caplog: pytest.LogCaptureFixture) -> None:
    engine = unknown_node_on_agent_a()
    free_on_down_machines(engine.config, cast(SchedulerShell, FakeShell(engine, "127.0.0.1:1")))
    assert engine.state.nodes[1].needs_operator
    assert "the master's maintenance status is not known" in caplog.text
