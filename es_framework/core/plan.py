"""Planning one offer cycle: which offers launch which node, and how long to refuse the others.

:func:`plan_offer_cycle` is what the scheduler runs on every OFFERS event, as a pure function:
offers are judged in order; each accepted offer takes the lowest free node id, and the node's
record is added to the returned state (to be persisted *before* the ACCEPT goes out), so the next
verdict sees it and no agent gets two nodes. Every offer's verdict is the offer strategy's, which
the caller hands in (the core defines what a strategy is and never imports one): the node id an
offer would launch, the pins and the back-off are handed to it as an
:class:`~es_framework.core.evaluation.EvaluationContext`, so ``pinned`` and ``backoff`` are rules
like the others and a verdict explains an offer completely. :func:`plan_offers` is the dry run behind
``es-framework plan``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from es_framework.config import Config
from es_framework.core.blocked_agents import BlockedAgents
from es_framework.core.bootstrap import decide_bootstrap, is_master_eligible
from es_framework.core.cluster_view import ClusterView
from es_framework.core.engine_security_switch import SWITCH_RULE, switch_gate
from es_framework.core.evaluation import EvaluationContext, OfferEvaluator, RuleOutcome, Verdict
from es_framework.core.failures import Backoff
from es_framework.core.node_state import ClusterState, NodeRecord, Pin, record_launch, record_value
from es_framework.core.offers import Offer, OfferError, agent_zone, attribute_texts, field_value, parse_offer
from es_framework.core.task_builder import build_task_info, task_ports
from es_framework.core.volume_profiles import volume_specs, volumes_are_zonal
from es_framework.core.volumes import record_volume_launch
from identity.allocator import NodeIdAllocator
from identity.naming import volume_names
from identity.task_ids import new_launch_id, task_id_for

#: Declined offers come back this soon while nodes are missing ...
SHORT_REFUSE_S = 5.0
#: ... and this late once the cluster is complete (the scheduler also suppresses offers then).
LONG_REFUSE_S = 300.0
#: The longest ``refuse_seconds`` Mesos takes: a year (it caps longer filters there).
MAX_REFUSE_S = 31536000.0
#: Launches one offer cycle may record: their records and volume sets go into one state write, which
#: must fit one ZooKeeper request (``jute.maxbuffer``, 1 MB by default) together with the cluster
#: document (see shell/state_store/zookeeper_write.py); a bigger cluster forms over a few cycles.
MAX_LAUNCHES_PER_CYCLE = 300
#: An agent that already runs as many nodes as it may is declined for this long while nodes are
#: missing: its leftover resources are of no use until one of its nodes leaves, and a leaving task
#: frees resources, which Mesos offers again despite the filter (a filter only holds back resources
#: it contains: ``RefusedOfferFilter`` in src/master/allocator/mesos/hierarchical.cpp).
AGENT_FULL_REFUSE_S = 60.0


@dataclass(frozen=True)
class Launch:
    offer: Offer
    record: NodeRecord
    task_info: dict[str, Any]
    #: Every rule passed; the outcomes say how.
    verdict: Verdict


@dataclass(frozen=True)
class DeclinedOffer:
    offer: Offer
    #: Every rule's outcome; the first failing rule is what the decline is counted under.
    verdict: Verdict
    refuse_seconds: float

    @property
    def rule(self) -> str:
        """The first failing rule (``backoff`` when the next node is waiting after failures)."""
        return self.verdict.rule or ""

    @property
    def reason(self) -> str:
        return self.verdict.reason

    @property
    def outcomes(self) -> tuple[RuleOutcome, ...]:
        return self.verdict.outcomes


@dataclass(frozen=True)
class OfferPlan:
    #: The state with a LAUNCHING record per launch: persist it, then send the ACCEPTs.
    state: ClusterState
    launches: tuple[Launch, ...]
    declines: tuple[DeclinedOffer, ...]

    @property
    def wants_offers(self) -> bool:
        """Whether nodes are still missing after these launches (else: suppress offers)."""
        return self.state.missing_nodes > 0


def plan_offer_cycle(
    state: ClusterState,
    offers: Sequence[Offer],
    config: Config,
    *,
    now: float,
    backoff: Backoff | None = None,
    new_launch_id: Callable[[], str] = new_launch_id,
    strategy: OfferEvaluator,
    agents: BlockedAgents | None = None,
) -> OfferPlan:
    state, held = switch_gate(state, now)  # a full cluster restart: none starts while one from before runs
    if held is not None:
        no = [Verdict(o.id, o.agent_id, o.hostname, False, SWITCH_RULE, held) for o in offers]
        return OfferPlan(state, (), tuple(DeclinedOffer(o, v, SHORT_REFUSE_S) for o, v in zip(offers, no, strict=True)))
    backoff = backoff or Backoff()
    agents = agents or BlockedAgents()
    allocator = state.allocator()
    if state.missing_nodes > 0:
        # Decided with the first launch of a brand-new cluster, and persisted with it.
        state = decide_bootstrap(state, config.framework_name, config.master_nodes)
    fields = tuple(dict.fromkeys(constraint.field for constraint in config.constraints))
    # A blocked agent's values are not waited for: spreading would hold nodes back for an agent that takes none.
    open_offers = [offer for offer in offers if agents.active(offer.agent_id, now) is None]
    view = _placement_view(state, open_offers, config, strategy, fields)
    zonal = _zone_bound(state, config)
    launches: list[Launch] = []
    declines: list[DeclinedOffer] = []
    surplus = 0
    for offer in _spread_order(offers, view, config, strategy):
        if len(launches) >= MAX_LAUNCHES_PER_CYCLE:
            reason = f"{MAX_LAUNCHES_PER_CYCLE} nodes launch in this offer cycle already; more in the next"
            verdict = Verdict(offer.id, offer.agent_id, offer.hostname, False, "cycle_limit", reason)
            declines.append(DeclinedOffer(offer, verdict, surplus_refuse_seconds(surplus)))
            surplus += 1
            continue
        waiting = _waiting_pins(state, allocator, now)
        bound = MappingProxyType({i: z for i, z in zonal.items() if i not in allocator})
        zone = agent_zone(offer, config.zone_attribute)
        node_id = _choose_node_id(allocator, state.desired_nodes, waiting, offer.agent_id, zone_bound=bound, zone=zone)
        context = EvaluationContext(node_id, waiting, backoff, now, zone_bound=bound, agents=agents)
        verdict = strategy.evaluate(offer, view, config, context)
        if not verdict.accepted:
            declines.append(DeclinedOffer(offer, verdict, _refuse_seconds(verdict, view, context)))
            continue
        # cluster_full passed, so an id is missing; pinned passed, so it is not kept for another agent.
        assert node_id is not None
        allocator.reserve(node_id)
        task = build_task_info(offer, node_id, config, view, launch_id=new_launch_id())
        http_port, transport_port = task_ports(task)
        record = NodeRecord(
            node_id=node_id,
            task_id=task["task_id"]["value"],
            agent_id=offer.agent_id,
            hostname=offer.hostname,
            http_port=http_port,
            transport_port=transport_port,
            volumes=volume_names(config.framework_name, node_id) if config.external_volume_driver else None,
            updated_at=now,
            zone=agent_zone(offer, config.zone_attribute),
            attributes=MappingProxyType(attribute_texts(offer)),
        )
        state = record_launch(state, record)
        if config.external_volume_driver:
            volumes = record_volume_launch(
                state.volumes,
                node_id,
                config.external_volume_driver,
                volume_specs(config, node_id),
                agent_id=offer.agent_id,
                hostname=offer.hostname,
                zone=record.zone,
                now=now,
            )
            state = replace(state, volumes=volumes)
        if node_id in state.pins:
            state = replace(state, pins=MappingProxyType({i: p for i, p in state.pins.items() if i != node_id}))
        master_eligible = is_master_eligible(node_id, config.master_nodes)
        view = view.with_node(
            node_id,
            offer.agent_id,
            offer.hostname,
            seed_host=record.transport_address if master_eligible else None,
            values={name: record_value(record, name) for name in fields},
            zone=record.zone,
        )
        launches.append(Launch(offer, record, task, verdict))
    order = {offer.id: index for index, offer in enumerate(offers)}
    declines.sort(key=lambda d: order[d.offer.id])
    return OfferPlan(state, tuple(launches), tuple(declines))


def _placement_view(
    state: ClusterState, offers: Sequence[Offer], config: Config, strategy: OfferEvaluator, fields: tuple[str, ...]
) -> ClusterView:
    """The view with nodes counted per value of each constraint field and per zone (once per cycle),
    knowing the values and zones of this cycle's offers that could host a node."""
    view = state.view(config.master_nodes, fields=fields)
    hosting = [offer for offer in offers if strategy.can_host(offer, config)]
    return view.with_offered(
        {name: [field_value(offer, name) for offer in hosting] for name in fields},
        [agent_zone(offer, config.zone_attribute) for offer in hosting],
    )


