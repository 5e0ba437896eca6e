"""The engine with agents that fail an agent check: the node moves to another agent without
back-off, the agent's offers are declined (and refused until its block ends), every agent blocked
launches nothing and churns nothing, and the block ends by time, by the operator or by the agent's
loss, each said once."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest

from es_framework.config import ConfigError
from es_framework.contract import AgentCheck, AgentCheckReport
from es_framework.core.describe import describe
from es_framework.core.engine import Engine
from es_framework.core.mesos_calls import Call, Decline, Revive
from es_framework.core.operations import OperatorError
from tests.core.test_engine import Clock, accepts, launched, make, status
from tests.harness.builders import config, offer

MAP_COUNT = AgentCheck(
    "vm.max_map_count", "65530", "at least 262144", "on the agent: sysctl -w vm.max_map_count=262144"
)
OLD_EXECUTOR_78 = (
    "Elasticsearch exited with code 78: bootstrap check failure [1] of [1]: max virtual memory areas "
    "vm.max_map_count [65530] is too low, increase to at least [262144]"
)


def short(task_id: str, agent: int, *, report: bool = True) -> dict[str, Any]:
    """The TASK_FAILED a short agent's executor sends (with its report), or an older executor's (none)."""
    extra: dict[str, Any] = {"message": f"agent agent{agent}.example.com fails Elasticsearch's bootstrap checks"}
    if report:
        data = AgentCheckReport(f"agent{agent}.example.com", (MAP_COUNT,)).encode()
        extra["data"] = base64.b64encode(data).decode("ascii")
    else:
        extra["message"] = OLD_EXECUTOR_78
    return status(task_id, "TASK_FAILED", f"agent-{agent}-S0", **extra)


def declines(calls: list[Call]) -> list[Decline]:
    return [c for c in calls if isinstance(c, Decline)]


def one_node(**flags: str) -> tuple[Engine, Clock, str]:
    engine, _, clock = make(None, **{"elasticsearchNodes": "1", **flags})
    (task_id,) = launched(engine, 1).values()
    return engine, clock, task_id


@pytest.mark.parametrize("report", [True, False], ids=["report", "older-executor"])
def test_the_node_moves_to_another_agent_at_once_and_the_short_one_is_declined(
    report: bool, caplog: pytest.LogCaptureFixture
) -> None:
    engine, clock, task_id = one_node()
    with caplog.at_level(logging.INFO, logger="es_framework.core.engine"):
        calls = engine.on_update(short(task_id, 1, report=report))
    # Not the node's crash loop: no back-off recorded, offers revived for the relaunch.
    assert 1 not in engine.backoff.failures
    assert engine.backoff.wait(1, clock.now) == 0
    assert Revive() in calls
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"node 1 task {task_id}: agent agent-1-S0 (agent1.example.com) failed an agent check" in warnings[0]
    assert "vm.max_map_count is 65530, needs at least 262144" in warnings[0]
    assert "fix: on the agent: sysctl -w vm.max_map_count=262144" in warnings[0]
    clock.now += 1
    calls = engine.on_offers([offer(1), offer(2)])
    (accept,) = accepts(calls)
    assert accept.offer_id == "offer-2"
    (decline,) = declines(calls)
    assert decline.offer_ids == ("offer-1",)
    assert decline.refuse_seconds == pytest.approx(599.0)
    assert engine.declines.by_rule == {"agent_check": 1}
    reason, _ = engine.declines.last["agent_check"]
    assert reason.startswith("agent agent-1-S0 (agent1.example.com) failed vm.max_map_count is 65530")
    assert "fix: on the agent: sysctl -w vm.max_map_count=262144" in reason


def test_a_node_failing_for_itself_is_still_backed_off() -> None:
    engine, _, task_id = one_node()
    heap = "Elasticsearch exited with code 78: bootstrap check failure [1] of [1]: initial heap size [1] not equal"
    engine.on_update(status(task_id, "TASK_FAILED", "agent-1-S0", message=heap))
    assert engine.backoff.failures[1].count == 1
    assert engine.backoff.wait(1, 1000.0) == 5.0
    assert not engine.agents.blocks


def test_every_agent_short_launches_nothing_and_says_why() -> None:
    engine, clock, task_id = one_node()
    agents = (1, 2, 3)
    engine.on_update(short(task_id, 1))
    for n in agents[1:]:
        clock.now += 1
        (accept,) = accepts(engine.on_offers([offer(n)]))
        engine.on_update(short(accept.task_infos[0]["task_id"]["value"], n))
    assert sorted(b.agent_id for b in engine.agents.current(clock.now)) == ["agent-1-S0", "agent-2-S0", "agent-3-S0"]
    assert not engine.backoff.failures
    clock.now += 1
    calls = engine.on_offers([offer(n) for n in agents])
    # Nothing launches; each offer is refused until its agent's block ends: no churn.
    assert accepts(calls) == []
    assert sorted(d.refuse_seconds for d in declines(calls)) == [597.0, 598.0, 599.0]
    line = describe(engine.state, engine.agents, clock.now)
    assert (
        "0/1 nodes running; 1 node(s) missing, none can start: every agent that offered failed an agent check" in line
    )
    assert "agent agent-3-S0 (agent3.example.com) blocked until" in line
    why = engine.agents.no_start(clock.now, engine.state.missing_nodes)
    assert why is not None and why.count("sysctl -w vm.max_map_count=262144") == 3


def test_the_block_ends_after_the_backoff_and_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    engine, clock, task_id = one_node(agentFailureBackoff="60")
    engine.on_update(short(task_id, 1))
    clock.now += 59
    assert accepts(engine.on_offers([offer(1)])) == []
    clock.now += 1
    with caplog.at_level(logging.INFO, logger="es_framework.core.engine"):
        (accept,) = accepts(engine.on_offers([offer(1)]))
        engine.on_offers([offer(2)])
    assert accept.offer_id == "offer-1"
    ended = [r.getMessage() for r in caplog.records if "block is over" in r.getMessage()]
    assert len(ended) == 1 and "agent agent-1-S0 (agent1.example.com)" in ended[0]
    assert caplog.records[[r.getMessage() for r in caplog.records].index(ended[0])].levelno == logging.INFO


def test_the_operator_clears_a_block_and_the_agent_takes_the_node() -> None:
    engine, _, task_id = one_node()
    engine.on_update(short(task_id, 1))
    engine.on_offers([offer(2, mem=1)])  # agent 2 is too small; its id is known
    with pytest.raises(OperatorError) as unknown:
        engine.clear_agent_failures("agent-9-S0")
    assert unknown.value.status == 404
    message, calls = engine.clear_agent_failures("agent-2-S0")
    assert "nothing to clear" in message and calls == []
    message, calls = engine.clear_agent_failures("agent-1-S0")
    assert message.startswith("agent agent-1-S0 (agent1.example.com): block lifted by the operator")
    # The agent's offers were refused for minutes: REVIVE brings them back.
    assert calls == [Revive()]
    assert len(accepts(engine.on_offers([offer(1)]))) == 1


def test_a_lost_agent_is_tried_again_when_it_comes_back() -> None:
    engine, _, task_id = one_node()
    engine.on_update(short(task_id, 1))
    assert engine.on_agent_lost("agent-1-S0") == []
    assert not engine.agents.blocks
    assert len(accepts(engine.on_offers([offer(1)]))) == 1


def test_a_blocked_agents_zone_is_not_waited_for() -> None:
    engine, _, clock = make(elasticsearchNodes="2", zoneAttribute="zone")

    def in_zone(n: int, zone: str) -> dict[str, object]:
        return {**offer(n), "attributes": [{"name": "zone", "type": "TEXT", "text": {"value": zone}}]}

    assert len(accepts(engine.on_offers([in_zone(1, "z-a")]))) == 1
    engine.agents, _ = engine.agents.block(
        "agent-3-S0", "agent3.example.com", (MAP_COUNT,), node_id=2, task_id="t", now=clock.now
    )
    # Zone z-b is offered only by the blocked agent: spreading must not hold node 2 back for it.
    calls = engine.on_offers([in_zone(2, "z-a"), in_zone(3, "z-b")])
    assert [a.offer_id for a in accepts(calls)] == ["offer-2"]


def test_agents_that_run_a_node_are_not_counted_as_free() -> None:
    engine, _, clock = make(elasticsearchNodes="2")
    tasks = launched(engine, 1, 2)
    engine.on_update(short(tasks[2], 2))
    clock.now += 1
    # Agent 1 runs node 1 (one node per agent), agent 2 is blocked: of the agents that offered, none
    # can take node 2.
    busy = {"agent-1-S0"}
    why = engine.agents.no_start(clock.now, engine.state.missing_nodes, busy)
    assert why is not None and "(but the 1 that run as many nodes as an agent may)" in why
    assert "none can start" in describe(engine.state, engine.agents, clock.now)
    # A new agent offers: it takes the node.
    (accept,) = accepts(engine.on_offers([offer(1), offer(2), offer(3)]))
    assert accept.offer_id == "offer-3"
    assert engine.agents.no_start(clock.now, engine.state.missing_nodes, busy) is None
    assert "none can start" not in describe(engine.state, engine.agents, clock.now)


def test_the_backoff_flag_is_ten_minutes_unless_given_and_positive() -> None:
    assert config().agent_failure_backoff_s == 600.0
    assert make()[0].agents.block_s == 600.0
    assert config(agentFailureBackoff="90.5").agent_failure_backoff_s == 90.5
    for bad in ("0", "-5", "10m", ""):
        with pytest.raises(ConfigError, match="--agentFailureBackoff"):
            config(agentFailureBackoff=bad)
