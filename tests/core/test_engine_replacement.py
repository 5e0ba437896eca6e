"""Replacement latency (issue 12): a node that had been healthy is relaunched on the first offer after
its failure, with REVIVE clearing the long refusals of a complete cluster; a crash loop still backs off."""

from __future__ import annotations

from typing import Any

import pytest

from es_framework.core.engine import Engine
from es_framework.core.failures import HEALTHY_AFTER_S
from es_framework.core.mesos_calls import Call, Decline, Revive, Suppress
from es_framework.core.plan import LONG_REFUSE_S, SHORT_REFUSE_S
from tests.core.test_engine import Clock, accepts, launched, make, status
from tests.harness.builders import offer

EXECUTOR_GONE = {"reason": "REASON_EXECUTOR_TERMINATED", "message": "Executor terminated"}


def complete_cluster(*, healthy: bool | None, nodes: int = 3, agents: int = 3) -> tuple[Engine, Clock, dict[int, str]]:
    """Nodes running on agents 1..``agents``, reported ``healthy``, of ``nodes`` wanted."""
    engine, _, clock = make(externalVolumeDriver="rexray", elasticsearchNodes=str(nodes))
    tasks = launched(engine, *range(1, agents + 1))
    extra: dict[str, Any] = {} if healthy is None else {"healthy": healthy}
    for node_id, task_id in tasks.items():
        engine.on_update(status(task_id, "TASK_RUNNING", f"agent-{node_id}-S0", **extra))
    return engine, clock, tasks


def name(calls: list[Call]) -> str:
    (accept,) = accepts(calls)
    return str(accept.task_infos[0]["name"])


def test_a_healthy_node_that_fails_is_relaunched_on_the_first_offer() -> None:
    engine, clock, tasks = complete_cluster(healthy=True)
    assert engine.suppressed
    # While complete, a spare agent's offer is refused for the long time.
    assert engine.on_offers([offer(5)]) == [Decline(("offer-5",), LONG_REFUSE_S)]
    clock.now += 1
    calls = engine.on_update(status(tasks[2], "TASK_FAILED", "agent-2-S0", **EXECUTOR_GONE))
    # The REVIVE clears that refusal, so the master offers agent 5 again at once ...
    assert Revive() in calls
    # ... and its first offer, at the same instant, relaunches node 2 with its volumes.
    relaunch = engine.on_offers([offer(5)])
    assert name(relaunch) == "elasticsearch2"
    assert engine.declines.by_rule.get("backoff", 0) == 0
    assert Suppress() in relaunch  # complete again


def test_a_node_running_long_enough_counts_as_healthy_without_a_health_report() -> None:
    engine, clock, tasks = complete_cluster(healthy=None)
    clock.now += HEALTHY_AFTER_S
    engine.on_update(status(tasks[1], "TASK_KILLED", "agent-1-S0", message="killed by the OOM killer"))
    assert name(engine.on_offers([offer(5)])) == "elasticsearch1"


def test_a_node_that_fails_right_after_running_waits() -> None:
    engine, clock, tasks = complete_cluster(healthy=False)
    clock.now += 2
    engine.on_update(status(tasks[3], "TASK_FAILED", "agent-3-S0", message="exit 1"))
    early = engine.on_offers([offer(5)])
    assert accepts(early) == [] and engine.declines.by_rule == {"backoff": 1}
    assert early == [Decline(("offer-5",), SHORT_REFUSE_S)]  # refused until the back-off ends (5 s)
    clock.now += 5
    assert name(engine.on_offers([offer(5)])) == "elasticsearch3"


def test_a_crash_loop_after_a_healthy_period_backs_off_exponentially() -> None:
    engine, clock, tasks = complete_cluster(healthy=True)
    task_id, agent = tasks[2], "agent-2-S0"
    waits: list[float] = []
    for attempt in range(4):
        calls = engine.on_update(status(task_id, "TASK_FAILED", agent, uuid=f"u{attempt}", message="exit 1"))
        assert Revive() in calls  # the failure leaves a node missing: offers wanted
        started = clock.now
        while not (relaunch := accepts(engine.on_offers([offer(5 + attempt)]))):
            clock.now += 0.5
        waits.append(clock.now - started)
        task_id, agent = relaunch[0].task_infos[0]["task_id"]["value"], f"agent-{5 + attempt}-S0"
        # It reaches RUNNING, unhealthy, and dies two seconds later: a crash loop.
        engine.on_update(status(task_id, "TASK_RUNNING", agent, uuid=f"r{attempt}", healthy=False))
        clock.now += 2
    assert waits == [0, 5, 10, 20]
    assert engine.backoff.failures[2].count == 4


def test_a_failure_while_offers_are_not_suppressed_revives_to_clear_refusals() -> None:
    # Node 4 cannot be placed (only three agents offer), so offers stay wanted and are refused 5 s each.
    engine, clock, tasks = complete_cluster(healthy=True, nodes=4, agents=3)
    assert not engine.suppressed
    clock.now += 1
    calls = engine.on_update(status(tasks[1], "TASK_FAILED", "agent-1-S0", **EXECUTOR_GONE))
    assert calls.count(Revive()) == 1
    (accept,) = accepts(engine.on_offers([offer(1)]))
    assert accept.task_infos[0]["name"] == "elasticsearch1"
    # A failure that must wait sends none: the back-off's own refusals last exactly as long as it.
    again = engine.on_update(status(accept.task_infos[0]["task_id"]["value"], "TASK_FAILED", "agent-1-S0"))
    assert engine.backoff.wait(1, clock.now) == 5
    assert Revive() not in again


@pytest.mark.parametrize("state", ["TASK_LOST", "TASK_GONE", "TASK_KILLED", "TASK_ERROR"])
def test_every_freeing_failure_of_a_healthy_node_relaunches_at_once(state: str) -> None:
    engine, clock, tasks = complete_cluster(healthy=True)
    clock.now += 1
    engine.on_update(status(tasks[2], state, "agent-2-S0"))
    assert name(engine.on_offers([offer(5)])) == "elasticsearch2"
