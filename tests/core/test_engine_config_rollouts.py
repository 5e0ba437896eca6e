"""A configuration change creates a rollout (es_framework/core/engine_rollouts.py
``configuration_rollout``, called from ``Engine.on_registered``): a new Engine over the same
MemoryStore with other flags is the scheduler restarted with them. Nothing changed: no rollout;
changed: a ``configuration`` rollout of exactly the outdated nodes, whose restarted nodes run the new
task definition and are no longer outdated; a failover with the same flags keeps the rollout under
way; a second change aborts it (settings queued for restoring) and replaces it."""

from __future__ import annotations

from typing import Any

import pytest

from es_framework.core.config_record import config_record
from es_framework.core.engine import Engine
from es_framework.core.engine_rollouts import ALLOCATION_ENABLE
from es_framework.core.mesos_calls import Accept, Kill
from es_framework.core.rollout_prep import prepare
from es_framework.core.rollouts import Rollout, RolloutReason, StepState
from es_framework.core.state_document import state_from_json
from tests.core.test_engine import FW, MemoryStore, launched, make, status
from tests.core.test_engine_rollouts import seen
from tests.harness.builders import offer

IDS = (1, 2, 3)


def running(n: int = 3, **flags: str) -> tuple[Engine, MemoryStore, dict[int, str]]:
    """A registered scheduler (configuration recorded) with ``n`` running nodes, node i on agent i."""
    engine, store, _ = make(None, elasticsearchNodes=str(n), **flags)
    engine.on_registered("fw-1")
    tasks = launched(engine, *range(1, n + 1))
    for node_id, task_id in tasks.items():
        engine.on_updates([status(task_id, "TASK_RUNNING", f"agent-{node_id}-S0")])
    return engine, store, tasks


def restarted_with(store: MemoryStore, n: int = 3, **flags: str) -> Engine:
    """The scheduler started again over the same state with ``flags``."""
    engine, _, clock = make(store, elasticsearchNodes=str(n), **flags)
    clock.now = 5000.0
    engine.on_registered("fw-1")
    return engine


def the_rollout(engine: Engine) -> Rollout:
    rollout = engine.state.rollout
    assert rollout is not None
    return rollout


def mem_of(task_info: dict[str, Any]) -> float:
    return float(sum(r["scalar"]["value"] for r in task_info["resources"] if r["name"] == "mem"))


def drive_to_the_end(engine: Engine, tasks: dict[int, str]) -> tuple[list[int], dict[int, dict[str, Any]]]:
    """Planner rounds until the rollout ends: each stopped node comes back on its agent. Returns the
    nodes in the order they were restarted and each new TaskInfo."""
    restarted: list[int] = []
    infos: dict[int, dict[str, Any]] = {}
    for _ in range(40):
        state = engine.state
        if state.rollout is None:
            break
        down = [i for i in tasks if i not in state.nodes or state.nodes[i].stopping is not None]
        assert len(down) <= 1, f"two nodes down: {down}"
        view = seen(
            *(i for i in tasks if i not in down), master=2, alloc="primaries" if state.rollout.restore else None
        )
        _, calls = engine.plan_disruptions(view, ready=prepare(state, view, FW).ready)
        for call in calls:
            assert isinstance(call, Kill)
            node_id = next(i for i, t in tasks.items() if t == call.task_id)
            restarted.append(node_id)
            engine.on_updates([status(call.task_id, "TASK_KILLED", f"agent-{node_id}-S0")])
            (accept,) = [c for c in engine.on_offers([offer(node_id)]) if isinstance(c, Accept)]
            infos[node_id] = accept.task_infos[0]
            tasks[node_id] = infos[node_id]["task_id"]["value"]
            engine.on_updates([status(tasks[node_id], "TASK_RUNNING", f"agent-{node_id}-S0")])
    return restarted, infos


def test_no_rollout_when_nothing_changed() -> None:
    _, store, _ = running()
    writes = len(store.writes)
    again = restarted_with(store)
    assert again.state.rollout is None and len(store.writes) == writes
    assert not any(r.outdated for r in again.state.nodes.values())


