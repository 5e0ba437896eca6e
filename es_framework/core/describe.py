"""One progress line about the cluster's nodes, for the log."""

from __future__ import annotations

from collections import Counter

from es_framework.core.blocked_agents import BlockedAgents
from es_framework.core.node_state import ClusterState, TaskState


def describe(state: ClusterState, agents: BlockedAgents | None = None, now: float = 0.0, per_agent: int = 1) -> str:
    """One progress line for the log, e.g. ``2/3 nodes running; node 3 launching``, with the agents
    blocked at ``now`` and, when every agent that offered is blocked (but those that run ``per_agent``
    nodes already, ``--maxNodesPerAgent``), that no node can start.

    Built from :attr:`ClusterState.summary` (kept up to date per status update), so its cost follows
    what the line says, not the number of nodes."""
    summary = state.summary
    parts = [f"{summary.running}/{state.desired_nodes} nodes running"]
    others = [state.nodes[i] for i in sorted(summary.not_running)]
    parts.extend(
        f"node {r.node_id} {_STATE_WORDS.get(r.state, r.state.value)}"
        + (" (operator action needed)" if r.needs_operator else "")
        for r in others
    )
    parts.extend(
        f"node {i} is in another cluster (uuid {state.nodes[i].cluster_uuid}, not {state.cluster_uuid})"
        for i in sorted(summary.foreign)
    )
    if summary.outdated:
        parts.append(f"outdated configuration: node(s) {', '.join(map(str, sorted(summary.outdated)))}")
    if summary.surplus:
        parts.append(f"scaling down: node(s) {', '.join(map(str, sorted(summary.surplus)))} to be drained and stopped")
    missing = state.missing_nodes
    stuck = False
    if agents is not None and missing > 0 and agents.blocks:
        # busy_agents walks the nodes: only while an agent is blocked and a node is missing.
        stuck = agents.all_blocked(now, missing, busy_agents(state, per_agent))
    if missing > 0:
        parts.append(
            f"{missing} node(s) missing, none can start: every agent that offered failed an agent check"
            if stuck
            else f"{missing} node(s) waiting for an offer"
        )
    blocked = agents.status(now) if agents is not None else None
    if blocked is not None:
        parts.append(blocked)
    return "; ".join(parts)


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
