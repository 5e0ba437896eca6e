"""engine.replacement_round / fence_result (``--permanentFailureTimeout``): a node unreachable past
the timeout is released only after its agent was marked gone, the release is stored before any
call, the clock survives a new leader, one replacement at a time, and without the opt-in never."""

from __future__ import annotations

import logging

import pytest

from es_framework.core.engine import Engine
from es_framework.core.mesos_calls import Revive
from es_framework.core.permanent_failures import FENCE_RETRY_S, Step
from es_framework.core.state_document import state_from_json
from tests.core.test_engine import FW, Clock, MemoryStore, accepts, launched, make, status
from tests.harness.builders import offer

TIMEOUT = 600.0
OPT_IN = {"permanentFailureTimeout": "600", "markAgentGoneAfterTimeout": "true", "replacementInterval": "300"}


def running(**flags: str) -> tuple[Engine, MemoryStore, Clock, dict[int, str]]:
    engine, store, clock = make(None, elasticsearchNodes="3", **flags)
    tasks = launched(engine, 1, 2, 3)
    for node_id, task_id in tasks.items():
        engine.on_updates([status(task_id, "TASK_RUNNING", f"agent-{node_id}-S0")])
    return engine, store, clock, tasks


def lose(engine: Engine, clock: Clock, tasks: dict[int, str], node_id: int) -> None:
    """The master finds node ``node_id``'s agent unreachable now (no uuid: nothing to acknowledge)."""
    engine.on_updates(
        [
            status(
                tasks[node_id],
                "TASK_UNREACHABLE",
                f"agent-{node_id}-S0",
                uuid=None,
                reason="REASON_AGENT_REMOVED",
                unreachable_time={"nanoseconds": int(clock.now * 1e9)},
            )
        ]
    )


def test_an_unreachable_node_is_replaced_only_after_its_agent_is_marked_gone(caplog: pytest.LogCaptureFixture) -> None:
    engine, store, clock, tasks = running(**OPT_IN)
    lose(engine, clock, tasks, 2)
    assert state_from_json(store.document, FW).nodes[2].unreachable_since == clock.now
    clock.now += TIMEOUT - 1
    assert engine.replacement_round() == (None, [])
    clock.now += 1
    writes = len(store.writes)
    with caplog.at_level(logging.WARNING, logger="es_framework.core.engine"):
        choice, calls = engine.replacement_round()
    assert choice is not None and calls == []
    assert (choice.step, choice.node_id, choice.task_id, choice.agent_id) == (
        Step.MARK_GONE,
        2,
        tasks[2],
        "agent-2-S0",
    )
    # Nothing is released before the fence: the id is still held, nothing written.
    assert 2 in engine.state.nodes and len(store.writes) == writes
    assert any(
        f"node 2 task {tasks[2]}" in r.getMessage() and "agent-2-S0" in r.getMessage() and "600s" in r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING
    )
    _, calls = engine.fence_result(choice, None)
    stored = state_from_json(store.document, FW)
    assert 2 not in stored.nodes and stored.last_replacement is not None
    assert (stored.last_replacement.node_id, stored.last_replacement.at) == (2, clock.now)
    assert Revive() in calls
    assert any(e.node_id == 2 and "replaced automatically" in e.message for e in engine.events)
    # Node 2 is launched again, with the same id, on another agent.
    (accept,) = accepts(engine.on_offers([offer(4)]))
    assert accept.task_infos[0]["name"].endswith("2")
    # Mesos' TASK_GONE_BY_OPERATOR for the old task changes nothing now.
    before = engine.state
    engine.on_updates([status(tasks[2], "TASK_GONE_BY_OPERATOR", "agent-2-S0", uuid=None)])
    assert engine.state.nodes[2].task_id == before.nodes[2].task_id


def test_without_the_opt_in_the_node_stays_reserved_and_it_is_said_once(caplog: pytest.LogCaptureFixture) -> None:
    engine, _, clock, tasks = running(permanentFailureTimeout="600")
    lose(engine, clock, tasks, 2)
    clock.now += 10 * TIMEOUT
    with caplog.at_level(logging.WARNING, logger="es_framework.core.engine"):
        for _ in range(3):
            assert engine.replacement_round() == (None, [])
    assert 2 in engine.state.nodes
    warnings = [r for r in caplog.records if "NOT replaced" in r.getMessage()]
    assert len(warnings) == 1 and f"node 2 task {tasks[2]}" in warnings[0].getMessage()
    # Mesos reporting the task gone frees it as before.
    engine.on_updates([status(tasks[2], "TASK_GONE", "agent-2-S0", uuid=None)])
    assert 2 not in engine.state.nodes


