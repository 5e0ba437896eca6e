"""``/_cluster/allocation/explain`` of the demo node (development tool, not Elasticsearch): why a shard copy
is where it is, or why it cannot be placed, in Elasticsearch's wording, from the deciders of
:mod:`.routing` (``same_shard``, ``filter``, ``node_shutdown``, ``node_version``, ``throttling``) and
``no_valid_shard_copy`` for a primary whose data is on no live node."""

from __future__ import annotations

from typing import Any

from es_framework.dev.demo_es.cluster_state import (
    RELOCATING,
    UNASSIGNED,
    Copy,
    DemoClusterState,
    NodeInfo,
    ShardGroup,
    excluded,
)
from es_framework.dev.demo_es.deciders import node_shutdown
from es_framework.dev.demo_es.routing import Placement, can_allocate, verdict


class ExplainError(ValueError):
    """Elasticsearch answers these with 400 illegal_argument_exception."""


def first_unassigned(state: DemoClusterState) -> tuple[str, int, bool] | None:
    for key in sorted(state.shards):
        for copy in state.shards[key].copies:
            if copy.state == UNASSIGNED:
                return key[0], key[1], copy.primary
    return None


def _node_entry(node: NodeInfo) -> dict[str, Any]:
    return {"id": node.node_id, "name": node.name, "transport_address": node.transport}


def _node_decisions(
    state: DemoClusterState, group: ShardGroup, nodes: list[NodeInfo], placement: Placement, copy: Copy
) -> list[dict[str, Any]]:
    """``node_allocation_decisions``: every data node's verdict with the deciders that did not say YES."""
    result = []
    for node in nodes:
        deciders = can_allocate(state, group, node, placement.load, placement.incoming, copy=copy)
        result.append(
            {
                "node_id": node.node_id,
                "node_name": node.name,
                "transport_address": node.transport,
                "node_decision": {"YES": "yes", "NO": "no", "THROTTLE": "throttled"}[verdict(deciders)],
                "deciders": [
                    {"decider": d.decider, "decision": d.decision, "explanation": d.explanation}
                    for d in deciders
                    if d.decision != "YES"
                ],
            }
        )
    return result


def _explain_unassigned(
    state: DemoClusterState, group: ShardGroup, copy: Copy, data_nodes: list[NodeInfo], placement: Placement
) -> dict[str, Any]:
    decisions = _node_decisions(state, group, data_nodes, placement, copy)
    verdicts = {d["node_decision"] for d in decisions}
    live = {n.node_id for n in data_nodes}
    if copy.primary and group.in_sync and not group.in_sync & live:
        can, why = (
            "no_valid_shard_copy",
            "Elasticsearch can't allocate this shard because there are no copies of its data in the cluster. "
            "Elasticsearch will allocate this shard when a node holding a good copy of its data joins the "
            f"cluster (in-sync copies were on node ids {sorted(group.in_sync)}).",
        )
    elif not copy.primary and not group.primary.active:
        can, why = "no", "Elasticsearch can't allocate this replica until its primary shard is active."
    elif not data_nodes:
        can, why = "no", "There are no data nodes in the cluster."
    elif "yes" in verdicts:
        can, why = "yes", "Elasticsearch can allocate the shard; it will at the next reroute."
    elif "throttled" in verdicts:
        can, why = (
            "throttled",
            "Elasticsearch is currently busy with other activities. It expects to be able to allocate this "
            "shard when those activities finish.",
        )
    else:
        can, why = (
            "no",
            "Elasticsearch isn't allowed to allocate this shard to any of the nodes in the cluster. Choose a "
            "node to which you expect this shard to be allocated, find this node in the node-by-node "
            "explanation, and address the reasons which prevent Elasticsearch from allocating this shard there.",
        )
    return {
        "unassigned_info": {
            "reason": copy.unassigned_reason or "INDEX_CREATED",
            "at": copy.unassigned_at,
            "last_allocation_status": "no_valid_shard_copy" if can == "no_valid_shard_copy" else "no_attempt",
        },
        "can_allocate": can,
        "allocate_explanation": why,
        "node_allocation_decisions": decisions,
    }


def _explain_assigned(
    state: DemoClusterState, group: ShardGroup, copy: Copy, data_nodes: list[NodeInfo], placement: Placement
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    current = state.node(copy.node)
    if current is not None:
        result["current_node"] = _node_entry(current)
    if copy.relocating_node:
        target = state.node(copy.relocating_node)
        result["relocating_node"] = _node_entry(target) if target else {"id": copy.relocating_node}
    remain = [
        {"decider": "filter", "decision": "NO", "explanation": why}
        for why in [excluded(state, current) if current else None]
        if why is not None
    ]
    shutdown = node_shutdown(state, current) if current else None
    if shutdown is not None and shutdown.decision == "NO":
        remain.append({"decider": shutdown.decider, "decision": "NO", "explanation": shutdown.explanation})
    if not remain:
        result["can_remain_on_current_node"] = "yes"
        result["can_rebalance_cluster"] = "yes"
        result["rebalance_explanation"] = "Elasticsearch can rebalance this shard when the cluster is unbalanced."
        return result
    result["can_remain_on_current_node"] = "no"
    result["can_remain_decisions"] = remain
    decisions = _node_decisions(state, group, [n for n in data_nodes if n.node_id != copy.node], placement, copy)
    if copy.state == RELOCATING:
        result["can_move_to_other_node"] = "yes"
        result["move_explanation"] = "This shard may not remain on its current node and is being moved to another node."
    elif any(d["node_decision"] == "yes" for d in decisions):
        result["can_move_to_other_node"] = "yes"
        result["move_explanation"] = (
            "This shard may not remain on its current node; it will be moved at the next reroute."
        )
    else:
        result["can_move_to_other_node"] = "no"
        result["move_explanation"] = (
            "This shard may not remain on its current node, but Elasticsearch isn't allowed to move it to another "
            "node. Choose a node to which you expect this shard to be allocated, find this node in the node-by-node "
            "explanation, and address the reasons which prevent Elasticsearch from allocating this shard there."
        )
    result["node_allocation_decisions"] = decisions
    return result


def explain(state: DemoClusterState, index: str, shard: int, primary: bool) -> dict[str, Any]:
    """``/_cluster/allocation/explain`` for one copy: why it is where it is, or why it cannot be placed."""
    group = state.shards.get((index, shard))
    candidates = [c for c in group.copies if c.primary == primary] if group else []
    if group is None or not candidates:
        raise ExplainError(
            f"unable to find any shards to explain [[{index}][{shard}], primary: {str(primary).lower()}]"
        )
    # A replica that is unassigned is the more interesting one when there are several.
    copy = next((c for c in candidates if c.state == UNASSIGNED), candidates[0])
    data_nodes = sorted((n for n in state.nodes if n.is_data), key=lambda n: n.name)
    placement = Placement(state, data_nodes)
    head = {"index": index, "shard": shard, "primary": primary, "current_state": copy.state.lower()}
    if copy.state == UNASSIGNED:
        return head | _explain_unassigned(state, group, copy, data_nodes, placement)
    return head | _explain_assigned(state, group, copy, data_nodes, placement)
