"""What an offer strategy may know of the cluster: a small, immutable summary.

The scheduler keeps it current as tasks change, so that judging an offer costs the same with
three nodes or ten thousand: membership is a dictionary lookup, never a scan of the task list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class ClusterView:
    #: The node count the operator asked for.
    desired_nodes: int
    #: Nodes counted as present: launching, running, or unreachable with their id still reserved.
    present_nodes: int = 0
    #: Agent id -> node id, for every agent that runs (or may still run) a node of this cluster.
    nodes_by_agent: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    #: Hostname -> node id: an agent that re-registers with a new id is still the same host.
    nodes_by_hostname: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    #: ``host:transport_port`` of the master-eligible nodes, for discovery.
    seed_hosts: tuple[str, ...] = ()
    #: Node ids 1..this are master-eligible (--elasticsearchMasterNodes).
    master_nodes: int = 3
    #: ``cluster.initial_master_nodes`` while a brand-new cluster forms, else empty.
    initial_master_nodes: tuple[str, ...] = ()

    @property
    def missing_nodes(self) -> int:
        return max(0, self.desired_nodes - self.present_nodes)

    def with_node(self, node_id: int, agent_id: str, hostname: str, *, seed_host: str | None = None) -> ClusterView:
        """The view after a node was placed on an agent (planning places several per cycle);
        ``seed_host`` is its transport address when it is master-eligible."""
        return ClusterView(
            desired_nodes=self.desired_nodes,
            present_nodes=self.present_nodes + 1,
            nodes_by_agent=MappingProxyType({**self.nodes_by_agent, agent_id: node_id}),
            nodes_by_hostname=MappingProxyType({**self.nodes_by_hostname, hostname: node_id}),
            seed_hosts=(*self.seed_hosts, seed_host) if seed_host else self.seed_hosts,
            master_nodes=self.master_nodes,
            initial_master_nodes=self.initial_master_nodes,
        )
