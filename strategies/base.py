"""Judging an offer: an ordered list of named rules, every one evaluated, the first failing one declines.

A rule is a pure function of a :class:`Candidate` (the offer, its usable resources, the cluster
view, the configuration and the offer cycle's
:class:`~es_framework.core.evaluation.EvaluationContext`) to a :class:`Finding`: passed or failed,
and why, in words. Every rule of a strategy is evaluated and its outcome kept in the
:class:`~es_framework.core.evaluation.Verdict`, so a verdict explains an offer completely; the
*first* failing rule is the one the offer is declined and counted under (its name is the key of the
decline metrics). No rule does network I/O or scans the cluster's tasks, so a verdict costs the
same whatever the cluster's size. The rules themselves are :mod:`strategies.rules`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from es_framework.config import Config
from es_framework.core.cluster_view import ClusterView
from es_framework.core.evaluation import EvaluationContext, RuleOutcome, Verdict
from es_framework.core.offers import Offer
from es_framework.core.resources import Available, available


@dataclass(frozen=True)
class Candidate:
    """Everything a rule may look at."""

    offer: Offer
    #: The offer's resources our role may use.
    available: Available
    view: ClusterView
    config: Config
    context: EvaluationContext


@dataclass(frozen=True)
class Finding:
    """What a rule found: whether the offer passes it, and why."""

    passed: bool
    reason: str


def passed(reason: str) -> Finding:
    return Finding(True, reason)


def failed(reason: str) -> Finding:
    return Finding(False, reason)


Check = Callable[[Candidate], Finding]


@dataclass(frozen=True)
class Rule:
    #: A short, stable name: the key under which declines are counted.
    name: str
    check: Check
    #: Whether the rule applies (None: always). A rule that does not apply (a flag left unset, no
    #: zone known) is neither evaluated nor reported, so a verdict lists only what can decide.
    applies: Callable[[Candidate], bool] | None = None
    #: The part of the check that looks at the offer and the configuration only, never at the
    #: cluster or the node id (None: the rule has no such part); :meth:`OfferStrategy.can_host`.
    offer_only: Check | None = None

    def applies_to(self, candidate: Candidate) -> bool:
        return self.applies is None or self.applies(candidate)


@dataclass(frozen=True)
class OfferStrategy:
    name: str
    #: Every rule, in the order they are reported; the first failing one declines.
    rules: tuple[Rule, ...]
    #: Whether the node's data lives on the agent's disk (and so takes disk from the offer).
    uses_local_disk: bool = True

    def evaluate(self, offer: Offer, view: ClusterView, config: Config, context: EvaluationContext) -> Verdict:
        candidate = Candidate(offer, available(offer, config.role), view, config, context)
        rules = [rule for rule in self.rules if rule.applies_to(candidate)]
        outcomes = tuple(_outcome(rule, candidate) for rule in rules)
        first = next((o for o in outcomes if not o.passed), None)
        if first is not None:
            return Verdict(offer.id, offer.agent_id, offer.hostname, False, first.rule, first.reason, outcomes)
        return Verdict(
            offer.id,
            offer.agent_id,
            offer.hostname,
            True,
            None,
            f"{self.name} strategy: every rule passed ({', '.join(r.name for r in rules)})",
            outcomes,
        )

    def can_host(self, offer: Offer, config: Config) -> bool:
        """Whether the offer passes every rule's offer-only part (see :class:`Rule`)."""
        view = ClusterView(desired_nodes=1)
        candidate = Candidate(offer, available(offer, config.role), view, config, EvaluationContext(None))
        return all(
            rule.offer_only(candidate).passed
            for rule in self.rules
            if rule.offer_only is not None and rule.applies_to(candidate)
        )


def _outcome(rule: Rule, candidate: Candidate) -> RuleOutcome:
    finding = rule.check(candidate)
    return RuleOutcome(rule.name, finding.passed, finding.reason)
