"""Offers with agent attributes and fault domains, and a quick way to plan cycles with them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from es_framework.config import Config
from es_framework.core.node_state import ClusterState
from es_framework.core.offers import parse_offer
from es_framework.core.plan import OfferPlan, plan_offer_cycle
from strategies import strategy_for
from tests.harness.builders import offer


def attribute(name: str, value: str | float | set[str] | tuple[tuple[int, int], ...]) -> dict[str, Any]:
    if isinstance(value, str):
        return {"name": name, "type": "TEXT", "text": {"value": value}}
    if isinstance(value, float | int):
        return {"name": name, "type": "SCALAR", "scalar": {"value": value}}
    if isinstance(value, set):
        return {"name": name, "type": "SET", "set": {"item": sorted(value)}}
    return {"name": name, "type": "RANGES", "ranges": {"range": [{"begin": b, "end": e} for b, e in value]}}


def placed_offer(
    n: int,
    *,
    attrs: dict[str, str | float | set[str] | tuple[tuple[int, int], ...]] | None = None,
    zone: str | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """``offer(n)`` from an agent with these attributes and, with ``zone``, a fault domain."""
    raw = offer(n, **kwargs)
    raw["attributes"] = [attribute(name, value) for name, value in (attrs or {}).items()]
    if zone is not None:
        raw["domain"] = {"fault_domain": {"region": {"name": "region-1"}, "zone": {"name": zone}}}
    return raw


def cycle(state: ClusterState, raws: Sequence[dict[str, Any]], cfg: Config, now: float = 0.0) -> OfferPlan:
    return plan_offer_cycle(state, [parse_offer(r) for r in raws], cfg, now=now, strategy=strategy_for(cfg))
