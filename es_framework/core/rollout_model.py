"""A rollout's data (:class:`Rollout`, its :class:`Step` per node id), apart from its transitions in
:mod:`es_framework.core.rollouts`, so that the cluster state (:mod:`es_framework.core.node_state`)
can hold the current rollout without importing the module that reads the cluster state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

#: Bounds of what a rollout keeps (the persisted form refuses more: :mod:`es_framework.core.rollout_json`).
MAX_TEXT = 1000
MAX_RESTORE = 32


class RolloutReason(StrEnum):
    CONFIGURATION = "configuration"
    RESTART = "restart"
    EXECUTOR = "executor"


class StepState(StrEnum):
    PENDING = "pending"
    DRAINING = "draining"
    RESTARTING = "restarting"
    WAITING_HEALTHY = "waiting-healthy"
    DONE = "done"
    FAILED = "failed"
    #: Forced past by the operator: the node was not restarted.
    SKIPPED = "skipped"


#: Steps whose node is (being) taken down: they count as unavailable.
IN_PROGRESS = frozenset({StepState.DRAINING, StepState.RESTARTING, StepState.WAITING_HEALTHY})
FINISHED_STEPS = frozenset({StepState.DONE, StepState.SKIPPED})


@dataclass(frozen=True)
class Step:
    node_id: int
    #: Position in the rollout's order (0 first).
    position: int
    master_eligible: bool
    state: StepState = StepState.PENDING
    #: When the step entered ``state``.
    since: float | None = None
    #: Why it failed or was skipped.
    reason: str | None = None
    #: How many times it was started (a resumed failed step starts again).
    attempts: int = 0


@dataclass(frozen=True)
class Rollout:
    id: str
    reason: RolloutReason
    created_at: float
    #: The configuration fingerprint the nodes are restarted into.
    target: str
    steps: Mapping[int, Step]
    #: Why the rollout is paused (a failed step, the operator), or None while it runs.
    paused: str | None = None
    aborted: bool = False
    #: Cluster setting -> its value before a step changed it (None: it was not set), to restore.
    restore: Mapping[str, str | None] = field(default_factory=lambda: MappingProxyType({}))
    #: What the order could not take into account (e.g. the elected master was unknown).
    order_note: str | None = None
    #: A one-step override the operator asked for (``force`` with this reason), used by the next start.
    force: str | None = None
    #: (the versions the nodes ran, the target version) when the rollout upgrades Elasticsearch
    #: (:func:`es_framework.core.version_change.upgrade_of`): a step may then start and finish while
    #: the cluster is yellow (:mod:`es_framework.core.disruption`). None: no version upgrade.
    upgrade: tuple[str, str] | None = None
    #: Predicates the operator disabled by name for this rollout's steps
    #: (:mod:`es_framework.core.predicates`); they end with the rollout.
    disabled_predicates: frozenset[str] = frozenset()

    @property
    def order(self) -> tuple[int, ...]:
        return tuple(s.node_id for s in sorted(self.steps.values(), key=lambda s: s.position))

    @property
    def in_progress(self) -> tuple[int, ...]:
        return tuple(i for i in self.order if self.steps[i].state in IN_PROGRESS)

    @property
    def finished(self) -> bool:
        return self.aborted or all(s.state in FINISHED_STEPS for s in self.steps.values())

    @property
    def progress(self) -> tuple[int, int]:
        """(steps done or skipped, all steps)."""
        return sum(1 for s in self.steps.values() if s.state in FINISHED_STEPS), len(self.steps)
