"""One progress line about the cluster's nodes, for the log."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from es_framework.core.blocked_agents import BlockedAgents
from es_framework.core.node_state import ClusterState, TaskState

if TYPE_CHECKING:  # engine_stats imports node_state too; only the type is needed here
    from es_framework.core.engine_stats import Waiting


#: How many node ids one part of the line names; past that it counts them.
LISTED = 10


def describe(
    state: ClusterState,
    agents: BlockedAgents | None = None,
    now: float = 0.0,
    per_agent: int = 1,
    *,
    waiting: Waiting | None = None,
) -> str:
    """One progress line for the log, e.g. ``2/3 nodes running; node 3 launching``, with the agents
    blocked at ``now`` and, when every agent that offered is blocked (but those that run ``per_agent``
    nodes already, ``--maxNodesPerAgent``), that no node can start. With ``waiting`` (the engine's
    :class:`~es_framework.core.engine_stats.Waiting`) and while it still describes ``state``, the
    missing nodes are named with the decline reasons by count (``node 5 waiting for an offer:
    declined offers by first failing rule: agent_has_node 12``).

    Built from :attr:`ClusterState.summary` (kept up to date per status update), so its cost follows
    what the line says, not the number of nodes."""
    summary = state.summary
    parts = [f"{summary.running}/{state.desired_nodes} nodes running"]
    others = [state.nodes[i] for i in sorted(summary.not_running)]
    if len(others) <= LISTED:
        parts.extend(
            f"node {r.node_id} {_STATE_WORDS.get(r.state, r.state.value)}"
            + (" (operator action needed)" if r.needs_operator else "")
            for r in others
        )
    else:  # a cluster forming or failing at scale: one part per state, not one per node
        by_words: dict[str, list[int]] = {}
        for r in others:
            words = _STATE_WORDS.get(r.state, r.state.value) + (" (operator action needed)" if r.needs_operator else "")
            by_words.setdefault(words, []).append(r.node_id)
        parts.extend(f"{len(ids)} node(s) {words}: {_listed(ids)}" for words, ids in by_words.items())
    parts.extend(
        f"node {i} is in another cluster (uuid {state.nodes[i].cluster_uuid}, not {state.cluster_uuid})"
        for i in sorted(summary.foreign)
    )
    if summary.outdated:
        parts.append(f"outdated configuration: node(s) {_listed(sorted(summary.outdated))}")
    if summary.surplus:
        parts.append(f"scaling down: node(s) {_listed(sorted(summary.surplus))} to be drained and stopped")
    missing = state.missing_nodes
    stuck = False
    if agents is not None and missing > 0 and agents.blocks:
        # busy_agents walks the nodes: only while an agent is blocked and a node is missing.
        stuck = agents.all_blocked(now, missing, busy_agents(state, per_agent))
    if missing > 0:
        parts.append(
            f"{missing} node(s) missing, none can start: every agent that offered failed an agent check"
            if stuck
            else waiting.sentence()
            if waiting is not None and _still_waiting(state, waiting)
            else f"{missing} node(s) waiting for an offer"
        )
    blocked = agents.status(now) if agents is not None else None
    if blocked is not None:
        parts.append(blocked)
    return "; ".join(parts)


def _listed(ids: list[int]) -> str:
    """At most :data:`LISTED` ids, then how many more: a line stays readable at 10,000 nodes."""
    shown = ", ".join(map(str, ids[:LISTED]))
    return shown if len(ids) <= LISTED else f"{shown} … (+{len(ids) - LISTED} more)"


def _still_waiting(state: ClusterState, waiting: Waiting) -> bool:
    """Whether ``waiting`` describes ``state`` (it is worked out after each change, the line may
    come first): as many missing, and none of its ids held by a record."""
    if waiting.missing != state.missing_nodes:
        return False
    return not any(node_id in state.nodes for node_id in waiting.node_ids)


def busy_agents(state: ClusterState, per_agent: int = 1) -> frozenset[str]:
    """Agents that run ``per_agent`` nodes of this cluster (``--maxNodesPerAgent``) and so take no
    other: "every agent is blocked" is said of the others."""
    counts = Counter(record.agent_id for record in state.nodes.values())
    return frozenset(agent_id for agent_id, count in counts.items() if count >= per_agent)


_STATE_WORDS = {
    TaskState.LAUNCHING: "launching",
    TaskState.STAGING: "staging",
    TaskState.STARTING: "starting",
    TaskState.KILLING: "stopping",
    TaskState.UNREACHABLE: "unreachable (id kept)",
    TaskState.UNKNOWN: "unknown to Mesos (id kept)",
}
