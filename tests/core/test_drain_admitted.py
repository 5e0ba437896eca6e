"""plan_drain with the planner's admitted ids: only admitted leaving nodes are excluded, voted out
and stopped; the others are left alone; clean-up waits until no node leaves at all."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from es_framework.core.drain import plan_drain
from tests.core.test_drain import scaled, seen
from tests.core.test_node_state import FW


def test_only_admitted_leaving_nodes_are_excluded_and_listed() -> None:
    state = scaled(2, 1, 2, 3, 4, 5)
    plan = plan_drain(
        state, FW, 3, seen({"elasticsearch4": 1, "elasticsearch5": 2}, excluded=("x",)), admitted=frozenset({5})
    )
    assert plan.set_excluded == ("x", "elasticsearch5")
    assert plan.add_voting_exclusions == ()  # node 3, the leaving master, is not admitted yet
    assert [(n.node_id, n.status) for n in plan.nodes] == [(5, "draining")]


def test_none_admitted_is_every_leaving_node_as_before() -> None:
    state = scaled(2, 1, 2, 3, 4)
    assert plan_drain(state, FW, 3, seen(), admitted=None) == plan_drain(state, FW, 3, seen())
    assert plan_drain(state, FW, 3, seen()).set_excluded == ("elasticsearch3", "elasticsearch4")


def test_nothing_admitted_drops_our_names_but_keeps_voting_until_no_node_leaves() -> None:
    state = scaled(2, 1, 2, 3, 4)
    plan = plan_drain(
        state, FW, 3, seen(excluded=("elasticsearch4", "x"), voting=("elasticsearch3",)), admitted=frozenset()
    )
    assert plan.set_excluded == ("x",) and plan.stop == () and plan.nodes == ()
    assert not plan.clear_voting_exclusions  # nodes still leave: the voting exclusion stays
    done = plan_drain(scaled(2, 1, 2), FW, 3, seen(voting=("elasticsearch3",)), admitted=frozenset())
    assert done.clear_voting_exclusions


def test_an_admitted_empty_node_stops_and_a_waiting_one_does_not() -> None:
    state = scaled(3, 1, 2, 3, 4, 5)
    excluded = ("elasticsearch4", "elasticsearch5")
    plan = plan_drain(state, FW, 3, seen({}, excluded=excluded), admitted=frozenset({5}))
    assert plan.stop == (5,) and plan.set_excluded == ("elasticsearch5",)


def test_an_admitted_master_is_voted_out() -> None:
    state = scaled(2, 1, 2, 3)
    plan = plan_drain(state, FW, 3, seen({"elasticsearch3": 1}), admitted=frozenset({3}))
    assert plan.add_voting_exclusions == ("elasticsearch3",) and plan.set_excluded == ("elasticsearch3",)


@given(
    desired=st.integers(1, 6),
    ids=st.sets(st.integers(1, 8), min_size=1),
    admitted=st.sets(st.integers(1, 8)),
    shards=st.dictionaries(st.integers(1, 8), st.integers(0, 3)),
)
def test_nothing_outside_the_admitted_set_is_excluded_voted_out_or_stopped(
    desired: int, ids: set[int], admitted: set[int], shards: dict[int, int]
) -> None:
    state = scaled(desired, *sorted(ids))
    # Every leaving node already excluded (e.g. by an earlier release): only admitted ones may stop.
    leaving = tuple(f"elasticsearch{i}" for i in sorted(ids) if i > desired)
    observed = seen({f"elasticsearch{i}": n for i, n in shards.items()}, excluded=leaving, voting=leaving)
    plan = plan_drain(state, FW, 3, observed, admitted=frozenset(admitted))
    allowed = {f"elasticsearch{i}" for i in admitted if i in ids and i > desired}
    assert set(plan.set_excluded or ()) <= allowed
    assert set(plan.add_voting_exclusions) <= allowed
    assert {n.node_id for n in plan.nodes} | set(plan.stop) <= {i for i in admitted if i in ids and i > desired}
    # Every stop holds no shard.
    assert all(shards.get(i, 0) == 0 for i in plan.stop)
