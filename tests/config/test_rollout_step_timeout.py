"""--rolloutStepTimeout: seconds greater than 0 (default 1800, the constant it replaces), read by the
stuck-step check of the rollout (a step in progress longer fails and pauses its rollout)."""

from __future__ import annotations

import pytest

from es_framework.config import ConfigError, resolve_config
from es_framework.core.engine_rollouts import STEP_TIMEOUT_S
from es_framework.core.rollouts import RolloutReason, StepState
from tests.core.test_engine_rollouts import cluster, current, seen


def test_the_default_is_half_an_hour_and_a_value_is_seconds() -> None:
    assert resolve_config({}, {}).rollout_step_timeout_s == STEP_TIMEOUT_S == 1800.0
    assert resolve_config({"rolloutStepTimeout": "90.5"}, {}).rollout_step_timeout_s == 90.5


@pytest.mark.parametrize("bad", ["0", "-5", "ten", "inf", ""])
def test_bad_values_are_refused_by_name(bad: str) -> None:
    with pytest.raises(ConfigError, match="--rolloutStepTimeout"):
        resolve_config({"rolloutStepTimeout": bad}, {})


def test_a_step_fails_after_the_configured_time_not_before() -> None:
    engine, _, _, clock = cluster(3, rolloutStepTimeout="60")
    engine.start_rollout(RolloutReason.RESTART)
    round_, _ = engine.plan_disruptions(seen(1, 2, 3))
    assert round_.decision.start is not None
    node_id = round_.decision.start.node_id
    clock.now += 59  # type: ignore[attr-defined]
    engine.plan_disruptions(seen(1, 2, 3))
    assert current(engine).steps[node_id].state is StepState.DRAINING and current(engine).paused is None
    clock.now += 2  # type: ignore[attr-defined]
    engine.plan_disruptions(seen(1, 2, 3))
    rollout = current(engine)
    assert rollout.steps[node_id].state is StepState.FAILED and "more than 60s" in (rollout.paused or "")
