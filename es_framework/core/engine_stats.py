"""What the engine counts and remembers for the operator: declines by rule, counters, recent events.

Plain mutable records the engine thread owns; the driver shell publishes copies for the API and
``/metrics``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from es_framework.core.evaluation import RuleOutcome


@dataclass
class DeclineCounts:
    """Declines by rule (the first failing one), with the last reason of each, for logs, the API and metrics."""

    by_rule: dict[str, int] = field(default_factory=dict)
    #: rule -> (last reason, when).
    last: dict[str, tuple[str, float]] = field(default_factory=dict)
    #: rule -> every rule's outcome for the last offer declined under it; empty when no rule judged
    #: the offer (malformed, or the state store unavailable).
    explanations: dict[str, tuple[RuleOutcome, ...]] = field(default_factory=dict)

    def add(self, rule: str, reason: str = "", when: float = 0.0, outcomes: tuple[RuleOutcome, ...] = ()) -> None:
        self.by_rule[rule] = self.by_rule.get(rule, 0) + 1
        self.last[rule] = (reason or rule, when)
        self.explanations[rule] = outcomes


@dataclass
class Counters:
    """Counters since this scheduler process started (``/metrics``)."""

    offers_received: int = 0
    offers_accepted: int = 0
    reconciliations: int = 0
    #: Registrations that resumed a known framework id (a failover or a re-subscription).
    failovers: int = 0


@dataclass(frozen=True)
class EngineEvent:
    """Something the engine decided or saw, for the operator's history (bounded)."""

    time: float
    message: str
    node_id: int | None = None
    state: str | None = None


#: How many events the engine keeps for the API.
EVENTS_KEPT = 500
