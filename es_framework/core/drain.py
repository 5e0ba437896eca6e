"""Scaling down without losing data: which nodes to drain, when a drained node may stop, as pure
functions over the cluster state and what Elasticsearch reports.

Node ids above the desired count are *leaving*. The disruption planner
(:mod:`es_framework.core.disruption`) admits them one at a time within ``--maxUnavailable`` (highest
id first); the drain acts only on admitted ones (``admitted``), the others wait. For each, in order:

1. ``cluster.routing.allocation.exclude._name`` lists every admitted leaving node (by name: it works the
   same on Elasticsearch 7 and 8, and a wrong name cannot be silently accepted the way a wrong node
   id is by the node-shutdown API); names an operator put there for other nodes are kept.
2. A leaving master-eligible node is added to the voting configuration exclusions, so that the
   remaining masters keep a quorum when it stops.
3. A leaving node may stop once it holds **zero** shard copies **and** the cluster has no
   unassigned and no relocating shard (both checks: each alone has lost data elsewhere). A
   leaving node that never started (launching, staging) holds nothing and stops at once; an
   unreachable one cannot be drained and waits.
4. When no node is leaving any more, the framework's names are removed from the exclusion list
   and the voting exclusions are cleared.

:class:`DrainPlan` says what to change in Elasticsearch and which nodes may stop; the scheduler
(:class:`es_framework.shell.monitor.ClusterMonitor`) applies it and shows the progress.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from es_framework.core.bootstrap import is_master_eligible
from es_framework.core.node_state import ClusterState, NodeRecord, TaskState
from identity.naming import node_name

EXCLUDE_SETTING = "cluster.routing.allocation.exclude._name"
#: Without change in its shard count for this long, a drain is reported as stalled (with the reason
#: Elasticsearch's allocation explain gives).
STALL_SECONDS = 60.0
_NOT_STARTED = frozenset({TaskState.LAUNCHING, TaskState.STAGING, TaskState.STARTING})


@dataclass(frozen=True)
class Observation:
    """What Elasticsearch said, through any running node."""

    #: Node name -> shard copies it holds (started, relocating away or initializing).
    shards_by_node: Mapping[str, int]
    unassigned_shards: int
    relocating_shards: int
    initializing_shards: int
    #: The exclusion list currently set (persistent or transient), in order.
    excluded_names: tuple[str, ...]
    #: Node names in the voting configuration exclusions.
    voting_exclusions: tuple[str, ...]


@dataclass(frozen=True)
class NodeDrain:
    node_id: int
    name: str
    #: None while Elasticsearch's answer is unknown.
    shards_left: int | None
    #: ``draining``, ``waiting`` (shards elsewhere still moving or unassigned), ``ready`` (may stop),
    #: ``stopping``, or ``blocked`` (cannot be drained now, e.g. unreachable).
    status: str
    reason: str


@dataclass(frozen=True)
class DrainPlan:
    #: The exclusion list to set, or None to leave it as it is.
    set_excluded: tuple[str, ...] | None
    #: Names to add to the voting exclusions.
    add_voting_exclusions: tuple[str, ...]
    clear_voting_exclusions: bool
    #: Leaving node ids that may be stopped now.
    stop: tuple[int, ...]
    nodes: tuple[NodeDrain, ...]

    @property
    def changes_elasticsearch(self) -> bool:
        return self.set_excluded is not None or bool(self.add_voting_exclusions) or self.clear_voting_exclusions


def leaving_nodes(state: ClusterState) -> list[NodeRecord]:
    return [state.nodes[i] for i in sorted(state.nodes) if i > state.desired_nodes]


def _ours(name: str, framework_name: str) -> bool:
    rest = name.removeprefix(framework_name)
    return rest != name and rest.isdigit() and not rest.startswith("0")


def plan_drain(
    state: ClusterState,
    framework_name: str,
    master_nodes: int,
    seen: Observation,
    *,
    admitted: frozenset[int] | None = None,
) -> DrainPlan:
    """What to change in Elasticsearch and which leaving nodes may stop. With ``admitted`` (the node
    ids whose scale-down the disruption planner started), only those leaving nodes are excluded,
    voting-excluded, listed and stopped; the others wait for the planner. None: every leaving node."""
    everyone = leaving_nodes(state)
    leaving = everyone if admitted is None else [r for r in everyone if r.node_id in admitted]
    names = {r.node_id: node_name(framework_name, r.node_id) for r in leaving}
    # Keep what others excluded; drop our names that no longer leave; add those that do.
    kept = [n for n in seen.excluded_names if not _ours(n, framework_name)]
    wanted = tuple(kept + [names[r.node_id] for r in leaving])
    set_excluded = None if wanted == seen.excluded_names else wanted

    leaving_masters = [names[r.node_id] for r in leaving if is_master_eligible(r.node_id, master_nodes)]
    add_voting = tuple(n for n in leaving_masters if n not in seen.voting_exclusions)
    # Cleared only once no node leaves at all: a waiting leaving master is voted out when admitted.
    clear_voting = not everyone and any(_ours(n, framework_name) for n in seen.voting_exclusions)

    busy = seen.unassigned_shards + seen.relocating_shards + seen.initializing_shards
    nodes: list[NodeDrain] = []
    stop: list[int] = []
    for record in leaving:
        name = names[record.node_id]
        left = seen.shards_by_node.get(name, 0)
        if record.stopping is not None:
            nodes.append(NodeDrain(record.node_id, name, left, "stopping", f"stopping ({record.stopping})"))
        elif record.state in _NOT_STARTED:
            nodes.append(NodeDrain(record.node_id, name, 0, "ready", "never started: it holds no data"))
            stop.append(record.node_id)
        elif record.state is not TaskState.RUNNING:
            nodes.append(
                NodeDrain(
                    record.node_id,
                    name,
                    None,
                    "blocked",
                    f"{record.state.value}: its shards cannot be moved until it runs again or is declared gone",
                )
            )
        elif name not in seen.excluded_names:
            nodes.append(NodeDrain(record.node_id, name, left, "draining", "excluding it from shard allocation"))
        elif left > 0:
            nodes.append(NodeDrain(record.node_id, name, left, "draining", f"{left} shard copies still to move away"))
        elif name in leaving_masters and name not in seen.voting_exclusions:
            nodes.append(NodeDrain(record.node_id, name, 0, "waiting", "waiting for its voting exclusion"))
        elif busy:
            nodes.append(
                NodeDrain(
                    record.node_id,
                    name,
                    0,
                    "waiting",
                    f"empty, but the cluster has {seen.unassigned_shards} unassigned, {seen.relocating_shards} "
                    f"relocating and {seen.initializing_shards} initializing shards",
                )
            )
        else:
            nodes.append(NodeDrain(record.node_id, name, 0, "ready", "holds no shards"))
            stop.append(record.node_id)
    return DrainPlan(set_excluded, add_voting, clear_voting, tuple(stop), tuple(nodes))


def copies_needed(replicas_by_index: Mapping[str, int]) -> int:
    """The fewest data nodes that can hold every copy of every shard (replicas + 1 of the most
    replicated index; 1 with no index)."""
    return max((r + 1 for r in replicas_by_index.values()), default=1)
