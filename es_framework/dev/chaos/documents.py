"""The documents of a ``process``-mode chaos run: indexed into the demo Elasticsearch nodes once the
cluster first converged, before any fault, and counted whenever the cluster is green afterwards
(invariant ``no_document_lost``).

The nodes are found as a client finds them, through the leader's ``GET /v1/cluster/endpoints``; every
request tries each node in turn (a node may be the one a fault just killed). The index has one shard
per node and one replica, so that one node away never takes a document's last copy with it, and the
demo node keeps each shard copy in its ``path.data`` (the node's data volume), so that a node
relaunched on its volumes brings its copies back (``es_framework/dev/demo_es/persistence.py``).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import requests

from es_framework.dev.chaos.world import World

logger = logging.getLogger(__name__)

INDEX = "chaos"
#: Documents indexed before the faults.
DOCS = 300
#: How long a checkpoint waits for green after a fault's convergence (a relaunched node recovers
#: its shard copies first): a cluster not green by then is not counted, and says so.
GREEN_WAIT_S = 30.0
#: After the run: how long the last count waits for green.
FINAL_GREEN_WAIT_S = 120.0


class Documents:
    """The run's documents in ``world``'s demo Elasticsearch cluster."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.indexed = 0

    def _nodes(self) -> list[str]:
        status, body = self.world.api("GET", "/v1/cluster/endpoints")
        if status != 200 or not isinstance(body, dict):
            return []
        return [f"http://{address}" for address in body.get("http", [])]

    def _request(self, method: str, path: str, body: str | None = None, ndjson: bool = False) -> tuple[int, Any]:
        """The first answer of any node (``(0, reason)`` when none answers)."""
        reason = "no node endpoints"
        headers = {"Content-Type": "application/x-ndjson" if ndjson else "application/json"}
        for node in self._nodes():
            try:
                answer = requests.request(method, node + path, data=body, headers=headers, timeout=10)
            except requests.RequestException as problem:
                reason = str(problem)
                continue
            try:
                return answer.status_code, answer.json()
            except ValueError:
                return answer.status_code, answer.text
        return 0, reason

    def green(self, timeout: float) -> bool:
        """Whether the cluster is green within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            status, body = self._request("GET", "/_cluster/health")
            if status == 200 and isinstance(body, dict) and body.get("status") == "green":
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.25)

    def count(self) -> int | None:
        """The index's document count; ``None`` when no node could answer it completely."""
        status, body = self._request("GET", f"/{INDEX}/_count")
        if status != 200 or not isinstance(body, dict) or (body.get("_shards") or {}).get("failed"):
            return None
        return int(body["count"])

    def index(self, nodes: int, timeout: float = 120.0) -> str | None:
        """Index :data:`DOCS` documents once the cluster is green; ``None`` when done, else why not."""
        if not self.green(timeout):
            return f"the cluster was not green within {timeout:.0f} s"
        settings = {"settings": {"number_of_shards": nodes, "number_of_replicas": 1}}
        status, body = self._request("PUT", f"/{INDEX}", json.dumps(settings))
        if status != 200:
            return f"creating the index: {status} {str(body)[:300]}"
        lines = []
        for n in range(DOCS):
            lines.append(json.dumps({"index": {"_index": INDEX, "_id": str(n)}}))
            lines.append(json.dumps({"n": n, "text": f"document {n}"}))
        status, body = self._request("POST", "/_bulk", "\n".join(lines) + "\n", ndjson=True)
        if status != 200 or not isinstance(body, dict) or body.get("errors"):
            return f"indexing: {status} {str(body)[:300]}"
        self._request("POST", f"/{INDEX}/_refresh")
        self.indexed = DOCS
        counted = self.count()
        if counted != DOCS:
            return f"counted {counted} right after indexing {DOCS}"
        if not self.green(timeout):
            return f"the cluster was not green within {timeout:.0f} s after indexing"
        return None