def _spread_order(offers: Sequence[Offer], view: ClusterView, config: Config, strategy: OfferEvaluator) -> list[Offer]:
    """The offers in the order that spreads nodes evenly in one pass: interleaved over the values of
    the spreading field (the zone when zones are known, else the first ``GROUP_BY`` constraint's
    field), the values with fewer nodes first; otherwise as they came. Offers are judged one by one,
    so without this a cycle whose first offers all come from one zone would decline all but one of
    them and wait for the next cycle."""
    value_of: Callable[[Offer], str | None]
    if view.zones.known:
        counts = view.zones

        def value_of(offer: Offer) -> str | None:
            return agent_zone(offer, config.zone_attribute)
    else:
        spread = next((c.field for c in config.constraints if c.operator == "GROUP_BY"), None)
        if spread is None:
            return list(offers)
        counts = view.placement[spread]

        def value_of(offer: Offer) -> str | None:
            return field_value(offer, spread)

    seen: dict[str, int] = {}
    keyed: list[tuple[float, int, Offer]] = []
    for index, offer in enumerate(offers):
        value = value_of(offer)
        # An offer that could never host a node (too small, a constraint on its own attributes) must
        # not take a value's turn from one that can.
        if value is None or not strategy.can_host(offer, config):
            keyed.append((math.inf, index, offer))
            continue
        keyed.append((counts.count(value) + seen.get(value, 0), index, offer))
        seen[value] = seen.get(value, 0) + 1
    return [offer for _, _, offer in sorted(keyed, key=lambda k: (k[0], k[1]))]


