"""Pluggable offer strategies: ``normal`` (local disk) and ``external`` (volume driver)."""

from es_framework.config import Config
from es_framework.core.evaluation import EvaluationContext, RuleOutcome, Verdict
from strategies.base import OfferStrategy, Rule
from strategies.external import EXTERNAL
from strategies.normal import NORMAL
from strategies.rules import COMMON_RULES, NODE_ID_RULES

STRATEGIES: dict[str, OfferStrategy] = {NORMAL.name: NORMAL, EXTERNAL.name: EXTERNAL}


def strategy_for(config: Config) -> OfferStrategy:
    """``external`` when ``--externalVolumeDriver`` is set, ``normal`` otherwise."""
    return STRATEGIES[config.strategy_name]


__all__ = [
    "COMMON_RULES",
    "EXTERNAL",
    "NODE_ID_RULES",
    "NORMAL",
    "STRATEGIES",
    "EvaluationContext",
    "OfferStrategy",
    "Rule",
    "RuleOutcome",
    "Verdict",
    "strategy_for",
]
