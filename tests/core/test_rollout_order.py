"""The elected master goes last in a rollout even when it was unknown or has changed since the rollout
was created: every planner round moves its pending step to the end
(es_framework/core/engine_rollouts.py, ``elected_last``)."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from hypothesis import given
from hypothesis import strategies as st

from es_framework.core.engine_rollouts import elected_last
from es_framework.core.rollouts import Rollout, RolloutReason, Step, StepState, plan_rollout
from tests.core.test_engine_rollouts import cluster, current, seen
from tests.core.test_node_state import running


def test_a_rollout_created_before_the_master_was_known_restarts_it_last() -> None:
    engine, _, _, _ = cluster(4, elasticsearchMasterNodes="3")
    rollout, _ = engine.start_rollout(RolloutReason.RESTART)  # no planner round yet: the master is unknown
    assert rollout.order == (4, 1, 2, 3) and rollout.order_note is not None
    round_, _ = engine.plan_disruptions(seen(1, 2, 3, 4, master=1))
    assert current(engine).order == (4, 2, 3, 1) and current(engine).order_note is None
    assert round_.decision.start is not None and round_.decision.start.node_id == 4


def _rollout(states: dict[int, StepState], masters: int = 3) -> Rollout:
    state = replace(running(*states), desired_nodes=max(states))
    rollout = plan_rollout(
        state, RolloutReason.RESTART, 0.0, None, master_nodes=masters, target="", nodes=tuple(states)
    )
    steps = {i: replace(s, state=states[i]) for i, s in rollout.steps.items()}
    return replace(rollout, steps=MappingProxyType(steps))


def test_only_a_pending_master_eligible_elected_master_moves() -> None:
    pending = dict.fromkeys((1, 2, 3, 4), StepState.PENDING)
    assert elected_last(_rollout(pending), None).order == (4, 1, 2, 3)
    assert elected_last(_rollout(pending), 4).order == (4, 1, 2, 3)  # data-only: never the elected master
    assert elected_last(_rollout(pending), 7).order == (4, 1, 2, 3)  # not in the rollout
    assert elected_last(_rollout({**pending, 1: StepState.DONE}), 1).order == (4, 1, 2, 3)
    assert elected_last(_rollout({**pending, 2: StepState.DRAINING}), 2).order == (4, 1, 2, 3)
    assert elected_last(_rollout(pending), 2).order == (4, 1, 3, 2)


@given(
    st.dictionaries(st.integers(1, 6), st.sampled_from(list(StepState)), min_size=1),
    st.integers(1, 4),
    st.one_of(st.none(), st.integers(1, 7)),
)
def test_the_reorder_keeps_every_step_and_the_order_of_the_others(
    states: dict[int, StepState], masters: int, elected: int | None
) -> None:
    before = _rollout(states, masters)
    after = elected_last(before, elected)
    assert {i: replace(s, position=0) for i, s in after.steps.items()} == {
        i: replace(s, position=0) for i, s in before.steps.items()
    }
    assert sorted(s.position for s in after.steps.values()) == list(range(len(states)))
    assert [i for i in after.order if i != elected] == [i for i in before.order if i != elected]
    step: Step | None = before.steps.get(elected) if elected is not None else None
    if step is not None and step.master_eligible and step.state is StepState.PENDING:
        assert after.order[-1] == elected
    else:
        assert after.order == before.order
