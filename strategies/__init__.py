"""Pluggable offer strategies: ``normal`` (local disk) and ``external`` (volume driver)."""

from es_framework.config import Config
from strategies.base import COMMON_RULES, OfferStrategy, Rule, Verdict
from strategies.external import EXTERNAL
from strategies.normal import NORMAL

STRATEGIES: dict[str, OfferStrategy] = {NORMAL.name: NORMAL, EXTERNAL.name: EXTERNAL}


def strategy_for(config: Config) -> OfferStrategy:
    """``external`` when ``--externalVolumeDriver`` is set, ``normal`` otherwise."""
    return STRATEGIES[config.strategy_name]


__all__ = ["COMMON_RULES", "EXTERNAL", "NORMAL", "STRATEGIES", "OfferStrategy", "Rule", "Verdict", "strategy_for"]
