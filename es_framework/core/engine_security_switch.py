"""Switching a cluster from ``--elasticsearchSecurity off`` to ``auto`` with a full cluster restart
(pure): stop all, launch none while a node from before lives, then launch all with TLS.

Transport TLS cannot be rolled in (:mod:`es_framework.core.security_switch` says why), so the switch
is the operator's explicit request (``--elasticsearchSecurity auto --elasticsearchSecuritySwitch
fullRestart``, decided by :func:`es_framework.core.security_mode.decide_security_mode`), in three
steps:

1. **Stop all** (:func:`start_switch`, written by
   :func:`es_framework.core.engine_security.settle_security_mode` at leadership, before the scheduler
   registers): one fenced write records ``security_mode: auto``, the switch (when, which node ids held
   a task) and every record ``stopping`` (:data:`~es_framework.core.security_switch.SWITCH_STOPPING`),
   each running node with local data pinned to its agent as a restart in place pins it
   (:mod:`es_framework.core.operations`). The kills follow the write: the engine re-sends a kill for
   every live task being stopped on purpose after each registration
   (``OperatorCommands.pending_kills``), and a task that was not live then (still LAUNCHING, or
   UNREACHABLE) is killed when it reports itself live (:func:`switch_kills`). An intended stop is no
   failure: no back-off.
2. **Gate** (:func:`switch_gate`, run first in every offer cycle by
   :func:`es_framework.core.plan.plan_offer_cycle`): while any of those ids still holds a record —
   running, being killed, or UNREACHABLE (an unreachable task may still run; it holds the switch
   until the operator marks its agent gone or it comes back and is killed) — every offer is declined
   under the rule ``security_switch``, shown with the other waiting reasons.
3. **Launch all**: once none of them holds a record, the entry is cleared (in the state of the cycle
   that launches, so in its write) and the pins renewed from then; ordinary launches bring every id
   back, with the CA's certificates (the engine now runs ``auto``). The cluster uuid is recorded, so
   nothing bootstraps again: the nodes re-form the same cluster from their data.
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from es_framework.core.mesos_calls import Kill
from es_framework.core.node_state import LIVE_STATES, ClusterState, NodeRecord, Pin
from es_framework.core.operations import PIN_SECONDS
from es_framework.core.security_switch import SWITCH_RULE, SWITCH_STOPPING, SecuritySwitch
from es_framework.core.status_updates import StatusUpdate

__all__ = ["SWITCH_RULE", "holding_ids", "start_switch", "switch_gate", "switch_kills"]


def start_switch(state: ClusterState, now: float) -> ClusterState:
    """``state`` switched to ``auto``: the switch recorded over every id that holds a record, each
    record stopping (one already stopped on purpose keeps its reason), each running one with local data
    pinned to its agent."""
    nodes = dict(state.nodes)
    pins = dict(state.pins)
    for node_id, record in state.nodes.items():
        if record.stopping is None:
            nodes[node_id] = replace(record, stopping=SWITCH_STOPPING)
        # A running node with local data comes back on its agent, where the data is (a restart's pin is kept;
        # external volumes attach anywhere, and an unreachable node's agent may never come back).
        if (
            record.stopping is None
            and record.state in LIVE_STATES
            and record.volumes is None
            and node_id <= state.desired_nodes
        ):
            pins[node_id] = Pin(record.agent_id, now + PIN_SECONDS)
    return replace(
        state,
        nodes=MappingProxyType(nodes),
        pins=MappingProxyType(pins),
        security_mode="auto",
        security_switch=SecuritySwitch(now, tuple(sorted(state.nodes))),
    )


def holding_ids(state: ClusterState) -> tuple[int, ...]:
    """The ids from before the switch that still hold a record (none when no switch is under way).
    No node is launched during the switch, so a record of such an id is still the old task's (or an
    old task adopted back, which must end too)."""
    switch = state.security_switch
    if switch is None:
        return ()
    return tuple(i for i in switch.node_ids if i in state.nodes)


def switch_gate(state: ClusterState, now: float) -> tuple[ClusterState, str | None]:
    """The offer cycle's gate: ``(state, reason)`` to decline every offer with while nodes from before
    the switch live; else ``(state, None)``, with a finished switch's entry cleared and its pins
    renewed from ``now`` (the stops may have taken longer than a pin lasts)."""
    holding = holding_ids(state)
    if holding:
        shown = ", ".join(map(str, holding[:10])) + (f" and {len(holding) - 10} more" if len(holding) > 10 else "")
        return state, (
            "switching security off to auto with a full cluster restart: no node starts while a node from before "
            f"the switch may still run (node(s) {shown}; an unreachable one until its agent is marked gone)"
        )
    switch = state.security_switch
    if switch is None:
        return state, None
    pins = {
        i: (Pin(p.agent_id, now + PIN_SECONDS) if i in switch.node_ids and p.until >= switch.started_at else p)
        for i, p in state.pins.items()
    }
    return replace(state, security_switch=None, pins=MappingProxyType(pins)), None


def switch_kills(holder: NodeRecord | None, update: StatusUpdate) -> list[Kill]:
    """The kill for a task the switch stops that reports itself live while its record said it was not
    (a launch not yet seen, an agent back from UNREACHABLE): the kills at registration
    (``pending_kills``) missed it. A live task's repeated updates are not killed again."""
    if (
        holder is None
        or holder.stopping != SWITCH_STOPPING
        or update.state not in LIVE_STATES
        or holder.state in LIVE_STATES
        or update.agent_id is None
    ):
        return []
    return [Kill(update.task_id, update.agent_id)]
