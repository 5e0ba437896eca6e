"""The engine under Mesos maintenance: inverse offers are declined while a node of ours is on the
agent and accepted once none is, and no new node lands on an agent whose window has started or
starts soon (the ``maintenance`` decline rule)."""

from __future__ import annotations

import logging

import pytest

from es_framework.core.maintenance import LEAD_S, REFUSE_S
from es_framework.core.mesos_calls import AnswerInverseOffers, Call, Decline
from tests.core.test_engine import accepts, launched, make, status
from tests.core.test_maintenance import inverse
from tests.harness.builders import offer


def answers(calls: list[Call]) -> list[AnswerInverseOffers]:
    return [c for c in calls if isinstance(c, AnswerInverseOffers)]


def test_declined_while_our_node_is_there_then_accepted_once_it_has_gone(caplog: pytest.LogCaptureFixture) -> None:
    engine, _, _ = make(None, elasticsearchNodes="1")
    (task_id,) = launched(engine, 1).values()
    engine.on_update(status(task_id, "TASK_RUNNING", "agent-1-S0"))
    with caplog.at_level(logging.INFO, logger="es_framework.core.engine"):
        calls = engine.on_inverse_offers([inverse(11, "agent-1-S0"), inverse(12, "agent-2-S0")])
    assert answers(calls) == [
        AnswerInverseOffers(("master-O12",), True, REFUSE_S),
        AnswerInverseOffers(("master-O11",), False, REFUSE_S),
    ]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert (
        "maintenance of agent agent-1-S0 from 1970-01-01T00:33:20Z until 1970-01-01T01:33:20Z: declined: "
        f"node 1 (task {task_id}) still on agent agent-1-S0; move them before it (POST /v1/nodes/<id>/replace) "
        "(inverse offer master-O11)"
    ) in infos
    assert any("agent agent-2-S0" in line and "accepted: no node of ours there" in line for line in infos)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="es_framework.core.engine"):
        # The master asks again after refuse_seconds: the same answer is not said again at INFO.
        assert answers(engine.on_inverse_offers([inverse(14, "agent-1-S0")])) == [
            AnswerInverseOffers(("master-O14",), False, REFUSE_S)
        ]
    assert "maintenance" not in caplog.text
    engine.on_update(status(task_id, "TASK_KILLED", "agent-1-S0"))
    assert answers(engine.on_inverse_offers([inverse(13, "agent-1-S0")])) == [
        AnswerInverseOffers(("master-O13",), True, REFUSE_S)
    ]


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
