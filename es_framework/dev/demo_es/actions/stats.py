"""``GET /_cluster/stats`` of the demo node (development tool, not Elasticsearch).

The cluster stats API (https://www.elastic.co/guide/en/elasticsearch/reference/8.x/cluster-stats.html)
answers a cluster-wide summary: ``_nodes`` (total, successful, failed), ``cluster_name``,
``cluster_uuid``, ``timestamp`` (epoch milliseconds), ``status`` (the cluster health), ``indices``
(``count``, ``shards.total``/``primaries``/``replication``, ``docs.count``/``deleted``, …) and
``nodes`` (``count.total`` and a count per role, ``versions``, …). The demo node fills in those
fields, in that shape, from its cluster state and a count over every shard; it leaves out what it
does not have (store sizes, caches, segments, JVM, OS, plugins, mappings analysis).
"""

from __future__ import annotations

import time
from typing import Any

from es_framework.dev.demo_es.actions import search
from es_framework.dev.demo_es.actions.common import current_state
from es_framework.dev.demo_es.errors import EsError
from es_framework.dev.demo_es.health import health
from es_framework.dev.demo_es.node_api import NodeAPI

#: The roles Elasticsearch 8 counts in ``nodes.count`` (besides ``total`` and ``coordinating_only``).
ROLES = (
    "data",
    "data_cold",
    "data_content",
    "data_frozen",
    "data_hot",
    "data_warm",
    "ingest",
    "master",
    "ml",
    "remote_cluster_client",
    "transform",
    "voting_only",
)


def cluster_stats(node: NodeAPI) -> dict[str, Any]:
    if node.cluster_uuid is None:
        raise EsError(503, "master_not_discovered_exception", "no master discovered by the demo node")
    state = current_state(node)
    shards = health(state)
    docs = search.count(node, None, {}, {})["count"] if state.indices else 0
    members = node.members()
    primaries, total = shards["active_primary_shards"], shards["active_shards"]
    counts: dict[str, int] = {"total": len(members), "coordinating_only": sum(1 for m in members if not m.roles)}
    counts.update({role: sum(1 for m in members if role in m.roles) for role in ROLES})
    return {
        "_nodes": {"total": len(members), "successful": len(members), "failed": 0},
        "cluster_name": node.cluster_name,
        "cluster_uuid": state.cluster_uuid,
        "timestamp": int(time.time() * 1000),
        "status": shards["status"],
        "indices": {
            "count": len(state.indices),
            "shards": {
                "total": total,
                "primaries": primaries,
                "replication": (total - primaries) / primaries if primaries else 0.0,
            },
            "docs": {"count": docs, "deleted": 0},
        },
        "nodes": {"count": counts, "versions": sorted({m.version for m in members})},
    }
