"""A master failover with the registry kept (development tool, not for production; the chaos runner's
``MASTER_RESTART``).

With the replicated registry (``--registry=replicated_log``) a newly elected Mesos master recovers
the admitted agents and the maintenance schedule, not frameworks, tasks or offers
(``src/master/registry.proto``; ``Master::recover`` in ``src/master/master.cpp``). The agents then
re-register with their tasks and executors (``Master::reregisterSlave``) and re-send the status
updates not yet acknowledged; frameworks re-subscribe with their framework id, known again from
the agents' tasks; the old master's offers and allocator filters are gone, and offer ids of the new
master carry its new id.

The development master does the same in its own process (:meth:`.master.DevMaster.restart`): its
HTTP server goes away, cutting every stream and call connection; for ``down_s`` nothing answers on
its address; then it serves again on the same address with a new master id. Its agents re-register
at once with their tasks (the simplification: no ``--agent_reregister_timeout`` window in which the
new master does not know an agent's tasks yet) and each task's oldest unacknowledged update is sent
again once its framework has subscribed. The framework records stay (the new master learns them from
the agents' tasks), so a SUBSCRIBE with the framework id is a re-subscription that keeps the tasks.

Every function expects the master's lock held.
"""

from __future__ import annotations

import logging

from es_framework.dev.devcluster.master_state import MasterState
from es_framework.dev.devcluster.offers import rescind_offers

logger = logging.getLogger(__name__)


def fail_over(state: MasterState, new_master_id: str, now: float) -> None:
    """What the new master knows: agents and their tasks, frameworks by id, none of them subscribed;
    no offers, inverse offers or filters."""
    for framework in state.frameworks.values():
        if framework.subscription is not None:
            framework.subscription.close()
            framework.subscription = None
        framework.disconnected_at = now
    rescind_offers(state, None, notify=False)
    state.inverse_offers.clear()
    state.inverse_offer_filters.clear()
    for agent in state.agents.values():
        agent.filters.clear()
    for task in state.tasks.values():
        if task.updates:
            task.updates[0].last_sent = None  # the re-registered agent sends it again
    state.master_id = new_master_id
    state.next_allocation = now
    logger.info("master failed over: now %s (agents and their tasks kept, frameworks to re-subscribe)", new_master_id)