def test_a_change_rolls_exactly_the_outdated_nodes_into_the_new_task_definition(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, store, tasks = running()
    old = config_record(first.config)["fingerprint"]
    # Node 3 fails before the restart: its record is freed, and its next task has the new flags.
    first.on_updates([status(tasks.pop(3), "TASK_FAILED", "agent-3-S0")])
    caplog.set_level("INFO")
    second = restarted_with(store, elasticsearchRam="4096")
    new = config_record(second.config)["fingerprint"]
    rollout = the_rollout(second)
    assert rollout.reason is RolloutReason.CONFIGURATION and rollout.target == new != old
    assert sorted(rollout.steps) == [1, 2]  # exactly the outdated nodes
    assert state_from_json(store.document, FW).rollout == rollout  # persisted with the configuration
    line = (
        f"configuration changed (fingerprint {old} → {new}): rollout {rollout.id} restarts nodes [1, 2] one at a time"
    )
    assert sum(line in r.getMessage() for r in caplog.records if r.levelname == "INFO") == 1
    # Node 3 comes back with the new flags and is not outdated.
    tasks.update(launched(second, 3))
    second.on_updates([status(tasks[3], "TASK_RUNNING", "agent-3-S0")])
    assert not second.state.nodes[3].outdated and second.state.nodes[1].outdated
    restarted, infos = drive_to_the_end(second, tasks)
    assert sorted(restarted) == [1, 2] and len(restarted) == 2
    assert all(mem_of(info) == 4096 for info in infos.values())
    assert all(second.state.nodes[i].agent_id == f"agent-{i}-S0" for i in IDS)
    assert not any(r.outdated for r in second.state.nodes.values())
    (finished,) = second.state.rollout_history
    assert finished["reason"] == "configuration" and finished["outcome"] == "completed" and finished["total"] == 2


def test_a_failover_mid_rollout_with_the_same_flags_keeps_the_rollout() -> None:
    _, store, _ = running()
    second = restarted_with(store, elasticsearchRam="4096")
    round_, _ = second.plan_disruptions(seen(*IDS))
    assert round_.decision.start is not None
    started = round_.decision.start.node_id
    kept = the_rollout(second)
    assert kept.steps[started].state is StepState.DRAINING
    third = restarted_with(store, elasticsearchRam="4096")
    assert third.state.rollout == kept and third.state.rollout_history == ()
    assert third.state.disruptions[started].kind.value == "rollout"


def test_a_second_change_aborts_the_rollout_and_replaces_it() -> None:
    _, store, tasks = running()
    second = restarted_with(store, elasticsearchRam="4096")
    first_rollout = the_rollout(second)
    round_, _ = second.plan_disruptions(seen(*IDS, alloc="all"))
    assert round_.decision.start is not None
    draining = round_.decision.start.node_id
    assert the_rollout(second).restore == {ALLOCATION_ENABLE: "all"}  # recorded before the change is sent
    # The next step's node is prepared and stopped: its next task will carry the newest flags.
    view = seen(*IDS, alloc="primaries")
    _, calls = second.plan_disruptions(view, ready=prepare(second.state, view, FW).ready)
    assert calls == [Kill(tasks[draining], f"agent-{draining}-S0")]
    third = restarted_with(store, elasticsearchRam="3072")
    rollout = the_rollout(third)
    assert rollout.id != first_rollout.id or rollout.target != first_rollout.target
    assert rollout.reason is RolloutReason.CONFIGURATION
    assert rollout.target == config_record(third.config)["fingerprint"]
    # The node being stopped is relaunched with the newest flags: it is not restarted again.
    assert sorted(rollout.steps) == sorted(set(IDS) - {draining})
    (aborted,) = third.state.rollout_history
    assert aborted["outcome"] == "aborted" and "configuration changed again" in aborted["note"]
    assert dict(third.state.rollout_restore) == {ALLOCATION_ENABLE: "all"}  # put back by the monitor
    stored = state_from_json(store.document, FW)
    assert stored.rollout == rollout and stored.rollout_history == third.state.rollout_history
    # The stopped node's ledger entry stays until its task ends; the others never started.
    assert set(third.state.disruptions) == {draining}
