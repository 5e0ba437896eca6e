"""The common offer strategy: an ordered list of named rules, the first failing one declines.

A rule is a pure predicate over (offer, its usable resources, cluster view, configuration) that
returns None to pass or a human-readable reason to decline. No rule does network I/O or scans the
cluster's tasks, so a verdict costs the same whatever the cluster's size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from es_framework.config import Config
from es_framework.core.cluster_view import ClusterView
from es_framework.core.offers import Offer
from es_framework.core.resources import Available, PortsUnavailableError, available, choose_ports, format_milli

Check = Callable[[Offer, Available, ClusterView, Config], str | None]


@dataclass(frozen=True)
class Rule:
    #: A short, stable name: the key under which declines are counted.
    name: str
    check: Check


@dataclass(frozen=True)
class Verdict:
    offer_id: str
    agent_id: str
    hostname: str
    accepted: bool
    #: The rule that declined the offer; None when accepted.
    rule: str | None
    reason: str

    def __str__(self) -> str:
        verb = "accept" if self.accepted else f"decline ({self.rule})"
        return f"offer {self.offer_id} from {self.hostname} [{self.agent_id}]: {verb}: {self.reason}"


def _needed_milli(value: float) -> int:
    return round(value * 1000)


def cluster_full(offer: Offer, res: Available, view: ClusterView, config: Config) -> str | None:
    if view.present_nodes >= view.desired_nodes:
        return f"cluster size fulfilled: {view.present_nodes} of {view.desired_nodes} nodes present"
    return None


def agent_has_node(offer: Offer, res: Available, view: ClusterView, config: Config) -> str | None:
    node = view.nodes_by_agent.get(offer.agent_id)
    if node is None:
        node = view.nodes_by_hostname.get(offer.hostname)
    if node is not None:
        return f"this agent already runs node {node} of cluster {config.cluster_name} (one node per agent)"
    return None


def gpu_agent(offer: Offer, res: Available, view: ClusterView, config: Config) -> str | None:
    if res.gpus_milli > 0 and not config.allow_gpu_agents:
        return f"agent offers {format_milli(res.gpus_milli)} GPUs; GPU agents are kept for GPU work (--allowGpuAgents)"
    return None


def enough_cpus(offer: Offer, res: Available, view: ClusterView, config: Config) -> str | None:
    needed = _needed_milli(config.cpus)
    if res.cpus_milli < needed:
        return f"not enough cpus: {format_milli(res.cpus_milli)} offered, {format_milli(needed)} needed"
    return None


def enough_mem(offer: Offer, res: Available, view: ClusterView, config: Config) -> str | None:
    needed = _needed_milli(config.mem_mb)
    if res.mem_milli < needed:
        return f"not enough mem: {format_milli(res.mem_milli)} MB offered, {format_milli(needed)} MB needed"
    return None


def enough_ports(offer: Offer, res: Available, view: ClusterView, config: Config) -> str | None:
    try:
        choose_ports(res.ports, config.ports)
    except PortsUnavailableError as exc:
        return f"not enough ports: {exc}"
    return None


def enough_disk(offer: Offer, res: Available, view: ClusterView, config: Config) -> str | None:
    needed = _needed_milli(config.disk_mb)
    if res.disk_milli < needed:
        return f"not enough disk: {format_milli(res.disk_milli)} MB offered, {format_milli(needed)} MB needed"
    return None


COMMON_RULES: tuple[Rule, ...] = (
    Rule("cluster_full", cluster_full),
    Rule("agent_has_node", agent_has_node),
    Rule("gpu_agent", gpu_agent),
    Rule("cpus", enough_cpus),
    Rule("mem", enough_mem),
    Rule("ports", enough_ports),
)


@dataclass(frozen=True)
class OfferStrategy:
    name: str
    rules: tuple[Rule, ...] = COMMON_RULES
    #: Whether the node's data lives on the agent's disk (and so takes disk from the offer).
    uses_local_disk: bool = True

    def evaluate(self, offer: Offer, view: ClusterView, config: Config) -> Verdict:
        res = available(offer, config.role)
        for rule in self.rules:
            reason = rule.check(offer, res, view, config)
            if reason is not None:
                return Verdict(offer.id, offer.agent_id, offer.hostname, False, rule.name, reason)
        return Verdict(
            offer.id,
            offer.agent_id,
            offer.hostname,
            True,
            None,
            f"{self.name} strategy: every rule passed ({', '.join(r.name for r in self.rules)})",
        )
