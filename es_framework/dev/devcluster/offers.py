"""Offer allocation of the development master (development tool, not for production).

Like a Mesos 1.12 master with its default allocator: one offer per agent per allocation round with
the agent's free resources that the framework's role may use (unreserved, or reserved to the role
or an ancestor), the deprecated ``role`` field on each resource, ``allocation_info`` only for
``MULTI_ROLE`` frameworks (as Mesos strips it for the others), no offers of GPU agents to
frameworks without ``GPU_RESOURCES``, and no offer below Mesos' minimum allocatable resources.
Unused resources of an ACCEPT and declined ones are filtered for ``refuse_seconds`` (default 5 s)
as long as the agent offers no more than them; REVIVE clears filters and un-suppresses. The chaos
runner can make a round's offers rescinded at once, or mix malformed ones in (:mod:`.faults`).

Every function expects the master's lock held.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from es_framework.dev.devcluster.agent import AgentState, AgentStatus, OfferFilter, OutstandingOffer
from es_framework.dev.devcluster.calls import value
from es_framework.dev.devcluster.faults import switches
from es_framework.dev.devcluster.frameworks import Framework
from es_framework.dev.devcluster.maintenance import machine_of
from es_framework.dev.devcluster.master_state import MasterState
from es_framework.dev.devcluster.resource_bags import ResourceBag

logger = logging.getLogger(__name__)

#: Mesos caps refuse_seconds at a year.
MAX_REFUSE_SECONDS = 31536000.0
#: Mesos' minimum allocatable resources: an offer needs at least this much cpus or mem.
MIN_CPUS = 0.01
MIN_MEM = 32.0


def role_may_use(reservation_role: str, role: str) -> bool:
    """Unreserved resources, or reserved to ``role`` or one of its ancestors."""
    return reservation_role in ("*", role) or role.startswith(reservation_role + "/")


def _offerable(framework: Framework, agent: AgentState) -> ResourceBag:
    role = framework.role
    return agent.free.filter(lambda key: role_may_use(key.reservation_role, role))


def allocate(state: MasterState, now: float) -> None:
    """One allocation round: offer every connected, unsuppressed framework what it may use."""
    frameworks = [f for f in state.frameworks.values() if f.connected and not f.suppressed]
    if not frameworks:
        return
    batches: dict[str, list[dict[str, Any]]] = {}
    for agent in state.agents.values():
        if not agent.reachable:
            continue
        for framework in frameworks:
            if agent.spec.gpus and "GPU_RESOURCES" not in framework.capabilities:
                continue
            offerable = _offerable(framework, agent)
            if offerable.scalar("cpus") < MIN_CPUS and offerable.scalar("mem") < MIN_MEM:
                continue
            if agent.filtered(framework.id, offerable, now):
                continue
            offer = OutstandingOffer(
                id=f"{state.master_id}-O{next(state.offer_seq)}",
                framework_id=framework.id,
                agent_id=agent.id,
                resources=offerable,
                allocation_role=framework.role,
            )
            agent.free = agent.free - offerable
            state.offers[offer.id] = offer
            batches.setdefault(framework.id, []).append(_offer_json(state, framework, agent, offer))
    faults = switches(state)
    for framework_id, offers in batches.items():
        framework = state.frameworks[framework_id]
        sent = [str(o["id"]["value"]) for o in offers]
        faults.bad_offers(framework, offers, state.master_id, now)  # off unless the chaos runner turned it on
        logger.debug("offering %d offer(s) to framework %s", len(offers), framework_id)
        state.send(framework, {"type": "OFFERS", "offers": {"offers": offers}})
        for offer_id in sent:
            if faults.rescind_now(now):
                rescind_offer(state, offer_id)


def _offer_json(state: MasterState, framework: Framework, agent: AgentState, offer: OutstandingOffer) -> dict[str, Any]:
    spec = agent.spec
    out: dict[str, Any] = {
        "id": {"value": offer.id},
        "framework_id": {"value": framework.id},
        "agent_id": {"value": spec.id},
        "hostname": spec.hostname,
        "url": spec.url_json(),
    }
    domain = spec.domain_json()
    if domain is not None:
        out["domain"] = domain
    out["resources"] = offer.resources.to_json(offer.allocation_role if framework.multi_role else None)
    out["attributes"] = spec.attributes_json()
    # A machine scheduled for maintenance: its window is the offer's last field (recorded, §2.2).
    unavailability = state.maintenance.unavailability(machine_of(spec))
    if unavailability is not None:
        out["unavailability"] = unavailability.to_json()
    return out


def return_offer(state: MasterState, offer: OutstandingOffer) -> None:
    """The offer's resources go back to its agent (unless the agent is gone)."""
    state.offers.pop(offer.id, None)
    give_back(state, offer.agent_id, offer.resources)


