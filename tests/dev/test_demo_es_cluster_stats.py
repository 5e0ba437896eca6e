"""Issue 15: the demo node answers ``GET /_cluster/stats`` with the fields the README shows, in the
shape of Elasticsearch's cluster stats API (two demo node processes, documents written through one,
the stats asked of the other)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.dev.test_demo_es_cluster import NDJSON, Cluster, bulk_body
from tests.harness.demo_nodes import wait_until


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    made = Cluster(tmp_path, 2)
    try:
        for name in made.names:
            made.start(name)
        made.wait_health("n1", number_of_nodes=2)
        # Both nodes in the master's routing before the index is created (else it rebalances later).
        wait_until(
            lambda: len(requests.get(made.url("n1") + "/_cluster/state/nodes", timeout=10).json()["nodes"]) == 2,
            10,
            "2 nodes in the cluster state",
        )
        yield made
    finally:
        made.close()


def test_cluster_stats_counts_indices_shards_documents_and_nodes(cluster: Cluster) -> None:
    n1, n2 = (cluster.url(name) for name in cluster.names)
    settings = {"settings": {"number_of_shards": 2, "number_of_replicas": 1}}
    assert requests.put(n1 + "/idx", json=settings, timeout=30).status_code == 200
    written = requests.post(n1 + "/_bulk?refresh=true", data=bulk_body("idx", 0, 7), headers=NDJSON, timeout=30)
    assert written.json()["errors"] is False
    # Asked of n2, whose state must show every copy started (it may lag the master's for a moment).
    settled = cluster.health(
        "n2",
        wait_for_status="green",
        wait_for_no_relocating_shards="true",
        wait_for_no_initializing_shards="true",
        timeout="20s",
    )
    assert settled["timed_out"] is False, settled
    uuid = requests.get(n1 + "/", timeout=10).json()["cluster_uuid"]

    answer = requests.get(n2 + "/_cluster/stats", timeout=10)
    assert answer.status_code == 200, answer.text
    stats = answer.json()
    assert stats["_nodes"] == {"total": 2, "successful": 2, "failed": 0}
    assert (stats["cluster_name"], stats["cluster_uuid"], stats["status"]) == ("demo", uuid, "green")
    assert isinstance(stats["timestamp"], int)
    assert stats["indices"]["count"] == 1
    assert stats["indices"]["shards"] == {"total": 4, "primaries": 2, "replication": 1.0}
    assert stats["indices"]["docs"] == {"count": 7, "deleted": 0}
    assert stats["nodes"]["count"]["total"] == 2
    assert stats["nodes"]["count"]["master"] == stats["nodes"]["count"]["data"] == 2
    assert stats["nodes"]["count"]["coordinating_only"] == 0
    assert stats["nodes"]["versions"] == ["8.x-demo"]
    # Only GET: Elasticsearch has no other method on this path.
    assert requests.post(n2 + "/_cluster/stats", timeout=10).status_code == 400
