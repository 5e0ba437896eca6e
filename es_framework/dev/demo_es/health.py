"""Shard health of the demo node (development tool, not Elasticsearch), as Elasticsearch computes it:
a shard is red when its primary is not active, yellow when a replica is not, green otherwise; an index
or the cluster is as bad as its worst shard."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from es_framework.dev.demo_es.cluster_state import INITIALIZING, RELOCATING, UNASSIGNED, DemoClusterState, ShardGroup

GREEN, YELLOW, RED = "green", "yellow", "red"
_SEVERITY = {GREEN: 0, YELLOW: 1, RED: 2}


def shard_health(group: ShardGroup) -> str:
    if not group.primary.active:
        return RED
    return GREEN if all(c.active for c in group.copies) else YELLOW


def index_health(state: DemoClusterState, index: str) -> str:
    return max((shard_health(g) for g in state.groups(index)), key=_SEVERITY.__getitem__, default=GREEN)


def health(state: DemoClusterState, indices: Iterable[str] | None = None) -> dict[str, Any]:
    """The shard part of ``/_cluster/health`` (status and counts), as Elasticsearch computes it."""
    names = list(state.indices) if indices is None else list(indices)
    status = GREEN
    counts = Counter[str]()
    for name in names:
        for group in state.groups(name):
            status = max(status, shard_health(group), key=_SEVERITY.__getitem__)
            for copy in group.copies:
                if copy.active:
                    counts["active_shards"] += 1
                    counts["active_primary_shards"] += copy.primary
                if copy.state == RELOCATING:
                    counts["relocating_shards"] += 1
                elif copy.state == INITIALIZING:
                    counts["initializing_shards"] += 1
                elif copy.state == UNASSIGNED:
                    counts["unassigned_shards"] += 1
    total = sum(len(group.copies) for name in names for group in state.groups(name))
    return {
        "status": status,
        "active_primary_shards": counts["active_primary_shards"],
        "active_shards": counts["active_shards"],
        "relocating_shards": counts["relocating_shards"],
        "initializing_shards": counts["initializing_shards"],
        "unassigned_shards": counts["unassigned_shards"],
        "active_shards_percent_as_number": 100.0 if total == 0 else 100.0 * counts["active_shards"] / total,
    }
