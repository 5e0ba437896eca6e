"""Draining leaving nodes before they stop: the pure plan, every rule."""

from __future__ import annotations

from dataclasses import replace

from es_framework.core.drain import Observation, copies_needed, plan_drain
from es_framework.core.node_state import ClusterState, TaskState
from tests.core.test_node_state import FW, apply, running, update


def seen(
    shards: dict[str, int] | None = None,
    *,
    excluded: tuple[str, ...] = (),
    voting: tuple[str, ...] = (),
    unassigned: int = 0,
    relocating: int = 0,
    initializing: int = 0,
) -> Observation:
    return Observation(shards or {}, unassigned, relocating, initializing, excluded, voting)


def scaled(desired: int, *ids: int) -> ClusterState:
    return replace(running(*ids), desired_nodes=desired)


def test_nothing_leaving_nothing_to_do() -> None:
    plan = plan_drain(running(1, 2, 3), FW, 3, seen({"elasticsearch1": 4}))
    assert plan.set_excluded is None and plan.stop == () and plan.nodes == ()
    assert not plan.changes_elasticsearch


def test_leaving_nodes_are_excluded_first_and_others_names_are_kept() -> None:
    state = scaled(2, 1, 2, 3, 4, 5)
    plan = plan_drain(state, FW, 3, seen({"elasticsearch3": 2, "elasticsearch4": 1}, excluded=("other-node",)))
    assert plan.set_excluded == ("other-node", "elasticsearch3", "elasticsearch4", "elasticsearch5")
    assert plan.add_voting_exclusions == ("elasticsearch3",)  # the only leaving master
    assert plan.stop == ()
    assert [n.status for n in plan.nodes] == ["draining"] * 3


def test_a_node_stops_only_when_empty_and_nothing_is_in_flight() -> None:
    state = scaled(2, 1, 2, 3)
    excluded = ("elasticsearch3",)
    voting = ("elasticsearch3",)
    busy = plan_drain(state, FW, 3, seen({"elasticsearch3": 1}, excluded=excluded, voting=voting))
    assert busy.stop == () and busy.nodes[0].shards_left == 1
    for kwargs in ({"unassigned": 1}, {"relocating": 2}, {"initializing": 1}):
        waiting = plan_drain(state, FW, 3, seen({}, excluded=excluded, voting=voting, **kwargs))
        assert waiting.stop == () and waiting.nodes[0].status == "waiting"
    no_vote = plan_drain(state, FW, 3, seen({}, excluded=excluded))
    assert no_vote.stop == () and "voting exclusion" in no_vote.nodes[0].reason
    ready = plan_drain(state, FW, 3, seen({}, excluded=excluded, voting=voting))
    assert ready.stop == (3,) and ready.nodes[0].status == "ready"
    assert not ready.changes_elasticsearch


def test_a_data_only_node_needs_no_voting_exclusion() -> None:
    state = scaled(3, 1, 2, 3, 4)
    plan = plan_drain(state, FW, 3, seen({}, excluded=("elasticsearch4",)))
    assert plan.add_voting_exclusions == () and plan.stop == (4,)


def test_not_excluded_yet_is_never_ready_even_when_empty() -> None:
    plan = plan_drain(scaled(3, 1, 2, 3, 4), FW, 3, seen({}))
    assert plan.stop == () and plan.set_excluded == ("elasticsearch4",)


def test_unreachable_leaving_node_blocks_and_a_never_started_one_stops_at_once() -> None:
    state, _ = apply(scaled(2, 1, 2, 3), update(3, TaskState.UNREACHABLE))
    plan = plan_drain(state, FW, 3, seen({}, excluded=("elasticsearch3",), voting=("elasticsearch3",)))
    assert plan.stop == () and plan.nodes[0].status == "blocked"
    launching = replace(state, nodes={**state.nodes, 3: replace(state.nodes[3], state=TaskState.STAGING)})
    assert plan_drain(launching, FW, 3, seen()).stop == (3,)


def test_a_node_already_stopping_is_not_stopped_twice() -> None:
    state = scaled(2, 1, 2, 3)
    state = replace(state, nodes={**state.nodes, 3: replace(state.nodes[3], stopping="scale-down")})
    plan = plan_drain(state, FW, 3, seen({}, excluded=("elasticsearch3",), voting=("elasticsearch3",)))
    assert plan.stop == () and plan.nodes[0].status == "stopping"


def test_when_done_our_names_leave_the_lists_and_voting_exclusions_are_cleared() -> None:
    plan = plan_drain(
        running(1, 2), FW, 3, seen(excluded=("other", "elasticsearch3", "elasticsearch10"), voting=("elasticsearch3",))
    )
    assert plan.set_excluded == ("other",)
    assert plan.clear_voting_exclusions
    # Names that merely start with the framework name are not ours.
    keep = plan_drain(running(1, 2), FW, 3, seen(excluded=("elasticsearch-old", "elasticsearch07")))
    assert keep.set_excluded is None and not keep.clear_voting_exclusions


def test_copies_needed() -> None:
    assert copies_needed({}) == 1
    assert copies_needed({"logs": 1, "metrics": 2}) == 3
