"""One progress line about the cluster's nodes, for the log."""

from __future__ import annotations

from es_framework.core.node_state import ClusterState, TaskState


def describe(state: ClusterState) -> str:
    """One progress line for the log, e.g. ``2/3 nodes running; node 3 launching``.

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
    if missing > 0:
        parts.append(f"{missing} node(s) waiting for an offer")
    return "; ".join(parts)


_STATE_WORDS = {
    TaskState.LAUNCHING: "launching",
    TaskState.STAGING: "staging",
    TaskState.STARTING: "starting",
    TaskState.KILLING: "stopping",
    TaskState.UNREACHABLE: "unreachable (id kept)",
    TaskState.UNKNOWN: "unknown to Mesos (id kept)",
}
