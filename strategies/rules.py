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


def cluster_full(c: Candidate) -> Finding:
    view = c.view
    if view.present_nodes >= view.desired_nodes:
        return failed(f"cluster size fulfilled: {view.present_nodes} of {view.desired_nodes} nodes present")
    return passed(f"{view.missing_nodes} of {view.desired_nodes} nodes missing")


def agent_has_node(c: Candidate) -> Finding:
    node = c.view.nodes_by_agent.get(c.offer.agent_id)
    if node is None:
        node = c.view.nodes_by_hostname.get(c.offer.hostname)
    if node is not None:
        return failed(f"this agent already runs node {node} of cluster {c.config.cluster_name} (one node per agent)")
    return passed(f"no node of cluster {c.config.cluster_name} on this agent or host")


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
COMMON_RULES: tuple[Rule, ...] = (
    Rule("cluster_full", cluster_full),
    Rule("agent_has_node", agent_has_node),
    Rule("gpu_agent", gpu_agent),
    Rule("cpus", enough_cpus),
    Rule("mem", enough_mem),
    Rule("ports", enough_ports),
)
#: What every strategy checks last, about the node id the offer would launch.
NODE_ID_RULES: tuple[Rule, ...] = (
    Rule("pinned", pinned),
    Rule("backoff", backoff),
)
DISK_RULE = Rule("disk", enough_disk)
