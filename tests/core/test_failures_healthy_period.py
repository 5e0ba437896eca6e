"""The crash-loop back-off: a failure after a healthy period relaunches at once, failures in a row
without one wait, doubling (es_framework/core/failures.py)."""

from __future__ import annotations

import logging

from hypothesis import given
from hypothesis import strategies as st

from es_framework.core.failures import HEALTHY_AFTER_S, Backoff, FailureKind, failure_report
from es_framework.core.node_state import NodeRecord, TaskState
from es_framework.core.status_updates import StatusUpdate


def task(n: int) -> str:
    return f"elasticsearch-node1-{n:032x}"


def running(task_id: str, healthy: bool | None = None) -> StatusUpdate:
    return StatusUpdate(task_id=task_id, state=TaskState.RUNNING, healthy=healthy)


def holder(task_id: str, since: float | None, node_id: int = 1) -> NodeRecord:
    return NodeRecord(node_id, task_id, "agent-1-S0", "agent1", 31000, 31001, TaskState.RUNNING, True, started_at=since)


def run(backoff: Backoff, task_id: str, since: float, now: float, healthy: bool | None = None) -> Backoff:
    return backoff.running(running(task_id, healthy), holder(task_id, since), now)


def fail(backoff: Backoff, task_id: str, now: float) -> Backoff:
    return backoff.failed(1, FailureKind.EXECUTOR_LOST, "Executor terminated", now, task_id)


def test_a_node_reported_healthy_relaunches_on_the_next_offer() -> None:
    backoff = run(Backoff(), task(1), since=100, now=100, healthy=True)
    backoff = fail(backoff, task(1), now=101)
    assert backoff.wait(1, now=101) == 0
    record = backoff.failures[1]
    assert (record.count, record.backed_off, record.after_healthy_period) == (1, 0, True)
    level, line = failure_report(1, task(1), record, 0)
    assert level == logging.WARNING
    assert line.endswith("relaunch on the next offer (it had been healthy: no back-off)")


def test_a_long_run_is_a_healthy_period_without_a_health_report() -> None:
    backoff = run(Backoff(), task(1), since=100, now=100, healthy=False)
    assert fail(backoff, task(1), now=100 + HEALTHY_AFTER_S).wait(1, 100 + HEALTHY_AFTER_S) == 0
    # One second short of it is not, and the first failure then waits base_s as before.
    assert fail(backoff, task(1), now=99 + HEALTHY_AFTER_S).wait(1, 99 + HEALTHY_AFTER_S) == 5


def test_a_launch_that_never_ran_waits_base_s() -> None:
    backoff = fail(Backoff(), task(1), now=0)
    assert backoff.wait(1, now=0) == 5
    assert not backoff.failures[1].after_healthy_period


def test_a_crash_loop_backs_off_although_each_task_reaches_running() -> None:
    # Healthy once, then every relaunch reaches RUNNING and dies two seconds later, unhealthy.
    now = 0.0
    backoff = run(Backoff(base_s=5, max_s=60), task(0), since=now, now=now, healthy=True)
    backoff = fail(backoff, task(0), now)
    waits = [backoff.wait(1, now)]
    for n in range(1, 7):
        now += waits[-1] + 1
        backoff = run(backoff, task(n), since=now, now=now)
        now += 2
        backoff = fail(backoff, task(n), now)
        waits.append(backoff.wait(1, now))
    assert waits == [0, 5, 10, 20, 40, 60, 60]
    assert backoff.failures[1].count == 7
    # A healthy run ends the loop: the next failure goes out at once again.
    backoff = run(backoff, task(9), since=now + 100, now=now + 100, healthy=True)
    assert fail(backoff, task(9), now + 101).wait(1, now + 101) == 0


def test_the_run_counts_from_the_recorded_start_so_a_failover_does_not_shorten_it() -> None:
    # A new leader's first TASK_RUNNING for node 1 is a reconciliation answer an hour into the run.
    backoff = Backoff().running(running(task(1)), holder(task(1), since=0), now=3600)
    assert fail(backoff, task(1), now=3601).wait(1, 3601) == 0


def test_a_later_health_report_or_a_long_enough_report_marks_the_run_healthy() -> None:
    backoff = run(Backoff(), task(1), since=0, now=0, healthy=False)
    assert not backoff.runs[1].healthy
    assert run(backoff, task(1), since=0, now=1, healthy=True).runs[1].healthy
    assert run(backoff, task(1), since=0, now=HEALTHY_AFTER_S).runs[1].healthy
    # Nothing new: the same object.
    assert run(backoff, task(1), since=0, now=1, healthy=False) is backoff


def test_a_healthy_run_ended_on_purpose_counts_for_the_next_task() -> None:
    # Task 1 ran healthy and was restarted on purpose (no failure); task 2 fails before RUNNING.
    backoff = fail(Backoff(), task(0), now=0)  # an old streak
    backoff = run(backoff, task(1), since=10, now=10, healthy=True)
    assert fail(backoff, task(2), now=500).wait(1, 500) == 0
    # An unhealthy short run of an earlier task proves nothing about the failing one.
    short = run(fail(Backoff(), task(0), now=0), task(1), since=10, now=11)
    assert fail(short, task(2), now=500).wait(1, 500) == 10


def test_a_task_the_state_does_not_hold_proves_nothing() -> None:
    other = task(7)
    assert Backoff().running(running(other, healthy=True), holder(task(1), since=0), now=0) == Backoff()
    assert Backoff().running(running(other, healthy=True), None, now=0) == Backoff()


def test_without_the_task_id_the_failed_tasks_own_run_is_not_counted() -> None:
    backoff = run(Backoff(), task(1), since=0, now=0)
    assert backoff.failed(1, FailureKind.OTHER, "", now=HEALTHY_AFTER_S + 1).wait(1, HEALTHY_AFTER_S + 1) == 5


def test_node_ids_are_independent() -> None:
    backoff = run(Backoff(), task(1), since=0, now=0, healthy=True)
    backoff = backoff.failed(2, FailureKind.OTHER, "", now=1, task_id="elasticsearch-node2-" + "0" * 32)
    assert backoff.wait(2, 1) == 5 and 1 in backoff.runs
    assert fail(backoff, task(1), now=2).wait(1, 2) == 0


# (kind, healthy flag, seconds RUNNING before the failure); kind "launch" fails before RUNNING.
events = st.lists(
    st.tuples(st.sampled_from(["launch", "run"]), st.booleans(), st.integers(min_value=0, max_value=100)),
    min_size=1,
    max_size=12,
)


@given(events)
def test_a_failure_waits_exactly_when_no_healthy_period_came_since_the_last_one(
    history: list[tuple[str, bool, int]],
) -> None:
    backoff = Backoff(base_s=5, max_s=300)
    now, in_loop = 1000.0, 0
    for n, (kind, healthy, lasted) in enumerate(history):
        now += backoff.wait(1, now) + 1
        had_period = False
        if kind == "run":
            backoff = run(backoff, task(n), since=now, now=now, healthy=healthy)
            now += lasted
            had_period = healthy or lasted >= HEALTHY_AFTER_S
        backoff = fail(backoff, task(n), now)
        if had_period:
            in_loop = 0
        else:
            in_loop += 1
        # The model: 0 after a healthy period, else base_s doubling per failure in a row, capped.
        expected = 0.0 if in_loop == 0 else min(300.0, 5.0 * 2 ** (in_loop - 1))
        assert backoff.wait(1, now) == expected
        assert 1 not in backoff.runs
