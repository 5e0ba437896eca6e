"""Rollouts driven by the engine's planner round (es_framework/core/engine_rollouts.py): a cluster
restart restarts every node once, one at a time, in order (data nodes first, the elected master
last), each only after it was prepared and stopped in place with its id, and the next only once
the restarted one is back and the cluster green; stored before anything is sent; pause, abort, a
stuck step; the operator's restart is queued in the ledger; and the state round trip."""

from __future__ import annotations

import dataclasses

import pytest

from es_framework.core.disruption import Kind
from es_framework.core.disruption_seen import Seen
from es_framework.core.engine import Engine
from es_framework.core.engine_rollouts import ALLOCATION_ENABLE, STEP_TIMEOUT_S, elected_master_id
from es_framework.core.mesos_calls import Kill
from es_framework.core.operations import OperatorError
from es_framework.core.rollout_prep import prepare
from es_framework.core.rollouts import Rollout, RolloutReason, StepState
from es_framework.core.state_document import state_from_json, state_to_json
from es_framework.core.state_layout import merge_document, split_document
from tests.core.test_engine import FW, MemoryStore, launched, make, status


def seen(
    *ids: int, master: int = 1, shutdowns: dict[str, tuple[str, str]] | None = None, alloc: str | None = None
) -> Seen:
    return Seen(
        "green",
        frozenset(f"{FW}{i}" for i in ids),
        f"{FW}{master}",
        0,
        0,
        0,
        shutdowns=shutdowns or {},
        allocation_enable=alloc,
    )


def cluster(n: int = 3, **flags: str) -> tuple[Engine, MemoryStore, dict[int, str], object]:
    engine, store, clock = make(None, elasticsearchNodes=str(n), **flags)
    tasks = launched(engine, *range(1, n + 1))
    for node_id, task_id in tasks.items():
        engine.on_updates([status(task_id, "TASK_RUNNING", f"agent-{node_id}-S0")])
    return engine, store, tasks, clock


def current(engine: Engine) -> Rollout:
    """The engine's rollout, which the test has started."""
    rollout = engine.state.rollout
    assert rollout is not None
    return rollout


def test_a_cluster_restart_restarts_each_node_once_one_at_a_time_in_order() -> None:
    engine, store, tasks, _ = cluster(4, elasticsearchMasterNodes="3")
    engine.plan_disruptions(seen(1, 2, 3, 4, master=2))  # learns the elected master
    rollout, _ = engine.start_rollout(RolloutReason.RESTART)
    assert rollout.order == (4, 1, 3, 2)  # data-only first, the elected master last
    assert state_from_json(store.document, FW).rollout == rollout
    restarted: list[int] = []
    kills: list[Kill] = []
    for _ in range(40):
        state = engine.state
        if state.rollout is None:
            break
        down = [i for i in (1, 2, 3, 4) if i not in state.nodes or state.nodes[i].stopping is not None]
        assert len(down) <= 1, f"two nodes down: {down}"
        up = tuple(i for i in (1, 2, 3, 4) if i not in down)
        view = seen(*up, master=2, alloc="primaries" if state.rollout.restore else None)
        ready = prepare(state, view, FW).ready
        writes = len(store.writes)
        _, calls = engine.plan_disruptions(view, ready=ready)
        for call in calls:
            assert isinstance(call, Kill)
            assert len(store.writes) > writes  # stored before the kill is returned
            node_id = next(i for i, t in tasks.items() if t == call.task_id)
            restarted.append(node_id)
            assert engine.state.nodes[node_id].stopping == "restart"
            engine.on_updates([status(call.task_id, "TASK_KILLED", f"agent-{node_id}-S0")])
            tasks.update(launched(engine, node_id))
            engine.on_updates([status(tasks[node_id], "TASK_RUNNING", f"agent-{node_id}-S0")])
            kills.append(call)
    assert restarted == [4, 1, 3, 2]
    assert engine.state.rollout is None
    (finished,) = engine.state.rollout_history
    assert finished["outcome"] == "completed" and finished["done"] == finished["total"] == 4
    # The allocation setting (no node-shutdown version reported) is queued for putting back.
    assert dict(engine.state.rollout_restore) in ({ALLOCATION_ENABLE: None}, {})
    assert state_from_json(store.document, FW).rollout_history == engine.state.rollout_history


def test_a_second_rollout_is_refused_while_one_runs_and_pause_resume_abort() -> None:
    engine, store, _, _ = cluster(3)
    rollout, _ = engine.start_rollout(RolloutReason.RESTART)
    with pytest.raises(OperatorError) as refused:
        engine.start_rollout(RolloutReason.RESTART)
    assert refused.value.status == 409
    paused, _ = engine.rollout_command(rollout.id, "pause", "look first")
    assert paused.paused == "look first"
    round_, _ = engine.plan_disruptions(seen(1, 2, 3))
    assert round_.decision.start is None and current(engine).in_progress == ()
    engine.rollout_command(rollout.id, "resume")
    round_, _ = engine.plan_disruptions(seen(1, 2, 3))
    assert round_.decision.start is not None and round_.decision.start.kind is Kind.ROLLOUT
    started = round_.decision.start.node_id
    assert current(engine).steps[started].state is StepState.DRAINING
    with pytest.raises(OperatorError) as unknown:
        engine.rollout_command("restart-1", "abort")
    assert unknown.value.status == 404
    engine.rollout_command(rollout.id, "abort")
    assert engine.state.rollout is None and engine.state.rollout_history[-1]["outcome"] == "aborted"
    # The node was never stopped: it leaves the ledger and counts as available again.
    assert started not in engine.state.disruptions
    assert state_from_json(store.document, FW).rollout is None