def test_a_refused_fence_releases_nothing_and_is_tried_again_later() -> None:
    engine, store, clock, tasks = running(**OPT_IN)
    lose(engine, clock, tasks, 2)
    clock.now += TIMEOUT
    choice, _ = engine.replacement_round()
    assert choice is not None
    writes = len(store.writes)
    message, calls = engine.fence_result(choice, "the operator API answered HTTP 404: Agent not found")
    assert "could NOT be marked gone" in message and calls == []
    assert 2 in engine.state.nodes and len(store.writes) == writes
    assert engine.replacement_round() == (None, [])
    clock.now += FENCE_RETRY_S
    again, _ = engine.replacement_round()
    assert again is not None and again.node_id == 2


def test_one_at_a_time_and_the_interval_between_two() -> None:
    engine, _, clock, tasks = running(**OPT_IN)
    lose(engine, clock, tasks, 1)
    lose(engine, clock, tasks, 2)
    clock.now += TIMEOUT
    first, _ = engine.replacement_round()
    assert first is not None and first.node_id == 1
    engine.fence_result(first, None)
    # Node 1 is not back yet: nothing else starts, however long it takes.
    clock.now += 10_000
    assert engine.replacement_round() == (None, [])
    (accept,) = accepts(engine.on_offers([offer(4)]))
    new_task = accept.task_infos[0]["task_id"]["value"]
    engine.on_updates([status(new_task, "TASK_RUNNING", "agent-4-S0")])
    # Back: the interval counts from the release (long past), so node 2 goes now.
    second, _ = engine.replacement_round()
    assert second is not None and second.node_id == 2
    engine.fence_result(second, None)
    (accept,) = accepts(engine.on_offers([offer(5)]))
    engine.on_updates([status(accept.task_infos[0]["task_id"]["value"], "TASK_RUNNING", "agent-5-S0")])
    lose(engine, clock, tasks, 3)
    clock.now += TIMEOUT  # past the timeout, but only 600 s after the last replacement... which is > 300 s
    third, _ = engine.replacement_round()
    assert third is not None and third.node_id == 3


def test_the_interval_holds_right_after_a_replacement() -> None:
    engine, _, clock, tasks = running(**{**OPT_IN, "replacementInterval": "5000"})
    lose(engine, clock, tasks, 1)
    clock.now += 3000
    lose(engine, clock, tasks, 2)
    clock.now += 3000
    first, _ = engine.replacement_round()
    assert first is not None and first.node_id == 1
    engine.fence_result(first, None)
    (accept,) = accepts(engine.on_offers([offer(4)]))
    engine.on_updates([status(accept.task_infos[0]["task_id"]["value"], "TASK_RUNNING", "agent-4-S0")])
    clock.now += 4999
    assert engine.replacement_round() == (None, [])
    clock.now += 1
    second, _ = engine.replacement_round()
    assert second is not None and second.node_id == 2


def test_a_new_leader_keeps_the_clock() -> None:
    engine, store, clock, tasks = running(**OPT_IN)
    lose(engine, clock, tasks, 2)
    clock.now += TIMEOUT / 2
    # A new leader reads the state; Mesos' reconciliation answer repeats the unreachable time.
    successor, _, new_clock = make(store, elasticsearchNodes="3", **OPT_IN)
    new_clock.now = clock.now
    successor.on_registered("fw")
    assert successor.state.nodes[2].unreachable_since == clock.now - TIMEOUT / 2
    assert successor.replacement_round() == (None, [])  # not at once ...
    new_clock.now += TIMEOUT / 2
    choice, _ = successor.replacement_round()  # ... nor a whole timeout later again
    assert choice is not None and choice.node_id == 2


def test_nothing_while_the_engine_may_not_act_or_when_off() -> None:
    engine, _, clock, tasks = running(**OPT_IN)
    lose(engine, clock, tasks, 2)
    clock.now += TIMEOUT
    engine.may_act = False
    assert engine.replacement_round() == (None, [])
    off, _, off_clock, off_tasks = running()
    lose(off, off_clock, off_tasks, 2)
    off_clock.now += 1e6
    assert off.replacement_round() == (None, [])
