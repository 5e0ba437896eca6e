"""What an offer strategy may know of the cluster: a small, immutable summary.

The scheduler keeps it current as tasks change, so that judging an offer costs the same with
three nodes or ten thousand: membership is a dictionary lookup, never a scan of the task list.
Placement (constraints, nodes per agent, zones) reads the per-value node counts kept here
(:class:`ValueCounts`), computed once per offer cycle from the node records
(:meth:`es_framework.core.node_state.ClusterState.view`) and updated per launch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType


def _empty() -> Mapping[str, int]:
    return MappingProxyType({})


@dataclass(frozen=True)
class ValueCounts:
    """How many nodes run on agents with each value of one placement field (a constraint's field, or
    the zone), and which values are known without a node yet. Build it with :func:`value_counts`."""

    #: Value -> nodes (only values with at least one node).
    counts: Mapping[str, int] = field(default_factory=_empty)
    #: Nodes whose agent has no value for the field.
    missing: int = 0
    #: Values known (from this cycle's offers that could host a node) that have no node yet, sorted.
    unplaced: tuple[str, ...] = ()
    #: The smallest count among values with nodes, and the first such value (0, None: no node).
    smallest: int = 0
    smallest_value: str | None = None
    #: The value of the lowest node id that has one (what ``CLUSTER`` without a value holds to).
    first_value: str | None = None
    first_node: int | None = None

    def count(self, value: str) -> int:
        return self.counts.get(value, 0)

    @property
    def known(self) -> int:
        """How many values are known: with nodes, or offered without one."""
        return len(self.counts) + len(self.unplaced)

    def add(self, node_id: int, value: str | None) -> ValueCounts:
        """The counts after node ``node_id`` was placed on an agent with ``value`` (once per launch)."""
        if value is None:
            return replace(self, missing=self.missing + 1)
        counts = {**self.counts, value: self.counts.get(value, 0) + 1}
        first = self.first_node is None or node_id < self.first_node
        return _with_smallest(
            replace(
                self,
                counts=MappingProxyType(counts),
                unplaced=tuple(v for v in self.unplaced if v != value),
                first_value=value if first else self.first_value,
                first_node=node_id if first else self.first_node,
            )
        )

    def offered(self, values: Iterable[str | None]) -> ValueCounts:
        """These counts knowing the values of this cycle's offers as well."""
        new = {v for v in values if v is not None and v not in self.counts}
        if not new - set(self.unplaced):
            return self
        return replace(self, unplaced=tuple(sorted(new | set(self.unplaced))))


def _with_smallest(counts: ValueCounts) -> ValueCounts:
    if not counts.counts:
        return replace(counts, smallest=0, smallest_value=None)
    value = min(counts.counts, key=lambda v: (counts.counts[v], v))
    return replace(counts, smallest=counts.counts[value], smallest_value=value)


def value_counts(placed: Iterable[tuple[int, str | None]]) -> ValueCounts:
    """The counts over ``(node id, value)`` pairs (value None: the node's agent has none)."""
    counts: dict[str, int] = {}
    missing = 0
    first: tuple[int, str] | None = None
    for node_id, value in placed:
        if value is None:
            missing += 1
            continue
        counts[value] = counts.get(value, 0) + 1
        if first is None or node_id < first[0]:
            first = (node_id, value)
    return _with_smallest(
        ValueCounts(
            counts=MappingProxyType(counts),
            missing=missing,
            first_value=first[1] if first else None,
            first_node=first[0] if first else None,
        )
    )


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
    #: Agent id (and hostname) -> every node id on it, for ``--maxNodesPerAgent`` above 1.
    agent_nodes: Mapping[str, tuple[int, ...]] = field(default_factory=lambda: MappingProxyType({}))
    host_nodes: Mapping[str, tuple[int, ...]] = field(default_factory=lambda: MappingProxyType({}))
    #: Constraint field -> nodes per value (only the fields of ``--constraints``).
    placement: Mapping[str, ValueCounts] = field(default_factory=lambda: MappingProxyType({}))
    #: Nodes per zone (every node record's zone), and the zones offered without a node.
    zones: ValueCounts = field(default_factory=ValueCounts)

    @property
    def missing_nodes(self) -> int:
        return max(0, self.desired_nodes - self.present_nodes)

    def nodes_on(self, agent_id: str, hostname: str) -> tuple[int, ...]:
        """The node ids on this agent, by agent id or by hostname, in order."""
        ids = {*self.agent_nodes.get(agent_id, ()), *self.host_nodes.get(hostname, ())}
        for by, key in ((self.nodes_by_agent, agent_id), (self.nodes_by_hostname, hostname)):
            if key in by:
                ids.add(by[key])
        return tuple(sorted(ids))

    def with_node(
        self,
        node_id: int,
        agent_id: str,
        hostname: str,
        *,
        seed_host: str | None = None,
        values: Mapping[str, str | None] | None = None,
        zone: str | None = None,
    ) -> ClusterView:
        """The view after a node was placed on an agent (planning places several per cycle);
        ``seed_host`` is its transport address when it is master-eligible, ``values`` its agent's
        value of each placement field, ``zone`` its agent's zone."""
        values = values or {}
        return replace(
            self,
            present_nodes=self.present_nodes + 1,
            nodes_by_agent=MappingProxyType({**self.nodes_by_agent, agent_id: node_id}),
            nodes_by_hostname=MappingProxyType({**self.nodes_by_hostname, hostname: node_id}),
            seed_hosts=(*self.seed_hosts, seed_host) if seed_host else self.seed_hosts,
            agent_nodes=MappingProxyType(
                {**self.agent_nodes, agent_id: (*self.agent_nodes.get(agent_id, ()), node_id)}
            ),
            host_nodes=MappingProxyType({**self.host_nodes, hostname: (*self.host_nodes.get(hostname, ()), node_id)}),
            placement=MappingProxyType(
                {name: counts.add(node_id, values.get(name)) for name, counts in self.placement.items()}
            ),
            zones=self.zones.add(node_id, zone),
        )

    def with_offered(self, values: Mapping[str, Iterable[str | None]], zones: Iterable[str | None]) -> ClusterView:
        """The view knowing the placement values and zones of this cycle's offers (those that could
        host a node), so that spreading waits for a value that is offered but has no node yet."""
        return replace(
            self,
            placement=MappingProxyType(
                {name: counts.offered(values.get(name, ())) for name, counts in self.placement.items()}
            ),
            zones=self.zones.offered(zones),
        )
