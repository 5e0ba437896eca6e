"""A disruption ledger entry and its kinds, apart from the planner (:mod:`es_framework.core.disruption`),
so that the cluster state (:mod:`es_framework.core.node_state`) can hold the ledger without importing
the planner, which reads the cluster state."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    MAINTENANCE = "maintenance"
    REPLACE = "replace"
    RESTART = "restart"
    SCALE_DOWN = "scale-down"
    ROLLOUT = "rollout"


class ShutdownType(StrEnum):
    RESTART = "restart"
    REMOVE = "remove"


@dataclass(frozen=True)
class Disruption:
    """One node's disruptive action in the ledger: requested (``started_at`` None, waiting for the
    planner) or started (its task id then, so its end is recognised)."""

    node_id: int
    kind: Kind
    shutdown: ShutdownType
    requested_at: float
    started_at: float | None = None
    task_id: str | None = None
    reason: str = ""
