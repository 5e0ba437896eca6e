"""The crash-loop back-off after a scheduler failover (es_framework/core/failures.py): a node that ran
long under an earlier leader and failed while no scheduler led is relaunched on the next offer; the new
leader never saw it RUNNING, so only the stored record's ``started_at`` shows the long run (chaos
runner, issue 14: it waited the 5 s back-off)."""

from __future__ import annotations

from dataclasses import replace

from es_framework.core.failures import HEALTHY_AFTER_S, Backoff, FailureKind
from es_framework.core.mesos_calls import Accept, Revive
from tests.core.test_engine import make, status
from tests.core.test_failures_healthy_period import holder, task
from tests.harness.builders import offer


def failed(backoff: Backoff, now: float, **kwargs: object) -> Backoff:
    return backoff.failed(1, FailureKind.EXECUTOR_LOST, "Executor terminated", now, task(1), **kwargs)  # type: ignore[arg-type]


def test_a_long_run_per_the_stored_record_is_not_backed_off() -> None:
    record = holder(task(1), since=100)
    backoff = failed(Backoff(), 100 + HEALTHY_AFTER_S + 60, record=record, ended_at=100 + HEALTHY_AFTER_S + 1)
    assert backoff.wait(1, 100 + HEALTHY_AFTER_S + 60) == 0
    assert backoff.failures[1].after_healthy_period


def test_a_record_reported_healthy_is_a_healthy_period() -> None:
    record = replace(holder(task(1), since=100), healthy=True)
    assert failed(Backoff(), 105, record=record).wait(1, 105) == 0


def test_a_short_run_heard_of_late_is_still_backed_off() -> None:
    # Started at 100, failed at 105 while no scheduler led; the new leader hears of it at 200.
    backoff = failed(Backoff(), 200, record=holder(task(1), since=100), ended_at=105)
    assert backoff.wait(1, 200) == 5
    # Without the failure's time the late news would pass for a long run: the update's time decides.
    assert failed(Backoff(), 200, record=holder(task(1), since=100)).wait(1, 200) == 0


def test_the_record_of_another_task_or_one_never_running_proves_nothing() -> None:
    assert failed(Backoff(), 1000, record=holder(task(2), since=100)).wait(1, 1000) == 5
    assert failed(Backoff(), 1000, record=holder(task(1), since=None)).wait(1, 1000) == 5


def test_a_node_that_failed_while_no_scheduler_led_is_relaunched_at_once_by_the_new_leader() -> None:
    leader, store, clock = make(elasticsearchNodes="1")
    (task_id,) = [a.task_infos[0]["task_id"]["value"] for a in leader.on_offers([offer(1)]) if isinstance(a, Accept)]
    leader.on_update(status(task_id, "TASK_RUNNING", "agent-1-S0"))
    assert leader.state.nodes[1].started_at == clock.now
    # The leader dies; the node fails 10 minutes into its run; a new leader subscribes and the agent
    # re-sends the unacknowledged TASK_FAILED to it.
    new_leader, _, new_clock = make(store, elasticsearchNodes="1")
    new_clock.now = clock.now + 600
    calls = new_leader.on_update(
        status(task_id, "TASK_FAILED", "agent-1-S0", message="Executor terminated", timestamp=clock.now + 590)
    )
    assert 1 not in new_leader.state.nodes
    assert new_leader.backoff.wait(1, new_clock.now) == 0
    assert Revive() in calls
    assert [a.offer_id for a in new_leader.on_offers([offer(2)]) if isinstance(a, Accept)] == ["offer-2"]
