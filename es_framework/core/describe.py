"""One progress line about the cluster's nodes, for the log."""

from __future__ import annotations

from es_framework.core.node_state import ClusterState, TaskState, split_clusters


def describe(state: ClusterState) -> str:
    """One progress line for the log, e.g. ``2/3 nodes running; node 3 launching``."""
    running = sum(1 for r in state.nodes.values() if r.state is TaskState.RUNNING)
    parts = [f"{running}/{state.desired_nodes} nodes running"]
    others = [r for r in sorted(state.nodes.values(), key=lambda r: r.node_id) if r.state is not TaskState.RUNNING]
    parts.extend(
        f"node {r.node_id} {_STATE_WORDS.get(r.state, r.state.value)}"
        + (" (operator action needed)" if r.needs_operator else "")
        for r in others
    )
    parts.extend(
        f"node {r.node_id} is in another cluster (uuid {r.cluster_uuid}, not {state.cluster_uuid})"
        for r in sorted(split_clusters(state), key=lambda r: r.node_id)
    )
    outdated = sorted(r.node_id for r in state.nodes.values() if r.outdated)
    if outdated:
        parts.append(f"outdated configuration: node(s) {', '.join(map(str, outdated))}")
    surplus = sorted(node_id for node_id in state.nodes if node_id > state.desired_nodes)
    if surplus:
        parts.append(f"scaling down: node(s) {', '.join(map(str, surplus))} to be drained and stopped")
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
