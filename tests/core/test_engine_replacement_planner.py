"""Automatic replacement and the disruption planner's budget (issue 12): a dead node's replacement is
not held back by its own absence nor by another dead node, but it waits while another node is away
(restarting, draining, missing, not back in Elasticsearch after the previous replacement), said once
with the predicate ``max_unavailable``."""

from __future__ import annotations

import logging
from dataclasses import replace
from types import MappingProxyType

import pytest

from es_framework.core.disruption_ledger import Disruption, Kind, ShutdownType
from es_framework.core.disruption_seen import Seen
from es_framework.core.engine_replacement import SEEN_FRESH_S
from es_framework.core.node_state import ClusterState, TaskState
from es_framework.core.permanent_failures import Choice, Step, admit
from tests.core.test_engine import FW, accepts, status
from tests.core.test_engine_permanent_failures import OPT_IN, TIMEOUT, lose, running
from tests.core.test_permanent_failures import cluster, record, tid
from tests.harness.builders import offer


def mark_gone(node_id: int) -> Choice:
    return Choice(Step.MARK_GONE, "out of reach", node_id, tid(node_id), f"agent-{node_id}", 0.0, 700.0)


def joined(*ids: int) -> Seen:
    return Seen("green", frozenset(f"{FW}{i}" for i in ids), f"{FW}1", 0, 0, 0)


def dead_two() -> ClusterState:
    return cluster(record(1), record(2, TaskState.UNREACHABLE, since=0.0), record(3))


def test_its_own_absence_and_another_dead_node_do_not_hold_a_replacement_back() -> None:
    choice = mark_gone(2)
    assert admit(choice, dead_two(), max_unavailable=1, framework_name=FW, seen=None) is choice
    both = cluster(record(1), record(2, TaskState.UNREACHABLE, since=0.0), record(3, TaskState.UNREACHABLE, since=9.0))
    assert admit(choice, both, max_unavailable=1, framework_name=FW, seen=joined(1)) is choice
    nothing = Choice(Step.NONE, "no node has been out of reach past --permanentFailureTimeout")
    assert admit(nothing, dead_two(), max_unavailable=1, framework_name=FW, seen=None) is nothing


def test_another_node_away_holds_it_back_within_max_unavailable() -> None:
    state = dead_two()
    restart = Disruption(3, Kind.RESTART, ShutdownType.RESTART, 1.0, 2.0, tid(3))
    busy = replace(state, disruptions=MappingProxyType({3: restart}))
    held = admit(mark_gone(2), busy, max_unavailable=1, framework_name=FW, seen=None)
    assert (held.step, held.node_id) == (Step.NONE, 2)
    assert "max_unavailable: node 3 is already restarting" in held.reason and "maxUnavailable 1" in held.reason
    assert admit(mark_gone(2), busy, max_unavailable=2, framework_name=FW, seen=None).step is Step.MARK_GONE
    # A node missing from Elasticsearch's node list counts when its answer is known, not otherwise.
    gone_from_es = admit(mark_gone(2), state, max_unavailable=1, framework_name=FW, seen=joined(3))
    assert (
        gone_from_es.step is Step.NONE and "node 1 is already not in the Elasticsearch cluster" in gone_from_es.reason
    )
    assert admit(mark_gone(2), state, max_unavailable=1, framework_name=FW, seen=None).step is Step.MARK_GONE
    # A wanted id with no task at all is away too.
    missing = cluster(record(1), record(2, TaskState.UNREACHABLE, since=0.0), desired=3)
    assert (
        "node 3 is already missing (no task)"
        in admit(mark_gone(2), missing, max_unavailable=1, framework_name=FW, seen=None).reason
    )


def test_the_engine_waits_while_another_node_is_missing_and_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    engine, _, clock, tasks = running(**OPT_IN)
    lose(engine, clock, tasks, 2)
    engine.set_desired_nodes(4, copies_needed=None)  # node 4 has no task yet: away
    clock.now += TIMEOUT
    with caplog.at_level(logging.INFO, logger="es_framework.core.engine"):
        for _ in range(3):
            assert engine.replacement_round() == (None, [])
    said = [r.getMessage() for r in caplog.records if "max_unavailable" in r.getMessage()]
    assert len(said) == 1 and f"node 2 task {tasks[2]}" in said[0] and "node 4 is already missing" in said[0]
    assert any(e.node_id == 2 and "max_unavailable" in e.message for e in engine.events)
    assert 2 in engine.state.nodes
    (accept,) = accepts(engine.on_offers([offer(4)]))
    engine.on_updates([status(accept.task_infos[0]["task_id"]["value"], "TASK_RUNNING", "agent-4-S0")])
    choice, _ = engine.replacement_round()
    assert choice is not None and (choice.step, choice.node_id) == (Step.MARK_GONE, 2)


def test_a_second_replacement_waits_until_the_first_node_is_back_in_elasticsearch() -> None:
    engine, _, clock, tasks = running(**OPT_IN)
    lose(engine, clock, tasks, 1)
    lose(engine, clock, tasks, 2)
    clock.now += TIMEOUT
    first, _ = engine.replacement_round()
    assert first is not None and first.node_id == 1
    engine.fence_result(first, None)
    (accept,) = accepts(engine.on_offers([offer(4)]))
    engine.on_updates([status(accept.task_infos[0]["task_id"]["value"], "TASK_RUNNING", "agent-4-S0")])
    # Running again, but Elasticsearch's (fresh) node list does not have it yet: node 2 waits, past
    # --replacementInterval too.
    clock.now += 300
    engine.plan_disruptions(joined(3))
    assert engine.replacement_round() == (None, [])
    assert "node 1 is already not in the Elasticsearch cluster" in engine.replacements.said
    engine.plan_disruptions(joined(1, 3))
    second, _ = engine.replacement_round()
    assert second is not None and second.node_id == 2


def test_an_old_answer_from_elasticsearch_is_not_used() -> None:
    engine, _, clock, tasks = running(**OPT_IN)
    lose(engine, clock, tasks, 2)
    clock.now += TIMEOUT
    engine.plan_disruptions(joined(3))  # node 1 not listed: it holds the replacement back ...
    assert engine.replacement_round() == (None, [])
    clock.now += SEEN_FRESH_S + 1  # ... until that answer is too old to go by
    choice, _ = engine.replacement_round()
    assert choice is not None and choice.node_id == 2
