"""The engine under Mesos maintenance: inverse offers are declined while a node of ours is on the
agent and accepted once none is, no new node lands on an agent whose window has started or starts
soon (the ``maintenance`` decline rule), and a node there is moved off through the disruption
planner: requested once and persisted, started when safe, stopped once prepared, launched again with
its id on another agent."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from es_framework.core.disruption_ledger import Kind, ShutdownType
from es_framework.core.disruption_seen import Seen, Unknown
from es_framework.core.engine import Engine
from es_framework.core.maintenance import LEAD_S, REFUSE_S
from es_framework.core.maintenance_moves import prepare_moves
from es_framework.core.mesos_calls import AnswerInverseOffers, Call, Decline, Kill
from es_framework.core.state_document import state_from_json
from tests.core.test_engine import FW, Clock, MemoryStore, accepts, launched, make, status
from tests.core.test_maintenance import inverse
from tests.harness.builders import offer


def answers(calls: list[Call]) -> list[AnswerInverseOffers]:
    return [c for c in calls if isinstance(c, AnswerInverseOffers)]


#: A window too far away to move nodes for yet (they move once it is within LEAD_S).
FAR_NS = int((1000 + LEAD_S + 100) * 1e9)


def test_declined_while_our_node_is_there_then_accepted_once_it_has_gone(caplog: pytest.LogCaptureFixture) -> None:
    engine, _, _ = make(None, elasticsearchNodes="1")
    (task_id,) = launched(engine, 1).values()
    engine.on_update(status(task_id, "TASK_RUNNING", "agent-1-S0"))
    with caplog.at_level(logging.INFO, logger="es_framework.core.engine"):
        calls = engine.on_inverse_offers([inverse(11, "agent-1-S0", FAR_NS), inverse(12, "agent-2-S0", FAR_NS)])
    assert answers(calls) == [
        AnswerInverseOffers(("master-O12",), True, REFUSE_S),
        AnswerInverseOffers(("master-O11",), False, REFUSE_S),
    ]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert (
        "maintenance of agent agent-1-S0 from 1970-01-01T01:18:20Z until 1970-01-01T02:18:20Z: declined: "
        f"node 1 (task {task_id}) still on agent agent-1-S0 (inverse offer master-O11)"
    ) in infos
    assert any("agent agent-2-S0" in line and "accepted: no node of ours there" in line for line in infos)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="es_framework.core.engine"):
        # The master asks again after refuse_seconds: the same answer is not said again at INFO.
        assert answers(engine.on_inverse_offers([inverse(14, "agent-1-S0", FAR_NS)])) == [
            AnswerInverseOffers(("master-O14",), False, REFUSE_S)
        ]
    assert "maintenance" not in caplog.text
    engine.on_update(status(task_id, "TASK_KILLED", "agent-1-S0"))
    assert answers(engine.on_inverse_offers([inverse(13, "agent-1-S0", FAR_NS)])) == [
        AnswerInverseOffers(("master-O13",), True, REFUSE_S)
    ]
    assert engine.state.disruptions == {}  # a window that far away moves nothing yet


def test_while_the_state_cannot_be_trusted_every_inverse_offer_is_declined() -> None:
    engine, _, _ = make(None, elasticsearchNodes="1")
    engine.may_act = False
    assert answers(engine.on_inverse_offers([inverse(3, "agent-7-S0")])) == [
        AnswerInverseOffers(("master-O3",), False, REFUSE_S)
    ]


def test_a_malformed_inverse_offer_is_left_unanswered() -> None:
    engine, _, _ = make(None, elasticsearchNodes="1")
    assert engine.on_inverse_offers([{"id": {"value": "x"}}, 3]) == []


@pytest.mark.parametrize(
    ("start_in", "duration", "declined"),
    [
        (0.0, 3600.0, True),  # started
        (LEAD_S - 1, 3600.0, True),  # starts soon
        (LEAD_S + 1, 3600.0, False),  # far enough away
        (-7200.0, 3600.0, False),  # over
        (-7200.0, None, True),  # started, no end
    ],
)
def test_no_new_node_on_an_agent_whose_window_started_or_starts_soon(
    start_in: float, duration: float | None, declined: bool
) -> None:
    engine, _, clock = make(None, elasticsearchNodes="1")
    start_ns = int((clock.now + start_in) * 1e9)
    window: dict[str, object] = {"start": {"nanoseconds": start_ns}}
    if duration is not None:
        window["duration"] = {"nanoseconds": int(duration * 1e9)}
    calls = engine.on_offers([{**offer(1), "unavailability": window}])
    if declined:
        assert accepts(calls) == []
        assert Decline(("offer-1",), REFUSE_S) in calls
        assert engine.declines.by_rule == {"maintenance": 1}
        reason, _ = engine.declines.last["maintenance"]
        assert reason.startswith("agent agent-1-S0 (agent1.example.com) maintenance from ")
    else:
        assert len(accepts(calls)) == 1
        assert "maintenance" not in engine.declines.by_rule


def test_the_node_lands_on_the_agent_without_maintenance() -> None:
    engine, _, clock = make(None, elasticsearchNodes="1")
    window = {"start": {"nanoseconds": int(clock.now * 1e9)}}
    calls = engine.on_offers([{**offer(1), "unavailability": window}, offer(2)])
    (accept,) = accepts(calls)
    assert accept.offer_id == "offer-2"
    assert Decline(("offer-1",), REFUSE_S) in calls


# --- moving the node off the agent ----------------------------------------------------------------

SOON_S = 60.0


def window_in(engine_clock: float, start_in: float = SOON_S) -> dict[str, object]:
    return {"start": {"nanoseconds": int((engine_clock + start_in) * 1e9)}, "duration": {"nanoseconds": 3600 * 10**9}}


def three_running(**flags: str) -> tuple[Engine, MemoryStore, Clock, dict[int, str]]:
    engine, store, clock = make(None, elasticsearchNodes="3", **flags)
    tasks = launched(engine, 1, 2, 3)
    for node_id, task_id in tasks.items():
        engine.on_update(status(task_id, "TASK_RUNNING", f"agent-{node_id}-S0"))
    return engine, store, clock, tasks


def inverse_soon(n: int, agent: str, clock: Clock, start_in: float = SOON_S) -> dict[str, Any]:
    return inverse(n, agent, start_ns=int((clock.now + start_in) * 1e9))


def test_an_inverse_offer_requests_the_move_once_persisted_and_is_held_while_it_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine, store, clock, tasks = three_running(externalVolumeDriver="rexray")
    writes = len(store.writes)
    with caplog.at_level(logging.INFO, logger="es_framework.core.engine"):
        calls = engine.on_inverse_offers([inverse_soon(11, "agent-1-S0", clock)])
    assert answers(calls) == []
    assert len(store.writes) == writes + 1
    (entry,) = state_from_json(store.document, FW).disruptions.values()
    assert (entry.node_id, entry.kind, entry.shutdown, entry.started_at) == (
        1,
        Kind.MAINTENANCE,
        ShutdownType.RESTART,
        None,
    )
    assert entry.reason == (
        "moving off agent agent-1-S0 (agent1.example.com) for maintenance from 1970-01-01T00:17:40Z until "
        "1970-01-01T01:17:40Z"
    )
    assert f"node 1 task {tasks[1]}: {entry.reason}: maintenance queued for the disruption planner" in caplog.text
    assert any(e.node_id == 1 and entry.reason in e.message for e in engine.events)
    # Re-sent (a new id after refuse_seconds), and the same window on an offer: nothing new is written.
    engine.on_inverse_offers([inverse_soon(12, "agent-1-S0", clock)])
    engine.on_offers([{**offer(1), "unavailability": window_in(clock.now)}])
    assert len(store.writes) == writes + 1
    # A new leader reads the request back.
    assert set(make(store, elasticsearchNodes="3", externalVolumeDriver="rexray")[0].state.disruptions) == {1}


def test_an_offer_with_a_window_requests_the_move_and_one_without_drops_a_queued_request() -> None:
    engine, _, clock, _ = three_running(externalVolumeDriver="rexray")
    engine.on_offers([{**offer(2), "unavailability": window_in(clock.now)}])
    assert engine.state.disruptions[2].kind is Kind.MAINTENANCE
    engine.on_offers([offer(2)])  # STOP_MAINTENANCE, or the schedule changed: no window any more
    assert engine.state.disruptions == {}


def test_no_request_while_the_state_cannot_be_trusted_or_for_a_window_far_away() -> None:
    engine, _, clock, _ = three_running()
    engine.may_act = False
    engine.on_inverse_offers([inverse_soon(11, "agent-1-S0", clock)])
    engine.may_act = True
    engine.on_inverse_offers([inverse_soon(12, "agent-1-S0", clock, LEAD_S + 60)])
    assert engine.state.disruptions == {}


def green(*ids: int) -> Seen:
    return Seen("green", frozenset(f"{FW}{i}" for i in ids), f"{FW}2", 0, 0, 0)


def test_the_move_is_planned_stopped_and_launched_elsewhere_with_its_id_then_the_inverse_offer_accepted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine, store, clock, tasks = three_running(externalVolumeDriver="rexray")
    with caplog.at_level(logging.INFO, logger="es_framework.core.engine"):
        # Held unanswered while node 1 is moved: a declining framework with nothing left there would
        # not be asked again, so it could never accept.
        assert answers(engine.on_inverse_offers([inverse_soon(11, "agent-1-S0", clock)])) == []
    assert f"held: node 1 (task {tasks[1]}) still on agent agent-1-S0, being moved off" in caplog.text
    round_, calls = engine.plan_disruptions(green(1, 2, 3))
    start = round_.decision.start
    assert start is not None and (start.node_id, start.kind, start.task_id) == (1, Kind.MAINTENANCE, tasks[1])
    assert calls == [] and state_from_json(store.document, FW).disruptions[1].started_at == clock.now
    # No node-shutdown version reported: prepared at once (a graceful stop); stopped as a replace.
    prep = prepare_moves(engine.state, green(1, 2, 3), FW)
    assert prep.ready == {1}
    with caplog.at_level(logging.INFO, logger="es_framework.core.engine"):
        _, calls = engine.plan_disruptions(green(1, 2, 3), ready=prep.ready)
    assert Kill(tasks[1], "agent-1-S0") in calls
    assert engine.state.nodes[1].stopping == "replace"
    assert "node 1: drained for maintenance (moving off agent agent-1-S0" in caplog.text
    assert f"(task {tasks[1]})" in caplog.text
    # Its end frees the agent: the held inverse offer is accepted.
    with caplog.at_level(logging.INFO, logger="es_framework.core.engine"):
        assert answers(engine.on_update(status(tasks[1], "TASK_KILLED", "agent-1-S0"))) == [
            AnswerInverseOffers(("master-O11",), True, REFUSE_S)
        ]
    assert "maintenance of agent agent-1-S0: accepted: our nodes have moved off (inverse offer master-O11)" in (
        caplog.text
    )
    # The agent in the window is declined; node 1 lands on agent 4 with its id.
    calls = engine.on_offers([{**offer(1), "unavailability": window_in(clock.now)}, offer(4)])
    (accept,) = accepts(calls)
    assert accept.offer_id == "offer-4"
    assert engine.state.nodes[1].agent_id == "agent-4-S0" and engine.state.nodes[1].task_id != tasks[1]
    # Asked again (an offer from the agent was held: Mesos asks such frameworks too): accepted at once.
    assert answers(engine.on_inverse_offers([inverse_soon(13, "agent-1-S0", clock)])) == [
        AnswerInverseOffers(("master-O13",), True, REFUSE_S)
    ]
    # The next round settles the ledger: the move is over.
    engine.plan_disruptions(green(2, 3))
    assert engine.state.disruptions == {}


def test_local_disk_moves_are_removes() -> None:
    engine, _, clock, _ = three_running()
    engine.on_inverse_offers([inverse_soon(11, "agent-3-S0", clock)])
    round_, _ = engine.plan_disruptions(green(1, 2, 3))
    assert round_.decision.start is not None and round_.decision.start.shutdown is ShutdownType.REMOVE
    assert prepare_moves(engine.state, green(1, 2, 3), FW).exclude == (f"{FW}3",)


def test_a_move_not_finished_when_the_window_starts_goes_on_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    engine, _, clock, tasks = three_running(externalVolumeDriver="rexray")
    engine.on_inverse_offers([inverse_soon(11, "agent-1-S0", clock)])
    engine.plan_disruptions(Unknown("no answer"))  # Elasticsearch does not answer: nothing starts
    clock.now += SOON_S
    with caplog.at_level(logging.INFO, logger="es_framework.core.engine"):
        engine.plan_disruptions(Unknown("no answer"))
        engine.plan_disruptions(Unknown("no answer"))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"node 1 task {tasks[1]}: still on agent agent-1-S0 when its maintenance window started (from "
        "1970-01-01T00:17:40Z until 1970-01-01T01:17:40Z); the move goes on, and Mesos kills the task when the "
        "machine goes down"
    ]
    assert engine.state.disruptions[1].kind is Kind.MAINTENANCE
