"""Predicates disabled by name for one rollout (es_framework/core/predicates.py, rollouts.py,
disruption.py, engine_rollouts.py): only on the operator's request, never one of NEVER_DISABLED,
refused with nothing changed, for that rollout's steps only (an operator restart still waits),
not waited for after the restart either, persisted with the rollout so a failover keeps it."""

from __future__ import annotations

import dataclasses
from dataclasses import replace

import pytest

from es_framework.core.disruption import Kind, plan_disruption, request, step_settled
from es_framework.core.mesos_calls import Kill
from es_framework.core.operations import OperatorError
from es_framework.core.predicates import DISABLEABLE, NEVER_DISABLED, PREDICATES, check_disabled
from es_framework.core.rollout_json import RolloutStateError, header_to_json, rollout_from_json, steps_to_json
from es_framework.core.rollout_prep import prepare
from es_framework.core.rollouts import RolloutReason, abort, disable_predicates, plan_rollout, start_step
from es_framework.core.state_document import state_from_json
from tests.core.test_disruption import S, cluster, green
from tests.core.test_engine import FW, launched, status
from tests.core.test_engine_rollouts import cluster as engine_cluster
from tests.core.test_engine_rollouts import current, seen


def test_only_known_predicates_outside_never_disabled_may_be_disabled() -> None:
    assert set(DISABLEABLE) | NEVER_DISABLED == set(PREDICATES) and not set(DISABLEABLE) & NEVER_DISABLED
    assert check_disabled(["cluster_green", "master_quorum"]) == frozenset({"cluster_green", "master_quorum"})
    for never in sorted(NEVER_DISABLED):
        with pytest.raises(OperatorError) as refused:
            check_disabled(["cluster_green", never])
        assert refused.value.status == 400 and f"the predicate {never} cannot be disabled" in refused.value.message
    with pytest.raises(OperatorError) as refused:
        check_disabled(["cluster_green", "green_enough"])
    assert refused.value.status == 400 and "no predicate is called 'green_enough'" in refused.value.message


def test_the_set_replaces_the_last_and_a_refusal_or_a_finished_rollout_changes_nothing() -> None:
    rollout = plan_rollout(cluster(3), RolloutReason.RESTART, 1.0, 1, master_nodes=3, target="")
    assert rollout.disabled_predicates == frozenset()
    one, actions = disable_predicates(rollout, frozenset({"cluster_green", "shards_settled"}))
    assert one.disabled_predicates == {"cluster_green", "shards_settled"} and actions == ()
    assert disable_predicates(one, frozenset({"master_quorum"}))[0].disabled_predicates == {"master_quorum"}
    assert disable_predicates(one, frozenset())[0].disabled_predicates == frozenset()
    with pytest.raises(OperatorError) as refused:
        disable_predicates(one, frozenset({"max_unavailable"}))
    assert refused.value.status == 400 and one.disabled_predicates == {"cluster_green", "shards_settled"}
    aborted, _ = abort(one, "operator", 2.0)
    with pytest.raises(OperatorError) as refused:
        disable_predicates(aborted, frozenset())
    assert refused.value.status == 409


def test_the_persisted_header_keeps_the_set_and_refuses_a_bad_one() -> None:
    rollout = plan_rollout(cluster(3), RolloutReason.RESTART, 1.0, 1, master_nodes=3, target="")
    assert "disabled_predicates" not in header_to_json(rollout)  # documents stay as they were without one
    off, _ = disable_predicates(rollout, frozenset({"started_copy_elsewhere", "cluster_green"}))
    header = header_to_json(off)
    assert header["disabled_predicates"] == ["cluster_green", "started_copy_elsewhere"]
    assert rollout_from_json(header, steps_to_json(off)) == off
    for bad, match in (
        (["max_unavailable"], "cannot be disabled"),
        (["nope"], "no predicate is called"),
        ([1], "at most"),
        ("cluster_green", "wrong type"),
        (["cluster_green"] * 20, "at most"),
    ):
        with pytest.raises(RolloutStateError, match=match):
            rollout_from_json({**header, "disabled_predicates": bad}, steps_to_json(off))


def test_a_disabled_predicate_lets_the_rollout_step_start_but_not_an_operator_restart() -> None:
    state = cluster(5)
    rollout = plan_rollout(state, RolloutReason.RESTART, 1.0, 1, master_nodes=3, target="")
    yellow = green(1, 2, 3, 4, 5, status="yellow", unassigned=2)
    held = plan_disruption(state, ledger={}, rollout=rollout, seen=yellow, now=10.0, settings=S)
    assert held.start is None and held.blocked[0].predicate == "cluster_green"
    off, _ = disable_predicates(rollout, frozenset({"cluster_green", "shards_settled"}))
    let = plan_disruption(state, ledger={}, rollout=off, seen=yellow, now=10.0, settings=S)
    assert let.start is not None and let.start.kind is Kind.ROLLOUT and let.forced is None
    assert let.notes == (f"rollout {off.id}: predicates disabled by the operator: cluster_green, shards_settled",)
    # The operator's own restart of a node is no step of this rollout: it still waits for green.
    ledger = request({}, state, Kind.RESTART, 2, now=1.0, external_volumes=True)
    mixed = plan_disruption(state, ledger=ledger, rollout=off, seen=yellow, now=10.0, settings=S)
    assert [(b.node_id, b.predicate) for b in mixed.blocked if b.kind is Kind.RESTART] == [(2, "cluster_green")]
    assert mixed.start is not None and mixed.start.kind is Kind.ROLLOUT