def _zone_bound(state: ClusterState, config: Config) -> Mapping[int, str]:
    """Node ids without a task whose external volumes can only be attached in the zone they were last
    attached in (the driver's volumes are zonal): node id -> that zone."""
    if not config.external_volume_driver or not volumes_are_zonal(config):
        return MappingProxyType({})
    return MappingProxyType(
        {
            node_id: entry.last_zone
            for node_id, entry in state.volumes.items()
            if entry.last_zone and entry.removed_at is None and node_id not in state.nodes
        }
    )


def _waiting_pins(state: ClusterState, allocator: NodeIdAllocator, now: float) -> Mapping[int, Pin]:
    """Pins still in force of node ids not reserved yet: those ids wait for their own agent."""
    return MappingProxyType({i: p for i, p in state.pins.items() if p.until > now and i not in allocator})


def _choose_node_id(
    allocator: NodeIdAllocator,
    desired_nodes: int,
    waiting: Mapping[int, Pin],
    agent_id: str,
    *,
    zone_bound: Mapping[int, str] | None = None,
    zone: str | None = None,
) -> int | None:
    """The node id an offer from ``agent_id`` (in ``zone``) would launch: this agent's pinned node (a
    restart in place) first, then the lowest id whose zonal volumes are in this zone, else the lowest
    free id that is neither pinned to another agent nor bound to another zone; None if no missing id
    is left for this agent."""
    zone_bound = zone_bound or {}
    for node_id, pin in sorted(waiting.items()):
        if pin.agent_id == agent_id and node_id <= desired_nodes:
            return node_id
    here = [i for i, z in zone_bound.items() if z == zone and i <= desired_nodes and i not in waiting]
    if here:
        return min(here)
    skipped: list[int] = []
    candidate = allocator.lowest_free
    while candidate in waiting or candidate in zone_bound:
        allocator.reserve(candidate)
        skipped.append(candidate)
        candidate = allocator.lowest_free
    for node_id in skipped:
        allocator.release(node_id)
    return candidate if candidate <= desired_nodes else None


