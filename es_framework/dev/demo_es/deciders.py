"""Allocation deciders of the demo node (development tool, not Elasticsearch) that follow node versions and node
shutdowns; pure functions used by :mod:`.routing` and :mod:`.explain`.

- **node_version** — ``NodeVersionAllocationDecider`` (elastic/elasticsearch, server/src/main/java/org/
  elasticsearch/cluster/routing/allocation/decider/NodeVersionAllocationDecider.java): a replica may only be
  recovered onto a node of the same or a newer version than the node holding its active primary; a primary may
  only relocate to a node of the same or a newer version; a new primary, or one whose primary is not active
  yet, may go anywhere. A copy already on an older node may stay (the decider has no ``canRemain``).
- **node_shutdown** — ``NodeShutdownAllocationDecider`` (same package, NodeShutdownAllocationDecider.java): no
  copy may be allocated to, or remain on, a node with a ``remove`` or ``replace`` shutdown; a ``restart``
  shutdown allows both.
- **restart delay** — when a node with a ``restart`` shutdown leaves, its copies become unassigned with reason
  ``NODE_RESTARTING`` and are not allocated elsewhere before the shutdown's ``allocation_delay`` (default 5m)
  has passed; the returning node may take them back at once (``UnassignedInfo`` / ``DelayedAllocationService``
  in server/src/main/java/org/elasticsearch/cluster/routing/, and the put shutdown API's documentation of
  ``allocation_delay``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from es_framework.dev.demo_es.cluster_state import (
    SHUTDOWN_RESTART,
    UNASSIGNED,
    Copy,
    DemoClusterState,
    NodeInfo,
    ShardGroup,
)

NODE_RESTARTING = "NODE_RESTARTING"
_TIME = re.compile(r"(\d+)(nanos|micros|ms|s|m|h|d)")
_UNIT_MS = {"nanos": 1e-6, "micros": 1e-3, "ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


@dataclass(frozen=True)
class Decision:
    decider: str
    decision: str  # YES / NO / THROTTLE
    explanation: str


def time_value_millis(text: str) -> int | None:
    """An Elasticsearch time value (``10m``, ``30s``, ``-1``, ``0``) in milliseconds; None if it is not one."""
    value = text.strip().lower()
    if value in ("-1", "0"):
        return int(value)
    match = _TIME.fullmatch(value)
    if match is None:
        return None
    return int(int(match.group(1)) * _UNIT_MS[match.group(2)])


def node_version(state: DemoClusterState, group: ShardGroup, copy: Copy, target: NodeInfo) -> Decision:
    """``node_version`` for putting ``copy`` (of ``group``) on ``target``: a new copy, or a relocation."""
    name = "node_version"
    if copy.primary:
        source = state.node(copy.node) if copy.state != UNASSIGNED else None
        if source is None:
            return Decision(name, "YES", "the primary shard is new or already existed on the node")
        if target.es_version.before(source.es_version):
            return Decision(
                name,
                "NO",
                f"cannot relocate primary shard from a node with version [{source.version}] to a node with older "
                f"version [{target.version}]",
            )
        return Decision(
            name,
            "YES",
            f"can relocate primary shard from a node with version [{source.version}] to a node with equal-or-newer "
            f"version [{target.version}]",
        )
    primary = group.primary
    holder = state.node(primary.node) if primary.active else None
    if holder is None:
        return Decision(name, "YES", "no active primary shard yet")
    if target.es_version.before(holder.es_version):
        return Decision(
            name,
            "NO",
            f"cannot allocate replica shard to a node with version [{target.version}] since this is older than the "
            f"primary version [{holder.version}]",
        )
    return Decision(
        name,
        "YES",
        f"can allocate replica shard to a node with version [{target.version}] since this is equal-or-newer than "
        f"the primary version [{holder.version}]",
    )


def node_shutdown(state: DemoClusterState, node: NodeInfo) -> Decision:
    """``node_shutdown`` for allocating to, or remaining on, ``node``."""
    record = state.shutdowns.get(node.node_id)
    if record is None:
        return Decision("node_shutdown", "YES", "this node is not currently shutting down")
    if record.removing:
        return Decision("node_shutdown", "NO", f"node [{node.node_id}] is preparing to be removed from the cluster")
    return Decision(
        "node_shutdown", "YES", f"node [{node.node_id}] is preparing to restart, but will remain in the cluster"
    )


def may_remain(state: DemoClusterState, node: NodeInfo) -> bool:
    return node_shutdown(state, node).decision == "YES"


def restart_delay_ends(state: DemoClusterState, copy: Copy) -> int | None:
    """When (epoch ms) a copy unassigned by its node's restart may be allocated elsewhere; None when not delayed."""
    if copy.state != UNASSIGNED or copy.unassigned_reason != NODE_RESTARTING or copy.last_node is None:
        return None
    record = state.shutdowns.get(copy.last_node)
    if record is None or record.type != SHUTDOWN_RESTART:
        return None
    delay = time_value_millis(record.effective_allocation_delay or "0") or 0
    return copy.unassigned_at + max(delay, 0)


def delayed(state: DemoClusterState, copy: Copy, target: NodeInfo, now: int) -> bool:
    """Whether ``copy`` must not go to ``target`` yet: its restarting node may take it back, nobody else may."""
    ends = restart_delay_ends(state, copy)
    return ends is not None and now < ends and target.node_id != copy.last_node


def reason_for_departure(state: DemoClusterState, node_id: str) -> str:
    """``NODE_RESTARTING`` for a node with a restart shutdown, ``NODE_LEFT`` otherwise."""
    record = state.shutdowns.get(node_id)
    return NODE_RESTARTING if record is not None and record.type == SHUTDOWN_RESTART else "NODE_LEFT"
