"""Framework subscriptions and their event streams (development tool, not for production).

Like a Mesos 1.12 master: SUBSCRIBE opens a RecordIO event stream (SUBSCRIBED, then HEARTBEAT at
once and every ``heartbeat_interval``); re-subscribing with a known framework id within its
``failover_timeout`` keeps its tasks, and the old stream gets ERROR "Framework failed over" and is
closed. A framework whose stream has been gone longer than ``failover_timeout`` is removed and its
tasks killed; TEARDOWN does the same at once. A removed framework id is refused with ERROR
"Framework has been removed".

Every function expects the master's lock held.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from es_framework.dev.devcluster.calls import value
from es_framework.dev.devcluster.frameworks import Framework, Subscription
from es_framework.dev.devcluster.master_state import MasterState
from es_framework.dev.devcluster.offers import rescind_offers
from es_framework.dev.devcluster.status_updates import forget, resume_updates

logger = logging.getLogger(__name__)


def subscribe(state: MasterState, call: dict[str, Any], master_info: dict[str, Any], now: float) -> Subscription:
    """A validated SUBSCRIBE; the caller streams the subscription's records."""
    info = copy.deepcopy(call["subscribe"]["framework_info"])
    requested_id = value(info.get("id")) or value(call.get("framework_id"))
    if requested_id is not None and requested_id in state.removed_frameworks:
        sub = Subscription(requested_id)
        sub.send({"type": "ERROR", "error": {"message": "Framework has been removed"}})
        sub.close()
        return sub
    framework_id = requested_id or f"{state.master_id}-{next(state.framework_seq):04d}"
    info["id"] = {"value": framework_id}
    sub = Subscription(framework_id)
    framework = state.frameworks.get(framework_id)
    if framework is None:
        framework = Framework(id=framework_id, info=info)
        state.frameworks[framework_id] = framework
        logger.info("framework %s (%s) subscribed", framework_id, info.get("name"))
    else:
        old = framework.subscription
        if old is not None:
            state.send(framework, {"type": "ERROR", "error": {"message": "Framework failed over"}})
            old.close()
        rescind_offers(state, framework, notify=False)
        framework.info = info
        logger.info("framework %s (%s) re-subscribed", framework_id, info.get("name"))
    framework.subscription = sub
    framework.disconnected_at = None
    framework.suppressed = bool(call["subscribe"].get("suppressed_roles"))
    resume_updates(state, framework_id)
    state.send(
        framework,
        {
            "type": "SUBSCRIBED",
            "subscribed": {
                "framework_id": {"value": framework_id},
                "heartbeat_interval_seconds": float(state.options.heartbeat_interval),
                "master_info": master_info,
            },
        },
    )
    sub.last_heartbeat = now
    state.send(framework, {"type": "HEARTBEAT"})
    return sub


def stream_closed(state: MasterState, sub: Subscription, now: float) -> None:
    """The HTTP connection of a subscription is gone: the failover timeout starts."""
    sub.closed = True
    framework = state.frameworks.get(sub.framework_id)
    if framework is None or framework.subscription is not sub:
        return
    framework.subscription = None
    framework.disconnected_at = now
    rescind_offers(state, framework, notify=False)
    logger.info("framework %s disconnected; failover timeout %ss", framework.id, f"{framework.failover_timeout:g}")


def remove_framework(state: MasterState, framework: Framework) -> None:
    """TEARDOWN, or the failover timeout expired: its tasks are killed and its id is refused from now on."""
    for task in [t for t in state.tasks.values() if t.framework_id == framework.id]:
        logger.info("framework %s removed: killing task %s", framework.id, task.task_id)
        forget(state, task)
    rescind_offers(state, framework, notify=False)
    for agent in state.agents.values():
        agent.filters.pop(framework.id, None)
    if framework.subscription is not None:
        framework.subscription.close()
        framework.subscription = None
    state.frameworks.pop(framework.id, None)
    state.removed_frameworks.add(framework.id)


def heartbeats_and_failovers(state: MasterState, now: float) -> None:
    """Heartbeats that are due, and removal of frameworks whose failover timeout expired."""
    for framework in list(state.frameworks.values()):
        sub = framework.subscription
        if sub is not None and now - sub.last_heartbeat >= state.options.heartbeat_interval:
            sub.last_heartbeat = now
            state.send(framework, {"type": "HEARTBEAT"})
        if (
            sub is None
            and framework.disconnected_at is not None
            and now - framework.disconnected_at >= framework.failover_timeout
        ):
            logger.info("framework %s failover timeout expired: removing it", framework.id)
            remove_framework(state, framework)
