"""A dry run of offer handling: which offers would launch which node, and why the rest are declined.

Offers are judged in order, as the scheduler would judge one batch: each accepted offer places
the lowest free node id and updates the cluster view, so the next verdict sees it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from es_framework.cluster_view import ClusterView
from es_framework.config import Config
from es_framework.offers import Offer, OfferError, parse_offer
from es_framework.task_builder import build_task_info
from identity.allocator import NodeIdAllocator
from identity.naming import volume_names
from identity.task_ids import new_launch_id
from strategies import Verdict, strategy_for


@dataclass(frozen=True)
class PlanStep:
    offer_id: str
    hostname: str
    agent_id: str
    verdict: Verdict | None
    node_id: int | None = None
    volumes: tuple[str, str] | None = None
    task_info: dict[str, Any] | None = None
    #: Set when the offer itself is malformed (the scheduler declines such offers).
    error: str | None = None


def plan_offers(
    raw_offers: Iterable[object],
    config: Config,
    view: ClusterView | None = None,
    *,
    taken_ids: Iterable[int] = (),
) -> list[PlanStep]:
    """Judge ``raw_offers`` (v1 JSON) against ``view`` (empty cluster by default)."""
    view = view or ClusterView(desired_nodes=config.elasticsearch_nodes)
    allocator = NodeIdAllocator(list(taken_ids))
    strategy = strategy_for(config)
    steps: list[PlanStep] = []
    for index, raw in enumerate(raw_offers):
        try:
            offer: Offer = parse_offer(raw)
        except OfferError as exc:
            steps.append(PlanStep(f"#{index}", "?", "?", None, error=str(exc)))
            continue
        verdict = strategy.evaluate(offer, view, config)
        if not verdict.accepted:
            steps.append(PlanStep(offer.id, offer.hostname, offer.agent_id, verdict))
            continue
        node_id = allocator.allocate()
        task = build_task_info(offer, node_id, config, view, launch_id=new_launch_id())
        view = view.with_node(node_id, offer.agent_id, offer.hostname)
        steps.append(
            PlanStep(
                offer.id,
                offer.hostname,
                offer.agent_id,
                verdict,
                node_id=node_id,
                volumes=volume_names(config.framework_name, node_id) if config.external_volume_driver else None,
                task_info=task,
            )
        )
    return steps
