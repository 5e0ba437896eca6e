"""Development tool: a rollout in the middle of its steps for :class:`es_framework.dev.fake_api.FakeCore`,
as the web UI's rollout panel shows one (a step done, one restarting, one held back by the planner).

Set ``core.rollout = sample_rollout()`` and ``core.rollout_blocked = SAMPLE_BLOCKED``; the fake's
``POST /v1/rollouts/<id>/pause|resume|abort`` then act on it with the real pure core
(:mod:`es_framework.core.rollouts`)."""

from __future__ import annotations

from types import MappingProxyType

from es_framework.core.rollout_model import Rollout, RolloutReason, Step, StepState

#: The fake's fixed now (:data:`es_framework.dev.fake_api.EPOCH`).
NOW = 1_790_000_000.0

#: The planner's last (node, kind, predicate, message) list: node 3's step waits for green health,
#: as :func:`es_framework.core.disruption.plan_disruption` reports a blocked intent.
SAMPLE_BLOCKED: tuple[tuple[int, str, str, str], ...] = (
    (3, "rollout", "cluster_green", "cluster health is yellow, not green: 2 replica shards unassigned"),
)


def sample_rollout(node_ids: tuple[int, ...] = (1, 2, 3)) -> Rollout:
    """A version upgrade over ``node_ids`` (in that order): the first done, the second restarting, the
    rest pending; started ten minutes before ``NOW``."""
    states = (StepState.DONE, StepState.RESTARTING)
    steps = {
        node_id: Step(
            node_id,
            position,
            master_eligible=True,
            state=states[position] if position < len(states) else StepState.PENDING,
            since=NOW - 600 + 120 * position if position < len(states) else None,
            attempts=1 if position < len(states) else 0,
        )
        for position, node_id in enumerate(node_ids)
    }
    return Rollout(
        f"configuration-{int((NOW - 600) * 1000)}",
        RolloutReason.CONFIGURATION,
        NOW - 600,
        "",
        MappingProxyType(steps),
        upgrade=("8.15.0", "8.16.1"),
    )