def test_force_lets_one_step_start_on_a_yellow_cluster_and_needs_a_reason() -> None:
    engine, store, _, _ = cluster(3)
    rollout, _ = engine.start_rollout(RolloutReason.RESTART)
    yellow = dataclasses.replace(seen(1, 2, 3), status="yellow")
    round_, _ = engine.plan_disruptions(yellow)
    assert round_.decision.start is None
    assert any(b.predicate == "cluster_green" for b in round_.decision.blocked), round_.decision.blocked
    with pytest.raises(OperatorError) as refused:
        engine.rollout_command(rollout.id, "force", "  ")
    assert refused.value.status == 400 and current(engine).force is None
    engine.rollout_command(rollout.id, "force", "the setting that makes it green needs this restart")
    assert state_from_json(store.document, FW).rollout.force is not None  # type: ignore[union-attr]
    round_, _ = engine.plan_disruptions(yellow)
    assert round_.decision.start is not None and round_.decision.start.kind is Kind.ROLLOUT


def test_a_scale_down_during_a_rollout_skips_the_leaving_nodes_pending_steps() -> None:
    engine, store, _, _ = cluster(5, elasticsearchMasterNodes="3")
    rollout, _ = engine.start_rollout(RolloutReason.RESTART)
    assert sorted(rollout.steps) == [1, 2, 3, 4, 5]
    engine.set_desired_nodes(3, copies_needed=1)
    steps = current(engine).steps
    assert (steps[4].state, steps[5].state) == (StepState.SKIPPED, StepState.SKIPPED)
    assert steps[4].reason == "scaled away" and steps[1].state is StepState.PENDING
    stored = state_from_json(store.document, FW).rollout
    assert stored is not None and stored.steps[5].state is StepState.SKIPPED
    # Nodes 4 and 5 are drained and stopped by the scale-down; the rollout goes on with 1..3 only.
    round_, _ = engine.plan_disruptions(seen(1, 2, 3, 4, 5))
    assert round_.decision.start is not None and round_.decision.start.kind is not Kind.ROLLOUT


def test_a_stuck_step_pauses_the_rollout_and_nothing_moves_on() -> None:
    engine, _, _, clock = cluster(3)
    engine.start_rollout(RolloutReason.RESTART)
    round_, _ = engine.plan_disruptions(seen(1, 2, 3))
    assert round_.decision.start is not None
    node_id = round_.decision.start.node_id
    clock.now += STEP_TIMEOUT_S + 1  # type: ignore[attr-defined]
    round_, calls = engine.plan_disruptions(seen(1, 2, 3))
    rollout = current(engine)
    assert rollout.steps[node_id].state is StepState.FAILED and rollout.paused and "more than" in rollout.paused
    assert round_.decision.start is None and calls == []


def test_the_operator_restart_is_queued_and_started_by_the_planner() -> None:
    engine, _, tasks, _ = cluster(3)
    message, calls = engine.request_restart(2)
    assert "queued" in message and calls == [] and engine.state.nodes[2].stopping is None
    assert engine.state.disruptions[2].started_at is None
    round_, calls = engine.plan_disruptions(seen(1, 2))  # node 3 not in the cluster: max_unavailable
    assert round_.decision.start is None and calls == []
    round_, calls = engine.plan_disruptions(seen(1, 2, 3))
    assert round_.decision.start is not None and calls == []  # started, not stopped before it is prepared
    _, calls = engine.plan_disruptions(seen(1, 2, 3), ready=prepare(engine.state, seen(1, 2, 3), FW).ready)
    assert calls == [Kill(tasks[2], "agent-2-S0")] and engine.state.nodes[2].stopping == "restart"


def test_elected_master_id_parses_only_our_names() -> None:
    assert elected_master_id(seen(1, master=3), FW) == 3
    assert elected_master_id(Seen("green", frozenset(), "other7", 0, 0, 0), FW) is None
    assert elected_master_id(None, FW) is None


def test_the_rollout_round_trips_and_its_steps_are_stored_per_node() -> None:
    engine, _, _, _ = cluster(3)
    engine.start_rollout(RolloutReason.RESTART)
    document = state_to_json(engine.state)
    assert state_from_json(document, FW).rollout == engine.state.rollout
    layout = split_document(document)
    assert "rollout_steps" in layout.split_fields and set(layout.entries["2"]) >= {"nodes", "rollout_steps"}
    assert merge_document(layout) == document
    for key in ("rollout", "rollout_steps", "rollout_restore", "rollout_history"):
        del document[key]
    old = state_from_json(document, FW)
    assert old.rollout is None and old.rollout_history == () and dict(old.rollout_restore) == {}


def test_a_forced_restart_goes_at_once_and_drops_the_queued_one() -> None:
    engine, _, tasks, _ = cluster(3)
    engine.request_restart(2)
    assert engine.state.disruptions[2].started_at is None
    _, calls = engine.restart_node(2)
    assert [c for c in calls if isinstance(c, Kill)] == [Kill(tasks[2], "agent-2-S0")]
    assert 2 not in engine.state.disruptions and engine.state.nodes[2].stopping is not None
