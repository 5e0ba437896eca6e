"""``_cat`` APIs and ``GET /_nodes/stats`` of the demo node (development tool, not Elasticsearch).

Rows are dictionaries of Elasticsearch's column names; :func:`~es_framework.dev.demo_es.rest.render_cat`
renders them (text, ``v``, ``h``, or ``format=json``). Document counts and sizes come from every
node's local shard stats (a node that does not answer is left out).
"""

from __future__ import annotations

import time
from typing import Any

from es_framework.dev.demo_es.actions.cluster import cluster_health
from es_framework.dev.demo_es.actions.common import current_state, post, resolve
from es_framework.dev.demo_es.actions.shards import local_shard_stats
from es_framework.dev.demo_es.cluster_state import RELOCATING, UNASSIGNED, DemoClusterState
from es_framework.dev.demo_es.errors import EsError
from es_framework.dev.demo_es.health import index_health
from es_framework.dev.demo_es.node_api import NodeAPI


def _all_stats(node: NodeAPI, state: DemoClusterState) -> dict[str, dict[str, Any]]:
    """Node id → its local shard stats (nodes that do not answer are left out)."""
    stats: dict[str, dict[str, Any]] = {}
    for info in state.nodes:
        if info.node_id == node.node_id:
            stats[info.node_id] = local_shard_stats(node)
            continue
        try:
            status, answer = post(info, "/_demo/shard_stats", {}, timeout=3)
        except OSError:
            continue
        if status == 200 and isinstance(answer, dict):
            stats[info.node_id] = answer
    return stats


def _size(size: int) -> str:
    if size < 1024:
        return f"{size}b"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f}kb"
    return f"{size / (1024 * 1024):.1f}mb"


def cat_indices(node: NodeAPI, expression: str | None) -> list[dict[str, str]]:
    state = current_state(node)
    stats = _all_stats(node, state)
    rows = []
    for name in resolve(state, expression):
        meta = state.indices[name]
        docs = deleted = size = primary_size = 0
        for group in state.groups(name):
            for copy in group.copies:
                entry = stats.get(copy.node or "", {}).get(f"{meta.uuid}/{group.shard}") if copy.active else None
                if entry is None:
                    continue
                size += entry["size"]
                if copy.primary:
                    docs += entry["docs"]
                    deleted += entry["deleted"]
                    primary_size += entry["size"]
        rows.append(
            {
                "health": index_health(state, name),
                "status": "open",
                "index": name,
                "uuid": meta.uuid,
                "pri": str(meta.number_of_shards),
                "rep": str(meta.number_of_replicas),
                "docs.count": str(docs),
                "docs.deleted": str(deleted),
                "store.size": _size(size),
                "pri.store.size": _size(primary_size),
            }
        )
    return rows


def cat_shards(node: NodeAPI, expression: str | None) -> list[dict[str, str | None]]:
    state = current_state(node)
    stats = _all_stats(node, state)
    rows: list[dict[str, str | None]] = []
    for name in resolve(state, expression):
        meta = state.indices[name]
        for group in state.groups(name):
            for copy in sorted(group.copies, key=lambda c: not c.primary):
                info = state.node(copy.node)
                entry = (
                    stats.get(copy.node or "", {}).get(f"{meta.uuid}/{group.shard}")
                    if copy.state != UNASSIGNED
                    else None
                )
                node_text = info.name if info else None
                if copy.state == RELOCATING and copy.relocating_node:
                    target = state.node(copy.relocating_node)
                    host = target.transport.rpartition(":")[0] if target else "?"
                    node_text = f"{node_text} -> {host} {copy.relocating_node} {target.name if target else '?'}"
                rows.append(
                    {
                        "index": name,
                        "shard": str(group.shard),
                        "prirep": "p" if copy.primary else "r",
                        "state": copy.state,
                        "docs": str(entry["docs"]) if entry else None,
                        "store": _size(entry["size"]) if entry else None,
                        "ip": info.transport.rpartition(":")[0] if info else None,
                        "node": node_text,
                        "unassigned.reason": copy.unassigned_reason if copy.state == UNASSIGNED else None,
                    }
                )
    return rows