def surplus_refuse_seconds(position: int) -> float:
    """How long to refuse the ``position``-th (0 first) good offer beyond this cycle's launch limit:
    the surplus comes back in batches of :data:`MAX_LAUNCHES_PER_CYCLE`, one batch per
    :data:`SHORT_REFUSE_S`, so a cluster of 10,000 forming over 34 cycles meets a few hundred offers
    per cycle instead of all 10,000 every time (each parsed, evaluated and declined: the scheduler's
    memory peak, which its process keeps). Capped at :data:`LONG_REFUSE_S`."""
    return min(SHORT_REFUSE_S * (1 + position // MAX_LAUNCHES_PER_CYCLE), LONG_REFUSE_S)


def _refuse_seconds(verdict: Verdict, view: ClusterView, context: EvaluationContext) -> float:
    """How long Mesos should keep this agent's resources from us: until the node waiting after
    failures may launch again, or until the agent's block ends; long once the cluster is complete; short
    while nodes are missing."""
    block = context.agents.active(verdict.agent_id, context.now) if verdict.rule == "agent_check" else None
    if block is not None:
        return max(SHORT_REFUSE_S, min(block.until - context.now, MAX_REFUSE_S))
    if verdict.rule == "backoff" and context.node_id is not None:
        wait = context.backoff.wait(context.node_id, context.now)
        return max(SHORT_REFUSE_S, min(wait, LONG_REFUSE_S))
    if view.missing_nodes == 0:
        return LONG_REFUSE_S
    return AGENT_FULL_REFUSE_S if verdict.rule == "agent_has_node" else SHORT_REFUSE_S


# --- the dry run ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanStep:
    offer_id: str
    hostname: str
    agent_id: str
    accepted: bool
    rule: str | None
    reason: str
    node_id: int | None = None
    volumes: tuple[str, str] | None = None
    task_info: dict[str, Any] | None = None
    #: Every rule's outcome in order (none for a malformed offer, which no rule could judge).
    outcomes: tuple[RuleOutcome, ...] = ()


def plan_offers(
    raw_offers: Iterable[object],
    config: Config,
    *,
    taken_ids: Iterable[int] = (),
    strategy: OfferEvaluator,
) -> list[PlanStep]:
    """Judge ``raw_offers`` (v1 JSON) for a cluster whose only nodes hold ``taken_ids``.

    A malformed offer gets a step with rule ``malformed`` (the scheduler declines those too).
    """
    placeholder = ClusterState(desired_nodes=config.elasticsearch_nodes)
    for node_id in taken_ids:
        placeholder = record_launch(placeholder, _placeholder(config, node_id))
    steps: list[PlanStep | Offer] = []
    for index, raw in enumerate(raw_offers):
        try:
            steps.append(parse_offer(raw))
        except OfferError as exc:
            steps.append(PlanStep(f"#{index}", "?", "?", False, "malformed", str(exc)))
    offers = [s for s in steps if isinstance(s, Offer)]
    plan = plan_offer_cycle(placeholder, offers, config, now=0.0, strategy=strategy)
    by_offer: dict[str, PlanStep] = {}
    for launch in plan.launches:
        by_offer[launch.offer.id] = PlanStep(
            launch.offer.id,
            launch.offer.hostname,
            launch.offer.agent_id,
            True,
            None,
            "every rule passed",
            node_id=launch.record.node_id,
            volumes=launch.record.volumes,
            task_info=launch.task_info,
            outcomes=launch.verdict.outcomes,
        )
    for decline in plan.declines:
        by_offer[decline.offer.id] = PlanStep(
            decline.offer.id,
            decline.offer.hostname,
            decline.offer.agent_id,
            False,
            decline.rule,
            decline.reason,
            outcomes=decline.outcomes,
        )
    return [by_offer[s.id] if isinstance(s, Offer) else s for s in steps]


def _placeholder(config: Config, node_id: int) -> NodeRecord:
    # Ids the operator says are taken, on no agent this plan knows.
    return NodeRecord(
        node_id=node_id,
        task_id=task_id_for(config.framework_name, node_id, "0" * 32),
        agent_id=f"(taken-{node_id})",
        hostname="",
        http_port=0,
        transport_port=0,
    )
