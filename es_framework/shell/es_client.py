"""The few Elasticsearch calls the scheduler makes, with ``requests``.

Plain JSON (no ``compatible-with`` media type), so the same calls work on Elasticsearch 7 and 8.
With the user's bundle (``--elasticsearchCertificatesUrl``) the ``elastic`` user's password
authenticates over plain HTTP (that bundle secures the transport only). With
``--elasticsearchSecurity auto`` the nodes serve HTTPS with certificates of the cluster's CA: once the
scheduler has opened the CA and the password at leadership it calls :func:`trust_cluster`, and every
client made from then on speaks HTTPS, verifies the node's certificate against the CA (host name
included: the certificate names the node's host and IP, :mod:`es_framework.core.certificates`) and
authenticates as ``elastic``. Every call has a short timeout: the scheduler never waits long on a node.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Mapping
from typing import Any

import requests

from es_framework.core.drain import EXCLUDE_SETTING, Observation
from es_framework.core.node_tls import NodeTrust

log = logging.getLogger("es_framework.shell.es_client")

TIMEOUT_S = 5.0

#: The scheduler's one cluster's trust (``auto``), set at leadership: :func:`trust_cluster`.
_trust: NodeTrust | None = None


def trust_cluster(ca_pem: str, password: str) -> NodeTrust:
    """From now on, every client reaches the nodes over HTTPS trusting ``ca_pem`` only, as
    ``elastic`` with ``password``. The CA goes to a file of its own (``requests`` verifies with a
    file); a certificate is public, the password stays in memory."""
    global _trust  # noqa: PLW0603 - one cluster per scheduler process; set once per leadership
    previous = _trust
    if previous is not None and _file_text(previous.ca_file) == ca_pem:
        # Every leadership of this process: the same CA (the state keeps it), the same file.
        _trust = NodeTrust(previous.ca_file, password)
        return _trust
    handle, path = tempfile.mkstemp(prefix="es-mesos-ca-", suffix=".pem")
    with os.fdopen(handle, "w", encoding="ascii") as out:
        out.write(ca_pem)
    _trust = NodeTrust(path, password)
    return _trust


def _file_text(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as source:
            return source.read()
    except (OSError, UnicodeError):
        return None


def cluster_trust() -> NodeTrust | None:
    """The trust :func:`trust_cluster` set, None without ``auto``."""
    return _trust


def forget_cluster_trust() -> None:
    """Back to plain HTTP (tests that ran a leadership with ``auto`` in this process)."""
    global _trust  # noqa: PLW0603
    if _trust is not None:
        with contextlib.suppress(OSError):
            os.unlink(_trust.ca_file)
    _trust = None


class ElasticsearchError(Exception):
    """A node did not answer, or answered with an error."""


class ElasticsearchClient:
    def __init__(self, http_address: str, *, password: str | None = None, timeout: float = TIMEOUT_S) -> None:
        trust = _trust
        self.base = f"{'https' if trust is not None else 'http'}://{http_address}"
        self.timeout = timeout
        self._session = requests.Session()
        #: Passed with every request: a Session's own ``verify`` loses to REQUESTS_CA_BUNDLE and
        #: CURL_CA_BUNDLE, which requests merges in per request (psf/requests issue 3829).
        self._verify: str | bool = True
        if trust is not None:
            self._verify = trust.ca_file
            self._session.auth = trust.auth
        elif password is not None:
            self._session.auth = ("elastic", password)

    def close(self) -> None:
        self._session.close()

    def _call(self, method: str, path: str, *, body: Any = None, ok: tuple[int, ...] = (200,)) -> Any:
        try:
            response = self._session.request(
                method, self.base + path, json=body, timeout=self.timeout, verify=self._verify
            )
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
