"""The rules an offer is judged by, in the order they are reported.

Each is O(1) in the cluster's size: dictionary lookups in the :class:`ClusterView`, arithmetic on
the offer, and the node id the offer cycle already chose (:class:`EvaluationContext`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from es_framework.config import Config
from es_framework.core.failures import HINTS
from es_framework.core.resources import Available, PortsUnavailableError, choose_ports, format_milli
from strategies.base import Candidate, Finding, Rule, failed, passed
from strategies.constraints import CONSTRAINTS_RULE, VOLUME_ZONE_RULE, ZONE_SPREAD_RULE


def cluster_full(c: Candidate) -> Finding:
    view = c.view
    if view.present_nodes >= view.desired_nodes:
        return failed(f"cluster size fulfilled: {view.present_nodes} of {view.desired_nodes} nodes present")
    return passed(f"{view.missing_nodes} of {view.desired_nodes} nodes missing")


def agent_check(c: Candidate) -> Finding:
    """The agent has not failed an agent check lately (:mod:`es_framework.core.blocked_agents`): a
    blocked agent gets no node, whichever node would launch, until its block ends."""
    block = c.context.agents.active(c.offer.agent_id, c.context.now)
    if block is None:
        return passed("this agent has not failed an agent check lately")
    return failed(block.sentence())


def _agents_blocked(c: Candidate) -> bool:
    return bool(c.context.agents.blocks)


def nodes_per_agent(config: Config) -> int:
    """How many nodes of this cluster one agent may run: ``--maxNodesPerAgent`` with external volumes;
    one with local disk, where nodes on one agent would share the data directory
    (:func:`es_framework.core.task_builder.local_data_dir`)."""
    return config.max_nodes_per_agent if config.external_volume_driver else 1


def agent_has_node(c: Candidate) -> Finding:
    """The agent (by agent id or by hostname: an agent that re-registers with a new id is the same
    host) runs fewer nodes of this cluster than one agent may (:func:`nodes_per_agent`)."""
    nodes = c.view.nodes_on(c.offer.agent_id, c.offer.hostname)
    limit = nodes_per_agent(c.config)
    cluster = c.config.cluster_name
    if not nodes:
        return passed(f"no node of cluster {cluster} on this agent or host")
    listed = f"node {nodes[0]}" if len(nodes) == 1 else f"nodes {', '.join(map(str, nodes))}"
    if limit == 1:
        return failed(f"this agent already runs {listed} of cluster {cluster} (one node per agent)")
    if len(nodes) >= limit:
        return failed(f"this agent already runs {listed} of cluster {cluster} (at most {limit}, --maxNodesPerAgent)")
    return passed(f"this agent runs {listed} of cluster {cluster}, fewer than {limit} (--maxNodesPerAgent)")


def gpu_agent(c: Candidate) -> Finding:
    gpus = c.available.gpus_milli
    if gpus > 0 and not c.config.allow_gpu_agents:
        return failed(f"agent offers {format_milli(gpus)} GPUs; GPU agents are kept for GPU work (--allowGpuAgents)")
    if gpus > 0:
        return passed(f"agent offers {format_milli(gpus)} GPUs; allowed by --allowGpuAgents")
    return passed("agent offers no GPUs")


@dataclass(frozen=True)
class Enough:
    """The one shape of ``cpus``, ``mem`` and ``disk``: the offer has at least what a node needs."""

    resource: str
    #: Shown after each amount (" MB"), or nothing.
    unit: str
    needed: Callable[[Config], float]
    offered_milli: Callable[[Available], int]

    def __call__(self, c: Candidate) -> Finding:
        need = round(self.needed(c.config) * 1000)
        have = self.offered_milli(c.available)
        amounts = f"{format_milli(have)}{self.unit} offered, {format_milli(need)}{self.unit} needed"
        if have < need:
            return failed(f"not enough {self.resource}: {amounts}")
        return passed(f"enough {self.resource}: {amounts}")


enough_cpus = Enough("cpus", "", lambda config: config.cpus, lambda res: res.cpus_milli)
enough_mem = Enough("mem", " MB", lambda config: config.mem_mb, lambda res: res.mem_milli)
enough_disk = Enough("disk", " MB", lambda config: config.disk_mb, lambda res: res.disk_milli)


def enough_ports(c: Candidate) -> Finding:
    try:
        http, transport = choose_ports(c.available.ports, c.config.ports)
    except PortsUnavailableError as exc:
        return failed(f"not enough ports: {exc}")
    return passed(f"HTTP port {http} and transport port {transport} are offered")


def pinned(c: Candidate) -> Finding:
    """A missing node id kept for a restart in place on another agent is not given to this one."""
    ctx = c.context
    if ctx.node_id is not None:
        if ctx.node_id in ctx.waiting_pins:
            return passed(f"node {ctx.node_id} restarts in place on this agent")
        return passed(f"node {ctx.node_id} would launch here")
    if not any(node_id <= c.view.desired_nodes for node_id in ctx.waiting_pins):
        if c.view.present_nodes < c.view.desired_nodes and not ctx.zone_bound:  # volume_zone explains those
            # A node is missing, yet no id is free for it: a removal task may be removing that id's
            # volumes right now (core/volume_tasks.py); it launches once the removal has ended.
            return failed("every missing node id is held: its volumes are being removed")
        # No id at all is missing (the cluster_full rule says so): nothing is held back by a pin.
        return passed("no missing node is pinned to another agent")
    return failed(
        "; ".join(
            f"node {i} restarts in place on agent {pin.agent_id} (until {pin.until:.0f})"
            for i, pin in sorted(ctx.waiting_pins.items())
        )
    )


def backoff(c: Candidate) -> Finding:
    """The node id that would launch here is not waiting after failures."""
    ctx = c.context
    if ctx.node_id is None:
        return passed("no node id to launch, so none to hold back")
    wait = ctx.backoff.wait(ctx.node_id, ctx.now)
    failures = ctx.backoff.failures.get(ctx.node_id)
    if failures is None:
        return passed(f"node {ctx.node_id} has not failed lately")
    tried = f"node {ctx.node_id} failed {failures.count} time(s) in a row ({failures.kind}: {HINTS[failures.kind]})"
    if wait > 0:
        return failed(f"{tried}; next launch in {wait:.0f}s")
    return passed(f"{tried}; its back-off is over")


#: What every strategy checks first, about the cluster and the agent.
CLUSTER_RULES: tuple[Rule, ...] = (
    Rule("cluster_full", cluster_full),
    # Reported only while an agent is blocked: a verdict lists what can decide.
    Rule("agent_check", agent_check, applies=_agents_blocked),
    Rule("agent_has_node", agent_has_node),
)
#: Where nodes go: the operator's constraints and the spread over zones (each reported only where it
#: applies: constraints given, zones known).
PLACEMENT_RULES: tuple[Rule, ...] = (CONSTRAINTS_RULE, ZONE_SPREAD_RULE)
#: What the agent offers.
RESOURCE_RULES: tuple[Rule, ...] = (
    Rule("gpu_agent", gpu_agent, offer_only=gpu_agent),
    Rule("cpus", enough_cpus, offer_only=enough_cpus),
    Rule("mem", enough_mem, offer_only=enough_mem),
    Rule("ports", enough_ports, offer_only=enough_ports),
)
COMMON_RULES: tuple[Rule, ...] = (*CLUSTER_RULES, *PLACEMENT_RULES, *RESOURCE_RULES)
#: What every strategy checks last, about the node id the offer would launch.
NODE_ID_RULES: tuple[Rule, ...] = (
    Rule("pinned", pinned),
    VOLUME_ZONE_RULE,
    Rule("backoff", backoff),
)
DISK_RULE = Rule("disk", enough_disk, offer_only=enough_disk)