def give_back(state: MasterState, agent_id: str, resources: ResourceBag) -> None:
    """Resources an offer or a task held are free again on their agent (nothing comes back to a gone
    one, nor to one down for maintenance: it comes back empty of tasks, with all its resources)."""
    agent = state.agents.get(agent_id)
    if agent is not None and agent.status not in (AgentStatus.GONE, AgentStatus.DOWN):
        agent.free = agent.free + resources


def rescind_offers(
    state: MasterState, framework: Framework | None, *, notify: bool, agent_id: str | None = None
) -> None:
    """Take back the outstanding offers of ``framework`` (None: all) on ``agent_id`` (None: all)."""
    for offer in list(state.offers.values()):
        if (framework is None or offer.framework_id == framework.id) and (
            agent_id is None or offer.agent_id == agent_id
        ):
            return_offer(state, offer)
            owner = state.frameworks.get(offer.framework_id)
            if notify and owner is not None:
                state.send(owner, {"type": "RESCIND", "rescind": {"offer_id": {"value": offer.id}}})


def rescind_offer(state: MasterState, offer_id: str) -> bool:
    """Take back one outstanding offer, telling its framework (``RESCIND``); ``False`` if it is not outstanding."""
    offer = state.offers.get(offer_id)
    if offer is None:
        return False
    return_offer(state, offer)
    owner = state.frameworks.get(offer.framework_id)
    if owner is not None:
        state.send(owner, {"type": "RESCIND", "rescind": {"offer_id": {"value": offer.id}}})
    switches(state).counts["rescinded"] += 1
    return True


def refuse_seconds(state: MasterState, filters: object) -> float:
    """``Filters.refuse_seconds`` as Mesos reads it: the default when missing or negative, at most a year."""
    seconds = filters.get("refuse_seconds") if isinstance(filters, dict) else None
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        return state.options.default_refuse_seconds
    return min(float(seconds), MAX_REFUSE_SECONDS)


def add_filter(framework: Framework, agent: AgentState, resources: ResourceBag, seconds: float) -> None:
    if seconds > 0 and resources:
        expires = time.monotonic() + seconds
        agent.filters.setdefault(framework.id, []).append(OfferFilter(expires, resources))


def take_offers(
    state: MasterState, framework: Framework, offer_ids: object, *, declining: bool = False
) -> tuple[list[OutstandingOffer], str | None]:
    """Remove the offers from the outstanding ones (for an ACCEPT, or a DECLINE when ``declining``);
    the second item is why they are invalid."""
    switches(state).answered(offer_ids, accepted=not declining)
    ids = [value(o) for o in offer_ids] if isinstance(offer_ids, list) else []
    taken: list[OutstandingOffer] = []
    error: str | None = None if ids else "No offers specified"
    seen: set[str] = set()
    for offer_id in ids:
        if offer_id is None:
            error = error or "Offer id is missing"
            continue
        if offer_id in seen:
            error = error or f"Duplicate offer {offer_id} in offer list"
            continue
        seen.add(offer_id)
        offer = state.offers.get(offer_id)
        if offer is None or offer.framework_id != framework.id:
            error = error or f"Offer {offer_id} is no longer valid"
            continue
        del state.offers[offer_id]
        if taken and offer.agent_id != taken[0].agent_id:
            error = error or (
                f"Aggregated offers must belong to one single agent. Offer {offer_id} uses agent "
                f"{offer.agent_id} and offer {taken[0].id} uses agent {taken[0].agent_id}"
            )
        taken.append(offer)
    return taken, error


def decline(state: MasterState, framework: Framework, body: dict[str, Any]) -> None:
    """DECLINE: the offers' resources go back, filtered for the framework for ``refuse_seconds``."""
    offers, _ = take_offers(state, framework, body.get("offer_ids", []), declining=True)
    seconds = refuse_seconds(state, body.get("filters"))
    for offer in offers:
        return_offer(state, offer)
        agent = state.agents.get(offer.agent_id)
        if agent is not None:
            add_filter(framework, agent, offer.resources, seconds)


def revive(state: MasterState, framework: Framework, now: float) -> None:
    """REVIVE: no more filters or suppression, and an allocation round at once."""
    framework.suppressed = False
    for agent in state.agents.values():
        agent.filters.pop(framework.id, None)
    state.next_allocation = now
