"""What judging an offer takes and gives: the offer cycle's context, each rule's outcome, the verdict.

The offer strategies (:mod:`strategies`) sit above the core and implement :class:`OfferEvaluator`;
the core only needs this interface and these values. A verdict carries the outcome of *every*
rule, in order, so "why was this offer declined" has one complete answer; the first failing rule
is the one the offer is declined and counted under (the key of the decline metrics).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from es_framework.config import Config
from es_framework.core.blocked_agents import BlockedAgents
from es_framework.core.cluster_view import ClusterView
from es_framework.core.failures import Backoff
from es_framework.core.node_state import Pin
from es_framework.core.offers import Offer


@dataclass(frozen=True)
class EvaluationContext:
    """What the offer cycle knows, beyond the :class:`ClusterView`, when it judges one offer."""

    #: The node id the cycle would launch on this offer's agent (its pinned node, else the lowest
    #: free id not pinned to another agent); None when no id may launch there.
    node_id: int | None
    #: Missing node ids kept for a restart in place (node id -> pin still in force).
    waiting_pins: Mapping[int, Pin] = field(default_factory=lambda: MappingProxyType({}))
    backoff: Backoff = field(default_factory=Backoff)
    #: The cycle's clock (Unix seconds), for pins and back-off.
    now: float = 0.0
    #: Missing node ids whose external volumes can only be attached in one zone (the driver's
    #: volumes are zonal): node id -> that zone, where the volumes were last attached.
    zone_bound: Mapping[int, str] = field(default_factory=lambda: MappingProxyType({}))
    #: Agents that failed an agent check, blocked for every node until their block ends.
    agents: BlockedAgents = field(default_factory=BlockedAgents)

    @property
    def node_zone(self) -> str | None:
        """The zone the node id that would launch here must stay in, or None when it may go anywhere."""
        return None if self.node_id is None else self.zone_bound.get(self.node_id)


@dataclass(frozen=True)
class RuleOutcome:
    """One rule's outcome for one offer."""

    rule: str
    passed: bool
    reason: str

    def __str__(self) -> str:
        # ASCII: this goes to logs and terminals of any encoding.
        return f"{'passed' if self.passed else 'FAILED'} {self.rule}: {self.reason}"


@dataclass(frozen=True)
class Verdict:
    offer_id: str
    agent_id: str
    hostname: str
    accepted: bool
    #: The first failing rule, which declines the offer (and counts it); None when accepted.
    rule: str | None
    reason: str
    #: Every rule's outcome, in the strategy's order.
    outcomes: tuple[RuleOutcome, ...] = ()

    @property
    def failures(self) -> tuple[RuleOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.passed)

    def explain(self) -> str:
        """Every rule's outcome on one line, for the log."""
        return "; ".join(map(str, self.outcomes))

    def __str__(self) -> str:
        verb = "accept" if self.accepted else f"decline ({self.rule})"
        return f"offer {self.offer_id} from {self.hostname} [{self.agent_id}]: {verb}: {self.reason}"


class OfferEvaluator(Protocol):
    """An offer strategy, as the offer cycle uses it."""

    @property
    def name(self) -> str: ...

    def evaluate(self, offer: Offer, view: ClusterView, config: Config, context: EvaluationContext) -> Verdict: ...

    def can_host(self, offer: Offer, config: Config) -> bool:
        """Whether this offer's agent could run a node at all, whatever runs where: the rules that
        depend on the offer and the configuration only. Placement spreads only over values (zones,
        attribute values) that such an offer brings, so it never waits for an agent that can
        never take a node."""
        ...
