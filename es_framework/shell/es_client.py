"""The few Elasticsearch calls the scheduler makes, over plain HTTP with ``requests``.

Plain JSON (no ``compatible-with`` media type), so the same calls work on Elasticsearch 7 and 8.
With security on, the ``elastic`` user's password authenticates (HTTP TLS stays off: transport
TLS is what the framework configures). Every call has a short timeout: the scheduler never
waits long on a node.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import requests

from es_framework.core.drain import EXCLUDE_SETTING, Observation

log = logging.getLogger("es_framework.shell.es_client")

TIMEOUT_S = 5.0


class ElasticsearchError(Exception):
    """A node did not answer, or answered with an error."""


class ElasticsearchClient:
    def __init__(self, http_address: str, *, password: str | None = None, timeout: float = TIMEOUT_S) -> None:
        self.base = f"http://{http_address}"
        self.timeout = timeout
        self._session = requests.Session()
        if password is not None:
            self._session.auth = ("elastic", password)

    def close(self) -> None:
        self._session.close()

    def _call(self, method: str, path: str, *, body: Any = None, ok: tuple[int, ...] = (200,)) -> Any:
        try:
            response = self._session.request(method, self.base + path, json=body, timeout=self.timeout)
        except requests.RequestException as error:
            raise ElasticsearchError(f"{method} {self.base}{path}: {error}") from error
        if response.status_code not in ok:
            raise ElasticsearchError(f"{method} {self.base}{path}: HTTP {response.status_code}: {response.text[:300]}")
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError as error:
            raise ElasticsearchError(f"{method} {self.base}{path}: not JSON: {error}") from error

    # --- reads ---------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        answer = self._call("GET", "/_cluster/health", ok=(200, 408))
        return answer if isinstance(answer, dict) else {}

    def replicas_by_index(self) -> dict[str, int]:
        rows = self._call("GET", "/_cat/indices?format=json&h=index,rep")
        out: dict[str, int] = {}
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, Mapping) and str(row.get("rep", "")).isdigit():
                out[str(row.get("index"))] = int(row["rep"])
        return out

    def observe(self) -> Observation:
        """Shards per node, shards in flight, the exclusion list and the voting exclusions."""
        # Fail closed: an answer this cannot read is "not safe", never "no shards" (a drain that
        # read an empty list would stop a node that still holds data).
        where = f"GET {self.base}/_cat/shards"
        rows = self._call("GET", "/_cat/shards?format=json&h=index,shard,prirep,state,node")
        if not isinstance(rows, list) or not all(isinstance(row, Mapping) for row in rows):
            raise ElasticsearchError(f"{where}: unreadable answer {str(rows)[:200]!r}; not safe to go on")
        by_node: dict[str, int] = {}
        for row in rows:
            node = row.get("node")
            if isinstance(node, str) and node:
                # A relocating copy shows as "source -> ip id target": it still sits on the source.
                source = node.split(" -> ")[0].strip()
                by_node[source] = by_node.get(source, 0) + 1
        health = self.health()
        return Observation(
            shards_by_node=by_node,
            unassigned_shards=self._count(health, "unassigned_shards"),
            relocating_shards=self._count(health, "relocating_shards"),
            initializing_shards=self._count(health, "initializing_shards"),
            excluded_names=self.excluded_names(),
            voting_exclusions=self.voting_exclusions(),
        )

    def _count(self, health: Mapping[str, Any], key: str) -> int:
        """A shard count of ``_cluster/health``; a missing or unreadable one is not 0 but "not safe"."""
        value = health.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ElasticsearchError(
                f"GET {self.base}/_cluster/health: {key} is {value!r}, not a shard count; not safe to go on"
            )
        return value

    def excluded_names(self) -> tuple[str, ...]:
        answer = self._call("GET", "/_cluster/settings?flat_settings=true")
        value: Any = None
        for scope in ("transient", "persistent"):  # transient wins in Elasticsearch
            settings = answer.get(scope) if isinstance(answer, Mapping) else None
            if isinstance(settings, Mapping) and settings.get(EXCLUDE_SETTING):
                value = settings[EXCLUDE_SETTING]
                break
        if isinstance(value, list):
            return tuple(str(v).strip() for v in value if str(v).strip())
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        return ()

    def voting_exclusions(self) -> tuple[str, ...]:
        answer = self._call("GET", "/_cluster/state/metadata?filter_path=metadata.cluster_coordination")
        coordination = ((answer or {}).get("metadata") or {}).get("cluster_coordination") or {}
        exclusions = coordination.get("voting_config_exclusions") or []
        return tuple(str(e.get("node_name")) for e in exclusions if isinstance(e, Mapping) and e.get("node_name"))

    def allocation_explain(self) -> str:
        """Why the first unassigned shard cannot be placed, in Elasticsearch's words ("" if none)."""
        try:
            answer = self._call("GET", "/_cluster/allocation/explain")
        except ElasticsearchError as error:
            return str(error) if "HTTP 400" not in str(error) else ""
        explanation = answer.get("allocate_explanation") or answer.get("explanation") or ""
        deciders = [
            d.get("explanation")
            for node in answer.get("node_allocation_decisions") or []
            if isinstance(node, Mapping)
            for d in node.get("deciders") or []
            if isinstance(d, Mapping) and d.get("explanation")
        ]
        return "; ".join(str(x) for x in [explanation, *deciders[:3]] if x)

    # --- writes --------------------------------------------------------------------------------------

    def set_excluded_names(self, names: tuple[str, ...]) -> None:
        value = ",".join(names) if names else None
        self._call("PUT", "/_cluster/settings", body={"persistent": {EXCLUDE_SETTING: value}})

    def add_voting_exclusions(self, names: tuple[str, ...]) -> None:
        self._call("POST", f"/_cluster/voting_config_exclusions?node_names={','.join(names)}&timeout=30s")

    def clear_voting_exclusions(self) -> None:
        self._call("DELETE", "/_cluster/voting_config_exclusions?wait_for_removal=false")
