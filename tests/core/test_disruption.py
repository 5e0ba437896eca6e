"""The disruption planner: one action at a time, within maxUnavailable, closed on doubt."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from es_framework.core.disruption import (
    Disruption,
    Kind,
    Settings,
    ShutdownType,
    check_disabled,
    plan_disruption,
    request,
    settle,
    shutdown_type,
    step_settled,
)
from es_framework.core.disruption_json import ledger_from_json, ledger_to_json
from es_framework.core.disruption_seen import Seen, Unknown, observe
from es_framework.core.node_state import ClusterState, TaskState
from es_framework.core.operations import OperatorError
from es_framework.core.rollouts import RolloutReason, grant_force, plan_rollout, start_step
from tests.core.test_node_state import FW, running

S = Settings(max_unavailable=1, framework_name=FW, master_nodes=3, external_volumes=True)


def name(i: int) -> str:
    return f"{FW}{i}"


def green(*ids: int, status: str = "green", sole: dict[int, int] | None = None, **counts: int) -> Seen:
    return Seen(
        status=status,
        joined=frozenset(name(i) for i in ids),
        elected_master=name(1),
        unassigned_shards=counts.get("unassigned", 0),
        relocating_shards=counts.get("relocating", 0),
        initializing_shards=counts.get("initializing", 0),
        sole_copies=MappingProxyType({name(i): n for i, n in (sole or {}).items()}),
        unassigned_primaries=counts.get("unassigned_primaries", 0),
    )


def cluster(n: int = 5, desired: int | None = None) -> ClusterState:
    return replace(running(*range(1, n + 1)), desired_nodes=desired or n)


def started(node_id: int, kind: Kind, state: ClusterState, shutdown: ShutdownType = ShutdownType.RESTART) -> Disruption:
    return Disruption(node_id, kind, shutdown, 1.0, 2.0, state.nodes[node_id].task_id)


def plan(state: ClusterState, seen: Any, *, ledger: Any = None, rollout: Any = None, s: Settings = S) -> Any:
    return plan_disruption(state, ledger=ledger or {}, rollout=rollout, seen=seen, now=10.0, settings=s)


def test_nothing_waiting_nothing_starts() -> None:
    d = plan(cluster(), green(1, 2, 3, 4, 5))
    assert d.start is None and d.blocked == () and dict(d.unavailable) == {} and d.summary == "nothing to do"


@pytest.mark.parametrize("seen", [None, Unknown("timed out")])
def test_elasticsearch_silent_blocks_every_intent(seen: Any) -> None:
    state = cluster(5, desired=4)
    ledger = request({}, state, Kind.RESTART, 2, now=1.0, external_volumes=True)
    d = plan(state, seen, ledger=ledger)
    assert d.start is None
    assert [(b.node_id, b.predicate) for b in d.blocked] == [
        (2, "elasticsearch_answered"),
        (5, "elasticsearch_answered"),
    ]
    assert d.blocked[0].message.startswith("Elasticsearch did not answer: not safe")


def test_a_scale_down_starts_with_remove_and_blocks_a_rollout_with_max_one() -> None:
    state = cluster(5, desired=4)
    r = plan_rollout(state, RolloutReason.RESTART, 1.0, 1, master_nodes=3, target="t")
    d = plan(state, green(1, 2, 3, 4, 5), rollout=r)
    assert d.start is not None and (d.start.node_id, d.start.kind, d.start.shutdown) == (
        5,
        Kind.SCALE_DOWN,
        ShutdownType.REMOVE,
    )
    assert d.start.task_id == state.nodes[5].task_id and d.start.started_at == 10.0
    assert [(b.node_id, b.predicate) for b in d.blocked] == [(4, "one_action_at_a_time")]
    # next round: node 5 drains, the rollout waits for it
    d2 = plan(state, green(1, 2, 3, 4, 5), rollout=r, ledger={5: d.start})
    assert d2.start is None
    assert d2.blocked[0].predicate == "max_unavailable"
    assert d2.blocked[0].message == "node 5 is already draining for scale-down: 1 of maxUnavailable 1 in use"


def test_a_running_rollout_step_blocks_a_scale_down() -> None:
    state = cluster(5)
    r = plan_rollout(state, RolloutReason.RESTART, 1.0, 1, master_nodes=3, target="t")
    r, _ = start_step(r, 4, 2.0)
    d = plan(
        replace(state, desired_nodes=4), green(1, 2, 3, 4, 5), rollout=r, ledger={4: started(4, Kind.ROLLOUT, state)}
    )
    assert d.start is None
    assert d.blocked[0].node_id == 5 and d.blocked[0].predicate == "max_unavailable"
    assert d.blocked[0].message == "node 4 is already restarting (rollout): 1 of maxUnavailable 1 in use"


def test_missing_unhealthy_and_unjoined_nodes_count() -> None:
    state = cluster(5)
    nodes = dict(state.nodes)
    del nodes[5]
    nodes[4] = replace(nodes[4], healthy=False)
    state = state.with_nodes(nodes)
    ledger = request({}, state, Kind.RESTART, 1, now=1.0, external_volumes=True)
    d = plan(state, green(1, 2, 4), ledger=ledger, s=replace(S, max_unavailable=5))
    assert dict(d.unavailable) == {
        3: "not in the Elasticsearch cluster",
        4: "reported unhealthy",
        5: "missing (no task)",
    }
    # within budget (4 of 5), but master-eligible node 3 is already away
    assert d.start is None and d.blocked[0].predicate == "one_master_at_a_time"
    assert d.blocked[0].message == "master-eligible node 3 is not in the Elasticsearch cluster"


def test_cluster_health_predicates_by_name() -> None:
    state = cluster(5)
    ledger = request({}, state, Kind.RESTART, 4, now=1.0, external_volumes=True)
    ids = (1, 2, 3, 4, 5)
    cases = {
        "cluster is yellow": green(*ids, status="yellow", unassigned=1),
        "cluster is red": green(*ids, status="red"),
        "0 unassigned, 2 relocating and 1 initializing shards": green(*ids, relocating=2, initializing=1),
    }
    for message, seen in cases.items():
        d = plan(state, seen, ledger=ledger)
        assert d.start is None and d.blocked[0].message == message
    d = plan(state, green(*ids, sole={4: 3}), ledger=ledger)
    assert d.blocked[0].predicate == "started_copy_elsewhere"
    assert d.blocked[0].message == "node 4 holds the only started copy of 3 shard(s)"
    assert plan(
        state, green(*ids, sole={4: 3}), ledger=ledger, s=replace(S, disabled=frozenset({"started_copy_elsewhere"}))
    ).start


def test_a_sole_copy_does_not_block_a_drain_which_moves_it_first() -> None:
    state = cluster(5, desired=4)
    d = plan(state, green(1, 2, 3, 4, 5, sole={5: 2}))
    assert d.start is not None and d.start.node_id == 5


def test_masters_one_at_a_time_and_quorum() -> None:
    state = cluster(5)
    s2 = replace(S, max_unavailable=2)
    ledger: dict[int, Disruption] = {1: started(1, Kind.RESTART, state)}
    ledger.update(request({}, state, Kind.RESTART, 2, now=1.0, external_volumes=True))
    d = plan(state, green(1, 2, 3, 4, 5), ledger=ledger, s=s2)
    assert d.blocked[0].predicate == "one_master_at_a_time"
    d = plan(state, green(1, 2, 3, 4, 5), ledger=ledger, s=replace(s2, disabled=frozenset({"one_master_at_a_time"})))
    assert d.blocked[0].predicate == "master_quorum"
    assert d.blocked[0].message == "stopping node 2 would leave 1 of 3 master-eligible nodes up, no majority"
    single = replace(running(1), desired_nodes=1)
    d = plan(single, green(1), ledger=request({}, single, Kind.RESTART, 1, now=1.0, external_volumes=True))
    assert d.blocked[0].predicate == "master_quorum"


def test_a_leaving_master_with_its_voting_exclusion_keeps_quorum() -> None:
    state = cluster(3, desired=2)
    d = plan(state, green(1, 2, 3))
    assert d.start is not None and d.start.node_id == 3 and d.start.shutdown is ShutdownType.REMOVE


def test_leaving_nodes_never_started_stop_at_once_unreachable_ones_wait() -> None:
    state = cluster(5, desired=3)
    nodes = dict(state.nodes)
    nodes[5] = replace(nodes[5], state=TaskState.STAGING)
    nodes[4] = replace(nodes[4], state=TaskState.UNREACHABLE)
    state = state.with_nodes(nodes)
    d = plan(state, green(1, 2, 3, status="yellow"))
    assert d.start is not None and d.start.node_id == 5
    d = plan(state, green(1, 2, 3), ledger={5: d.start})
    assert d.blocked[0].node_id == 4 and d.blocked[0].predicate == "node_running"


def test_force_disables_only_health_for_one_rollout_step() -> None:
    state = cluster(5)
    r = plan_rollout(state, RolloutReason.RESTART, 1.0, 1, master_nodes=3, target="t")
    red = green(1, 2, 3, 4, 5, status="red", unassigned=3)
    assert plan(state, red, rollout=r).blocked[0].predicate == "cluster_green"
    forced, _ = grant_force(r, "a setting that fixes red needs a restart")
    d = plan(state, red, rollout=forced)
    assert d.start is not None and d.start.node_id == 4 and d.forced == "a setting that fixes red needs a restart"
    busy = {5: started(5, Kind.RESTART, state)}
    assert plan(state, red, rollout=forced, ledger=busy).blocked[-1].predicate == "max_unavailable"
    assert plan(state, Unknown("x"), rollout=forced).start is None
    assert plan(state, green(1, 2, 3, 4, 5), rollout=forced).forced is None  # not needed: not used


def test_yellow_allowed_for_rollout_steps_only_during_a_version_upgrade() -> None:
    state = cluster(5, desired=5)
    r = plan_rollout(state, RolloutReason.CONFIGURATION, 1.0, 1, master_nodes=3, target="t", nodes=[4])
    yellow = green(1, 2, 3, 4, 5, status="yellow", unassigned=2)
    upgrade = replace(S, allow_yellow=True)
    assert plan(state, yellow, rollout=r, s=upgrade).start is not None
    assert plan(state, yellow, rollout=r).start is None
    assert plan(state, green(1, 2, 3, 4, 5, status="yellow", initializing=1), rollout=r, s=upgrade).start is None


def test_shutdown_type_follows_the_intent_and_a_remove_stays_a_remove() -> None:
    assert shutdown_type(Kind.SCALE_DOWN, True) is ShutdownType.REMOVE
    assert shutdown_type(Kind.ROLLOUT, False) is ShutdownType.RESTART
    assert shutdown_type(Kind.RESTART, False) is ShutdownType.RESTART
    assert shutdown_type(Kind.REPLACE, True) is ShutdownType.RESTART
    assert shutdown_type(Kind.REPLACE, False) is ShutdownType.REMOVE
    assert shutdown_type(Kind.MAINTENANCE, False) is ShutdownType.REMOVE
    for kind in Kind:
        assert shutdown_type(kind, True, "remove") is ShutdownType.REMOVE
    state = cluster(5)
    ledger = request({}, state, Kind.RESTART, 4, now=1.0, external_volumes=True)
    seen = replace(green(1, 2, 3, 4, 5), shutdowns=MappingProxyType({name(4): ("remove", "IN_PROGRESS")}))
    d = plan(state, seen, ledger=ledger)
    assert d.start is not None and d.start.shutdown is ShutdownType.REMOVE


def test_requests_are_checked_and_one_per_node() -> None:
    state = cluster(5, desired=4)
    with pytest.raises(OperatorError, match="scaled away") as info:
        request({}, state, Kind.RESTART, 5, now=1.0, external_volumes=True)
    assert info.value.status == 409
    with pytest.raises(OperatorError) as info:
        request({}, state, Kind.RESTART, 9, now=1.0, external_volumes=True)
    assert info.value.status == 404
    with pytest.raises(OperatorError):
        request({}, state, Kind.SCALE_DOWN, 2, now=1.0, external_volumes=True)
    ledger = request({}, state, Kind.REPLACE, 2, now=1.0, external_volumes=False)
    assert ledger[2].shutdown is ShutdownType.REMOVE
    assert request(ledger, state, Kind.REPLACE, 2, now=2.0, external_volumes=False) is ledger
    with pytest.raises(OperatorError, match="already has a replace"):
        request(ledger, state, Kind.RESTART, 2, now=2.0, external_volumes=True)


def test_priority_maintenance_replace_restart_scale_down_rollout() -> None:
    state = cluster(6, desired=5)
    ledger: Any = {}
    ledger = request(ledger, state, Kind.RESTART, 4, now=1.0, external_volumes=True)
    ledger = request(ledger, state, Kind.MAINTENANCE, 5, now=3.0, external_volumes=True)
    d = plan(state, green(*range(1, 7)), ledger=ledger)
    assert d.start is not None and d.start.kind is Kind.MAINTENANCE
    assert [b.kind for b in d.blocked] == [Kind.RESTART, Kind.SCALE_DOWN]


def test_check_disabled() -> None:
    assert check_disabled(frozenset({"cluster_green"})) == frozenset({"cluster_green"})
    with pytest.raises(OperatorError, match="cannot be disabled"):
        check_disabled(frozenset({"max_unavailable"}))
    with pytest.raises(OperatorError, match="no predicate"):
        check_disabled(frozenset({"bogus"}))


def test_settle_drops_ended_actions_and_void_requests() -> None:
    state = cluster(5, desired=4)
    ledger = {
        1: started(1, Kind.RESTART, state),
        2: replace(started(2, Kind.RESTART, state), task_id="an-older-task"),
        3: Disruption(3, Kind.RESTART, ShutdownType.RESTART, 1.0),
        5: Disruption(5, Kind.RESTART, ShutdownType.RESTART, 1.0),
        6: Disruption(6, Kind.SCALE_DOWN, ShutdownType.REMOVE, 1.0, 2.0, "t"),
    }
    kept, ended = settle(ledger, state)
    assert sorted(kept) == [1, 3] and ended == (2, 6)


def test_step_settled_is_closed_on_doubt() -> None:
    state = cluster(5)
    assert step_settled(4, state, green(1, 2, 3, 4, 5), S)
    assert not step_settled(4, state, Unknown("x"), S)
    assert not step_settled(4, state, None, S)
    assert not step_settled(4, state, green(1, 2, 3, 5), S)
    assert not step_settled(4, state, green(1, 2, 3, 4, 5, relocating=1), S)
    assert not step_settled(4, state, green(1, 2, 3, 4, 5, status="yellow"), S)
    assert step_settled(4, state, green(1, 2, 3, 4, 5, status="yellow"), replace(S, allow_yellow=True))
    assert not step_settled(9, state, green(1, 2, 3, 4, 5), S)


def test_ledger_round_trip_and_corruption() -> None:
    state = cluster(3)
    ledger = {
        1: started(1, Kind.ROLLOUT, state),
        2: Disruption(2, Kind.REPLACE, ShutdownType.REMOVE, 3.0, reason="disk"),
    }
    assert dict(ledger_from_json(ledger_to_json(ledger))) == ledger
    good = ledger_to_json(ledger)["1"]
    for bad in (
        {"01": good},
        {"1": {**good, "kind": "nap"}},
        {"1": {**good, "started_at": True}},
        {"1": {**good, "schema": 2}},
    ):
        with pytest.raises(ValueError):
            ledger_from_json(bad)


# --- what Elasticsearch said ------------------------------------------------------------------

HEALTH = {"status": "green", "unassigned_shards": 0, "relocating_shards": 0, "initializing_shards": 0}
NODES = [{"name": name(1), "master": "*"}, {"name": name(2), "master": "-"}]


def row(index: str, shard: int, state: str, node: str | None) -> dict[str, Any]:
    return {"index": index, "shard": str(shard), "prirep": "p", "state": state, "node": node}


@pytest.mark.parametrize(
    ("health", "shards", "nodes"),
    [
        (None, [], NODES),
        ({**HEALTH, "status": "GREEN"}, [], NODES),
        ({**HEALTH, "status": "purple"}, [], NODES),
        ({k: v for k, v in HEALTH.items() if k != "relocating_shards"}, [], NODES),
        ({**HEALTH, "unassigned_shards": True}, [], NODES),
        ({**HEALTH, "unassigned_shards": "0"}, [], NODES),
        ({**HEALTH, "unassigned_shards": -1}, [], NODES),
        (HEALTH, None, NODES),
        (HEALTH, [{"state": "WEIRD"}], NODES),
        (HEALTH, [row("i", 0, "STARTED", None)], NODES),
        (HEALTH, [], None),
        (HEALTH, [], [{"name": ""}]),
        (HEALTH, [], "error"),
    ],
)
def test_anything_unexpected_is_unknown(health: Any, shards: Any, nodes: Any) -> None:
    assert isinstance(observe(health, shards, nodes), Unknown)


def test_observe_counts_copies_sole_copies_and_the_elected_master() -> None:
    rows = [
        row("a", 0, "STARTED", name(1)),
        row("a", 0, "STARTED", name(2)),
        row("b", 0, "STARTED", name(1)),
        row("b", 0, "INITIALIZING", name(2)),
        row("c", 0, "RELOCATING", f"{name(2)} -> 10.0.0.1 abc {name(1)}"),
        row("d", 0, "UNASSIGNED", None),
    ]
    seen = observe(HEALTH, rows, NODES)
    assert isinstance(seen, Seen)
    assert seen.elected_master == name(1) and seen.joined == {name(1), name(2)}
    assert dict(seen.shards_by_node) == {name(1): 2, name(2): 3}
    # b's only started copy is on 1, c's (relocating away) on 2; b's initializing copy has a started one elsewhere
    assert dict(seen.sole_copies) == {name(1): 1, name(2): 1}
    assert observe(HEALTH, [], [*NODES, {"name": "x", "master": "*"}]).elected_master is None  # type: ignore[union-attr]


# --- the property: never more than maxUnavailable, never on doubt ------------------------------

EVENTS = st.sampled_from(["plan", "plan", "plan", "request", "scale", "finish", "fail", "rollout"])


@settings(max_examples=150, deadline=None)
@given(
    events=st.lists(st.tuples(EVENTS, st.integers(1, 7), st.integers(0, 3)), max_size=40),
    max_unavailable=st.integers(1, 3),
)
def test_planner_never_exceeds_max_unavailable_and_never_acts_on_doubt(
    events: list[tuple[str, int, int]], max_unavailable: int
) -> None:
    s = replace(S, max_unavailable=max_unavailable)
    state = cluster(7)
    ledger: dict[int, Disruption] = {}
    rollout = None
    now = 10.0
    for event, node_id, choice in events:
        now += 1
        if event == "request" and node_id in state.nodes:
            with contextlib.suppress(OperatorError):
                ledger = dict(
                    request(
                        ledger,
                        state,
                        [Kind.RESTART, Kind.REPLACE, Kind.MAINTENANCE][choice % 3],
                        node_id,
                        now=now,
                        external_volumes=bool(choice % 2),
                    )
                )
        elif event == "scale":
            state = replace(state, desired_nodes=max(3, node_id))
        elif event == "rollout" and rollout is None:
            rollout = plan_rollout(state, RolloutReason.RESTART, now, None, master_nodes=3, target="t")
        elif event == "finish" and ledger:
            done = sorted(ledger)[choice % len(ledger)]
            if ledger[done].started_at is not None:
                del ledger[done]
        elif event == "fail" and node_id in state.nodes:
            nodes = dict(state.nodes)
            nodes[node_id] = replace(nodes[node_id], state=TaskState.FAILED if choice else TaskState.RUNNING)
            state = state.with_nodes(nodes)
        else:
            seen: Any = [None, Unknown("timeout"), green(*state.nodes), green(*state.nodes, status="yellow")][choice]
            before = {i for i, e in ledger.items() if e.started_at is not None}
            d = plan_disruption(state, ledger=ledger, rollout=None, seen=seen, now=now, settings=s)
            if d.start is None:
                continue
            assert isinstance(seen, Seen) and seen.status == "green"  # unknown/yellow never starts anything
            assert d.start.node_id not in before
            record = state.nodes[d.start.node_id]
            if record.state is TaskState.RUNNING:
                assert len(set(d.unavailable) | {d.start.node_id}) <= max_unavailable
            ledger[d.start.node_id] = d.start
            planner_made = [e for e in ledger.values() if e.started_at is not None and state.nodes.get(e.node_id)]
            assert len(planner_made) <= max_unavailable
            if d.start.kind is Kind.SCALE_DOWN:
                assert d.start.shutdown is ShutdownType.REMOVE