def test_never_disabled_predicates_still_hold_with_everything_else_disabled() -> None:
    state = cluster(5)
    rollout, _ = disable_predicates(
        plan_rollout(state, RolloutReason.RESTART, 1.0, 1, master_nodes=3, target=""), frozenset(DISABLEABLE)
    )
    gone = replace(state, nodes={i: r for i, r in state.nodes.items() if i != 4})  # node 4 is missing
    d = plan_disruption(gone, ledger={}, rollout=rollout, seen=green(1, 2, 3, 5), now=10.0, settings=S)
    assert d.start is None and {b.predicate for b in d.blocked} == {"max_unavailable", "node_running"}
    silent = plan_disruption(state, ledger={}, rollout=rollout, seen=None, now=10.0, settings=S)
    assert silent.start is None and {b.predicate for b in silent.blocked} == {"elasticsearch_answered"}


def test_a_step_whose_green_the_operator_disabled_does_not_wait_for_green_after_the_restart() -> None:
    state = cluster(3)
    rollout = plan_rollout(state, RolloutReason.RESTART, 1.0, 1, master_nodes=3, target="")
    rollout, _ = start_step(rollout, rollout.order[0], 2.0)
    node_id = rollout.order[0]
    yellow = green(1, 2, 3, status="yellow", unassigned=1, initializing=1)
    assert not step_settled(node_id, replace(state, rollout=rollout), yellow, S)
    off, _ = disable_predicates(rollout, frozenset({"cluster_green"}))
    assert not step_settled(node_id, replace(state, rollout=off), yellow, S)  # shards still in flight
    both, _ = disable_predicates(rollout, frozenset({"cluster_green", "shards_settled"}))
    assert step_settled(node_id, replace(state, rollout=both), yellow, S)
    others = [i for i in (1, 2, 3) if i != node_id]
    assert not step_settled(node_id, replace(state, rollout=both), green(*others), S)  # not rejoined: never


def test_the_engine_disables_by_name_persists_it_and_refuses_with_nothing_changed() -> None:
    engine, store, _, _ = engine_cluster(3)
    writes = len(store.writes)
    with pytest.raises(OperatorError) as refused:
        engine.start_rollout(RolloutReason.RESTART, disabled=frozenset({"max_unavailable"}))
    assert refused.value.status == 400 and engine.state.rollout is None and len(store.writes) == writes
    rollout, _ = engine.start_rollout(RolloutReason.RESTART, disabled=frozenset({"cluster_green"}))
    assert rollout.disabled_predicates == {"cluster_green"}
    stored = state_from_json(store.document, FW).rollout
    assert stored is not None and stored.disabled_predicates == {"cluster_green"}
    red = dataclasses.replace(seen(1, 2, 3), status="red")
    round_, _ = engine.plan_disruptions(red)
    assert round_.decision.start is not None and round_.decision.start.kind is Kind.ROLLOUT
    writes = len(store.writes)
    with pytest.raises(OperatorError) as refused:
        engine.rollout_command(rollout.id, "predicates", disabled=frozenset({"cluster_green", "bogus"}))
    assert refused.value.status == 400 and len(store.writes) == writes
    assert current(engine).disabled_predicates == {"cluster_green"}
    changed, _ = engine.rollout_command(rollout.id, "predicates", disabled=frozenset())
    assert changed.disabled_predicates == frozenset()
    stored = state_from_json(store.document, FW).rollout  # what a new leader reads
    assert stored is not None and stored.disabled_predicates == frozenset()
    with pytest.raises(OperatorError) as refused:
        engine.rollout_command("restart-1", "predicates", disabled=frozenset())
    assert refused.value.status == 404


def test_a_rollout_with_green_disabled_completes_on_a_yellow_cluster_one_node_at_a_time() -> None:
    # The cluster stays yellow with shards moving (what the operator said cannot change without the
    # rollout): every step starts, and is done once its node is back, without waiting for green.
    engine, _, tasks, _ = engine_cluster(3)
    engine.start_rollout(RolloutReason.RESTART, disabled=frozenset({"cluster_green", "shards_settled"}))
    restarted: list[int] = []
    for _ in range(30):
        state = engine.state
        if state.rollout is None:
            break
        down = [i for i in (1, 2, 3) if i not in state.nodes or state.nodes[i].stopping is not None]
        assert len(down) <= 1, f"two nodes down: {down}"
        up = tuple(i for i in (1, 2, 3) if i not in down)
        view = dataclasses.replace(
            seen(*up, alloc="primaries" if state.rollout.restore else None),
            status="yellow",
            unassigned_shards=2,
            initializing_shards=1,
        )
        _, calls = engine.plan_disruptions(view, ready=prepare(state, view, FW).ready)
        for call in calls:
            assert isinstance(call, Kill)
            node_id = next(i for i, t in tasks.items() if t == call.task_id)
            restarted.append(node_id)
            engine.on_updates([status(call.task_id, "TASK_KILLED", f"agent-{node_id}-S0")])
            tasks.update(launched(engine, node_id))
            engine.on_updates([status(tasks[node_id], "TASK_RUNNING", f"agent-{node_id}-S0")])
    assert sorted(restarted) == [1, 2, 3] and len(restarted) == 3
    assert engine.state.rollout is None and engine.state.rollout_history[-1]["outcome"] == "completed"