def shard_counts(state: DemoClusterState) -> dict[str, int]:
    """Node id → copies it holds (a relocation counts on its source until it finishes)."""
    counts = {n.node_id: 0 for n in state.nodes if n.is_data}
    for group in state.shards.values():
        for copy in group.copies:
            if copy.node and copy.state != UNASSIGNED:
                counts[copy.node] = counts.get(copy.node, 0) + 1
    return counts


def cat_allocation(node: NodeAPI) -> list[dict[str, str | None]]:
    state = current_state(node)
    counts = shard_counts(state)
    rows: list[dict[str, str | None]] = []
    for info in sorted(state.nodes, key=lambda n: n.name):
        if not info.is_data:
            continue
        host = info.transport.rpartition(":")[0]
        rows.append({"shards": str(counts.get(info.node_id, 0)), "host": host, "ip": host, "node": info.name})
    unassigned = sum(1 for g in state.shards.values() for c in g.copies if c.state == UNASSIGNED)
    if unassigned:
        rows.append({"shards": str(unassigned), "host": None, "ip": None, "node": "UNASSIGNED"})
    return rows


def cat_nodes(node: NodeAPI) -> list[dict[str, str | None]]:
    master = node.master_peer()
    rows: list[dict[str, str | None]] = []
    for info in sorted(node.members(), key=lambda n: n.name):
        letters = {"master": "m", "data": "d", "ingest": "i", "ml": "l", "remote_cluster_client": "r", "transform": "t"}
        rows.append(
            {
                "ip": info.transport.rpartition(":")[0],
                "node.role": "".join(sorted(letters.get(r, "") for r in info.roles)) or "-",
                "master": "*" if master is not None and master.node_id == info.node_id else "-",
                "name": info.name,
                "id": info.node_id,
            }
        )
    return rows


def cat_master(node: NodeAPI) -> list[dict[str, str | None]]:
    master = node.master_peer()
    if master is None:
        raise EsError(503, "master_not_discovered_exception", "no master discovered by the demo node")
    host = master.transport.rpartition(":")[0]
    return [{"id": master.node_id, "host": host, "ip": host, "node": master.name}]


def cat_health(node: NodeAPI) -> list[dict[str, str | None]]:
    _, health = cluster_health(node, None, {})
    return [
        {
            "epoch": str(int(time.time())),
            "cluster": health["cluster_name"],
            "status": health["status"],
            "node.total": str(health["number_of_nodes"]),
            "node.data": str(health["number_of_data_nodes"]),
            "shards": str(health["active_shards"]),
            "pri": str(health["active_primary_shards"]),
            "relo": str(health["relocating_shards"]),
            "init": str(health["initializing_shards"]),
            "unassign": str(health["unassigned_shards"]),
        }
    ]


def nodes_stats(node: NodeAPI) -> dict[str, Any]:
    state = current_state(node)
    counts = shard_counts(state)
    stats = _all_stats(node, state)
    entries = {}
    for info in state.nodes:
        local = stats.get(info.node_id, {})
        entries[info.node_id] = {
            "name": info.name,
            "transport_address": info.transport,
            "host": info.transport.rpartition(":")[0],
            "roles": list(info.roles),
            "indices": {
                "docs": {
                    "count": sum(e["docs"] for e in local.values()),
                    "deleted": sum(e["deleted"] for e in local.values()),
                },
                "store": {"size_in_bytes": sum(e["size"] for e in local.values())},
                "shard_stats": {"total_count": counts.get(info.node_id, 0)},
            },
        }
    total = len(entries)
    return {
        "_nodes": {"total": total, "successful": len(stats), "failed": total - len(stats)},
        "cluster_name": node.cluster_name,
        "nodes": entries,
    }
