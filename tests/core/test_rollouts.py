"""Rollouts: the order, every transition, and the persisted form."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from es_framework.core.operations import OperatorError
from es_framework.core.rollout_json import RolloutStateError, header_to_json, rollout_from_json, steps_to_json
from es_framework.core.rollouts import (
    ClearShutdown,
    RestoreSettings,
    Rollout,
    RolloutReason,
    StepState,
    abort,
    advance,
    candidates,
    cleanup_after_failover,
    drop_leaving,
    grant_force,
    pause,
    plan_rollout,
    record_setting,
    resume,
    skip,
    start_step,
    step_done,
    step_failed,
    stuck_steps,
)
from tests.core.test_node_state import running

ALLOC = "cluster.routing.allocation.enable"


def rollout(*ids: int, masters: int = 3, elected: int | None = 2, desired: int | None = None) -> Rollout:
    state = running(*ids)
    state = replace(state, desired_nodes=desired or max(ids))
    return plan_rollout(state, RolloutReason.RESTART, 100.0, elected, master_nodes=masters, target="abc")


def finish(r: Rollout, node_id: int, now: float = 200.0) -> Rollout:
    r, _ = start_step(r, node_id, now)
    r, _ = advance(r, node_id, now)
    r, _ = advance(r, node_id, now)
    r, _ = step_done(r, node_id, now)
    return r


def test_order_data_first_then_masters_elected_last() -> None:
    r = rollout(1, 2, 3, 4, 5)
    assert r.order == (4, 5, 1, 3, 2)
    assert r.order_note is None
    assert [r.steps[i].master_eligible for i in r.order] == [False, False, True, True, True]


def test_unknown_elected_master_puts_masters_last_in_id_order_and_says_so() -> None:
    r = rollout(1, 2, 3, 4, elected=None)
    assert r.order == (4, 1, 2, 3)
    assert r.order_note is not None and "unknown" in r.order_note
    other = rollout(1, 2, 3, 4, elected=9)
    assert other.order == (4, 1, 2, 3) and "node 9" in (other.order_note or "")


def test_configuration_rollout_takes_only_outdated_kept_nodes() -> None:
    state = running(1, 2, 3, 4)
    nodes = dict(state.nodes)
    nodes[2] = replace(nodes[2], outdated=True)
    nodes[4] = replace(nodes[4], outdated=True)
    state = replace(state.with_nodes(nodes), desired_nodes=3)
    r = plan_rollout(state, RolloutReason.CONFIGURATION, 1.0, None, master_nodes=3, target="t")
    assert r.order == (2,)  # node 4 is leaving: never restarted


def test_data_nodes_may_run_together_masters_one_at_a_time_after_all_data() -> None:
    r = rollout(1, 2, 3, 4, 5)
    assert candidates(r) == (4, 5)
    r, _ = start_step(r, 4, 1.0)
    assert candidates(r) == (5,)
    with pytest.raises(OperatorError):
        start_step(r, 1, 1.0)  # a master waits for the data nodes
    r = finish(r, 5)
    assert candidates(r) == ()  # node 4 still runs
    r, _ = advance(r, 4, 2.0)
    r, _ = advance(r, 4, 2.0)
    r, _ = step_done(r, 4, 2.0)
    assert candidates(r) == (1,)
    r, _ = start_step(r, 1, 3.0)
    assert candidates(r) == ()
    r = replace(r, steps={**r.steps})
    r, _ = advance(r, 1, 3.0)
    r, _ = advance(r, 1, 3.0)
    r, _ = step_done(r, 1, 3.0)
    assert candidates(r) == (3,)
    r = finish(r, 3)
    assert candidates(r) == (2,)
    r = finish(r, 2)
    assert r.finished and r.progress == (5, 5) and candidates(r) == ()


def test_step_done_restores_recorded_settings_and_clears_shutdown() -> None:
    r = rollout(4, 1, 2, 3)
    r, _ = start_step(r, 4, 1.0)
    r = record_setting(r, ALLOC, None)
    r = record_setting(r, ALLOC, "primaries")  # the first value recorded is the original
    r, _ = advance(r, 4, 1.0)
    r, _ = advance(r, 4, 1.0)
    r, actions = step_done(r, 4, 2.0)
    assert actions == (RestoreSettings(((ALLOC, None),)), ClearShutdown(4))
    assert dict(r.restore) == {}


def test_step_failed_pauses_with_the_reason_restores_and_resume_retries_it() -> None:
    r = rollout(4, 1, 2, 3)
    r, _ = start_step(r, 4, 1.0)
    r = record_setting(r, ALLOC, "all")
    r, _ = advance(r, 4, 1.0)
    r, actions = step_failed(r, 4, "did not rejoin within 600 s", 700.0)
    assert r.paused == "node 4: did not rejoin within 600 s"
    assert actions == (RestoreSettings(((ALLOC, "all"),)), ClearShutdown(4))
    assert candidates(r) == ()
    with pytest.raises(OperatorError, match="paused"):
        start_step(r, 4, 701.0)
    r, _ = resume(r, 800.0)
    assert r.paused is None and r.steps[4].state is StepState.PENDING and candidates(r) == (4,)
    r, _ = start_step(r, 4, 801.0)
    assert r.steps[4].attempts == 2


def test_abort_restores_and_clears_shutdowns_of_running_steps_then_refuses_everything() -> None:
    r = rollout(4, 5, 1, 2, 3)
    r, _ = start_step(r, 4, 1.0)
    r = record_setting(r, ALLOC, None)
    r, actions = abort(r, "operator", 2.0)
    assert actions == (RestoreSettings(((ALLOC, None),)), ClearShutdown(4))
    assert r.aborted and r.finished and candidates(r) == ()
    with pytest.raises(OperatorError) as info:
        start_step(r, 5, 3.0)
    assert info.value.status == 409
    with pytest.raises(OperatorError, match="aborted"):
        resume(r, 3.0)
    with pytest.raises(OperatorError, match="aborted"):
        abort(r, "again", 3.0)


def test_skip_needs_a_reason_and_a_pending_or_failed_step() -> None:
    r = rollout(4, 1, 2, 3)
    with pytest.raises(OperatorError) as info:
        skip(r, 4, " ", 1.0)
    assert info.value.status == 400
    r, _ = start_step(r, 4, 1.0)
    with pytest.raises(OperatorError):
        skip(r, 4, "stuck", 1.0)
    r, _ = step_failed(r, 4, "stuck", 2.0)
    r, _ = skip(r, 4, "the node's disk is broken", 3.0)
    assert r.steps[4].state is StepState.SKIPPED and r.paused is None
    assert candidates(r) == (1,)


def test_pause_stops_new_steps_and_unknown_node_is_404() -> None:
    r, _ = pause(rollout(4, 1, 2, 3), "")
    assert r.paused == "paused by the operator" and candidates(r) == ()
    with pytest.raises(OperatorError) as info:
        advance(r, 9, 1.0)
    assert info.value.status == 404


def test_advance_only_along_the_step_path() -> None:
    r = rollout(4, 1, 2, 3)
    with pytest.raises(OperatorError):
        advance(r, 4, 1.0)
    with pytest.raises(OperatorError):
        step_done(r, 4, 1.0)
    with pytest.raises(OperatorError):
        step_failed(r, 4, "x", 1.0)
    r, _ = start_step(r, 4, 1.0)
    r, _ = advance(r, 4, 2.0)
    assert r.steps[4].state is StepState.RESTARTING
    r, _ = advance(r, 4, 3.0)
    assert r.steps[4].state is StepState.WAITING_HEALTHY
    with pytest.raises(OperatorError):
        advance(r, 4, 4.0)


def test_stuck_steps_and_force_grant_is_used_up_by_the_next_start() -> None:
    r = rollout(4, 5, 1, 2, 3)
    r, _ = grant_force(r, "cluster is red until the setting applies")
    assert r.force
    r, _ = start_step(r, 4, 10.0)
    assert r.force is None
    assert stuck_steps(r, 20.0, 60.0) == () and stuck_steps(r, 71.0, 60.0) == (4,)
    with pytest.raises(OperatorError):
        grant_force(r, "")


def test_drop_leaving_skips_pending_steps_of_leaving_ids() -> None:
    r = drop_leaving(rollout(1, 2, 3, 4, 5), 4, 9.0)
    assert r.steps[5].state is StepState.SKIPPED and r.steps[5].reason == "scaled away"
    assert candidates(r) == (4,)


def test_failover_cleanup_waits_for_a_running_step() -> None:
    r = rollout(4, 1, 2, 3)
    r, _ = start_step(r, 4, 1.0)
    r = record_setting(r, ALLOC, None)
    assert cleanup_after_failover(r) == ()
    paused, _ = pause(
        replace(r, steps={4: replace(r.steps[4], state=StepState.DONE), **{i: r.steps[i] for i in (1, 2, 3)}}), "x"
    )
    assert cleanup_after_failover(paused) == (RestoreSettings(((ALLOC, None),)),)


def test_persisted_form_round_trips_and_the_header_does_not_grow_with_nodes() -> None:
    small = rollout(1, 2, 3)
    big = rollout(*range(1, 200))
    assert len(str(header_to_json(big))) == len(str(header_to_json(small))) + len(big.id) - len(small.id)
    r, _ = start_step(big, 4, 5.0)
    r = record_setting(r, ALLOC, "primaries")
    assert rollout_from_json(header_to_json(r), steps_to_json(r)) == r


@pytest.mark.parametrize(
    ("header", "steps", "match"),
    [
        ({"schema": 2}, {}, "schema"),
        ("x", {}, "not an object"),
        (None, {"01": {}}, "not a node id"),
        (
            None,
            {"3": {"schema": 1, "position": 0, "master_eligible": True, "state": "bogus", "since": 1, "attempts": 0}},
            "unknown value",
        ),
        (
            None,
            {"3": {"schema": 1, "position": True, "master_eligible": True, "state": "done", "attempts": 0}},
            "position",
        ),
        (None, {"3": {"schema": 1, "position": 0, "master_eligible": True, "state": "done", "attempts": -1}}, "range"),
    ],
)
def test_corrupt_persisted_form_is_refused(header: object, steps: dict[str, object], match: str) -> None:
    good = header_to_json(rollout(1, 2, 3))
    with pytest.raises(RolloutStateError, match=match):
        rollout_from_json(header if header is not None else good, steps)


def test_too_many_restored_settings_refused_in_memory_and_on_read() -> None:
    r = rollout(1, 2, 3)
    for n in range(32):
        r = record_setting(r, f"s{n}", None)
    with pytest.raises(OperatorError):
        record_setting(r, "one-more", None)
    bad = {**header_to_json(r), "restore": {f"s{n}": None for n in range(33)}}
    with pytest.raises(RolloutStateError, match="restore"):
        rollout_from_json(bad, steps_to_json(r))


@given(
    ids=st.sets(st.integers(1, 12), min_size=1, max_size=12),
    masters=st.integers(1, 7),
    elected=st.one_of(st.none(), st.integers(1, 14)),
)
def test_order_property(ids: set[int], masters: int, elected: int | None) -> None:
    state = replace(running(*sorted(ids)), desired_nodes=12)
    r = plan_rollout(state, RolloutReason.RESTART, 1.0, elected, master_nodes=masters, target="t")
    order = r.order
    assert sorted(order) == sorted(ids)
    kinds = [i <= masters for i in order]
    assert kinds == sorted(kinds)  # every data-only node before every master-eligible one
    master_order = [i for i in order if i <= masters]
    if elected in master_order:
        assert master_order[-1] == elected and r.order_note is None
    else:
        assert master_order == sorted(master_order)
        assert (r.order_note is not None) == bool(master_order)


@given(st.lists(st.sampled_from(["start", "advance", "done", "fail", "resume", "skip"]), max_size=40), st.data())
def test_walking_a_rollout_keeps_masters_one_at_a_time_after_data(ops: list[str], data: st.DataObject) -> None:
    r = rollout(1, 2, 3, 4, 5, 6)
    now = 1.0
    for op in ops:
        now += 1
        node = data.draw(st.sampled_from(r.order))
        try:
            if op == "start":
                r, _ = start_step(r, node, now)
            elif op == "advance":
                r, _ = advance(r, node, now)
            elif op == "done":
                r, _ = step_done(r, node, now)
            elif op == "fail":
                r, _ = step_failed(r, node, "x", now)
            elif op == "resume":
                r, _ = resume(r, now)
            else:
                r, _ = skip(r, node, "y", now)
        except OperatorError:
            pass
        running_masters = [i for i in r.in_progress if r.steps[i].master_eligible]
        assert len(running_masters) <= 1
        if running_masters:
            assert r.in_progress == tuple(running_masters)
            pos = r.steps[running_masters[0]].position
            assert all(s.state in (StepState.DONE, StepState.SKIPPED) for s in r.steps.values() if s.position < pos)
        assert rollout_from_json(header_to_json(r), steps_to_json(r)) == r
