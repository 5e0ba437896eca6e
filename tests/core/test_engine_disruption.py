"""engine.plan_disruptions: the planner on the engine thread. A start is stored before the command
returns; ended tasks leave the ledger; a refused or failed write starts nothing; a new leader reads
the ledger back; a drain begun without the planner is taken over."""

from __future__ import annotations

import pytest

from es_framework.core.disruption import Kind, ShutdownType
from es_framework.core.disruption_seen import Seen, Unknown
from es_framework.core.engine import Engine
from es_framework.core.engine_commands import ADOPTED
from es_framework.core.operations import OperatorError
from es_framework.core.state_document import state_from_json
from tests.core.test_engine import FW, MemoryStore, launched, make, status


def green(*ids: int) -> Seen:
    return Seen("green", frozenset(f"{FW}{i}" for i in ids), f"{FW}1", 0, 0, 0)


def scaled(n: int, desired: int, **flags: str) -> tuple[Engine, MemoryStore, dict[int, str]]:
    engine, store, _ = make(None, elasticsearchNodes=str(n), **flags)
    tasks = launched(engine, *range(1, n + 1))
    for node_id, task_id in tasks.items():
        engine.on_updates([status(task_id, "TASK_RUNNING", f"agent-{node_id}-S0")])
    engine.set_desired_nodes(desired, copies_needed=None)
    return engine, store, tasks


def test_a_start_is_stored_before_the_command_returns() -> None:
    engine, store, tasks = scaled(5, 3)
    writes = len(store.writes)
    result, calls = engine.plan_disruptions(green(1, 2, 3, 4, 5))
    assert calls == []
    start = result.decision.start
    assert start is not None and (start.node_id, start.kind, start.shutdown) == (
        5,
        Kind.SCALE_DOWN,
        ShutdownType.REMOVE,
    )
    assert start.task_id == tasks[5] and result.admitted == frozenset({5})
    assert len(store.writes) == writes + 1
    stored = state_from_json(store.document, FW).disruptions
    assert stored == {5: start}
    # Node 4 waits for node 5, by name.
    (blocked,) = result.decision.blocked
    assert (blocked.node_id, blocked.predicate) == (4, "one_action_at_a_time")
    again, _ = engine.plan_disruptions(green(1, 2, 3, 4, 5))
    assert again.decision.start is None and len(store.writes) == writes + 1  # nothing new: no write
    assert [(b.node_id, b.predicate) for b in again.decision.blocked] == [(4, "max_unavailable")]
    # The node's history says so.
    assert any(e.node_id == 5 and "scale-down starts" in e.message for e in engine.events)


def test_an_ended_task_leaves_the_ledger_and_the_next_leaving_node_starts() -> None:
    engine, store, tasks = scaled(5, 3)
    engine.plan_disruptions(green(1, 2, 3, 4, 5))
    engine.stop_drained(5)
    engine.on_updates([status(tasks[5], "TASK_KILLED", "agent-5-S0")])
    assert 5 not in engine.state.nodes and set(engine.state.disruptions) == {5}  # until the next round
    result, _ = engine.plan_disruptions(green(1, 2, 3, 4))
    assert result.decision.start is not None and result.decision.start.node_id == 4
    assert set(state_from_json(store.document, FW).disruptions) == {4}


def test_unknown_starts_nothing_but_still_settles() -> None:
    engine, _, tasks = scaled(5, 3)
    engine.plan_disruptions(green(1, 2, 3, 4, 5))
    engine.stop_drained(5)
    engine.on_updates([status(tasks[5], "TASK_KILLED", "agent-5-S0")])
    result, _ = engine.plan_disruptions(Unknown("timeout"))
    assert result.decision.start is None and dict(engine.state.disruptions) == {}
    assert [(b.node_id, b.predicate) for b in result.decision.blocked] == [(4, "elasticsearch_answered")]


def test_max_unavailable_counts_a_kept_node_that_is_not_in_the_cluster() -> None:
    engine, _, _ = scaled(5, 3)
    result, _ = engine.plan_disruptions(green(1, 2, 4, 5))  # node 3 (kept) has not joined
    assert result.decision.start is None and result.decision.blocked[0].predicate == "max_unavailable"
    result, _ = scaled(5, 3, maxUnavailable="2")[0].plan_disruptions(green(1, 2, 4, 5))
    assert result.decision.start is not None and result.decision.start.node_id == 5


def test_a_refused_or_failed_write_starts_nothing() -> None:
    engine, store, _ = scaled(5, 3)
    engine.may_act = False
    with pytest.raises(OperatorError) as refused:
        engine.plan_disruptions(green(1, 2, 3, 4, 5))
    assert refused.value.status == 503
    engine.may_act = True
    store.fail_next = OSError("connection loss")
    with pytest.raises(OperatorError, match="could not be written"):
        engine.plan_disruptions(green(1, 2, 3, 4, 5))
    assert dict(engine.state.disruptions) == {} and state_from_json(store.document, FW).disruptions == {}


def test_a_new_leader_reads_the_ledger_and_does_not_start_a_second_drain() -> None:
    engine, store, _ = scaled(5, 3)
    engine.plan_disruptions(green(1, 2, 3, 4, 5))
    leader, _, _ = make(MemoryStore(store.document), elasticsearchNodes="5")
    assert set(leader.state.disruptions) == {5}
    result, _ = leader.plan_disruptions(green(1, 2, 3, 4, 5))
    assert result.decision.start is None and result.admitted == frozenset({5})


def test_a_drain_begun_without_the_planner_is_adopted_once() -> None:
    engine, store, tasks = scaled(5, 3)
    result, _ = engine.plan_disruptions(green(1, 2, 3, 4, 5), adopt=frozenset({4, 5, 2, 9}))
    ledger = engine.state.disruptions
    assert set(ledger) == {4, 5} and result.admitted == frozenset({4, 5})  # kept 2 and unknown 9 are not
    assert all(e.reason == ADOPTED and e.task_id == tasks[e.node_id] for e in ledger.values())
    assert result.decision.start is None  # over budget already: nothing more starts
    writes = len(store.writes)
    engine.plan_disruptions(green(1, 2, 3, 4, 5), adopt=frozenset({4, 5}))
    assert len(store.writes) == writes and engine.state.disruptions == ledger


def test_scaling_back_up_drops_an_unstopped_drain() -> None:
    engine, _, _ = scaled(5, 4)
    engine.plan_disruptions(green(1, 2, 3, 4, 5))
    engine.set_desired_nodes(5, copies_needed=None)
    result, _ = engine.plan_disruptions(green(1, 2, 3, 4, 5))
    assert dict(engine.state.disruptions) == {} and result.decision.start is None
