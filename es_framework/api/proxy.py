"""``/v1/es/...``: read-only requests passed to a running Elasticsearch node.

The proxy lets an operator look at the cluster through the scheduler's one address without knowing
where the nodes run. It passes on only what reads (Elasticsearch's REST API reference):

- ``GET _cluster/health`` and ``GET _cluster/health/<index>`` (cluster health API),
- ``GET _cluster/stats`` (cluster stats API),
- ``GET _cat/<what>`` and ``GET _cat/<what>/<index>`` (the compact and aligned text APIs),
- ``GET`` or ``POST`` ``[<index>/]_search`` and ``[<index>/]_count``: Elasticsearch's search and count
  APIs accept both methods (https://www.elastic.co/guide/en/elasticsearch/reference/8.x/search-search.html,
  .../search-count.html), and clients send a query body with POST; neither changes anything.

(Cluster health: .../cluster-health.html, cluster stats: .../cluster-stats.html, ``_cat``:
.../cat.html, all under https://www.elastic.co/guide/en/elasticsearch/reference/8.x/.)

Anything else under ``/v1/es/`` is refused, naming what passes: 400 for another path, 405 (with
``Allow``) for another method on a passed path. The API token (when the API has one) guards every
proxied request, GET included: a search reads the cluster's data.

The node: the ``X-ElasticSearch-Host`` header picks one (:func:`pick_node_http`), else the running
nodes take turns. Only the query string, the body and its Content-Type reach the node.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import requests

from es_framework.api.core import NodeView
from es_framework.core.node_tls import NodeTrust

logger = logging.getLogger("es_framework.api.app")

RUNNING = "TASK_RUNNING"
_JSON = "application/json"
#: Proxied Elasticsearch answers larger than this are refused rather than held in memory.
MAX_PROXY_BYTES = 16 * 1024 * 1024

#: An index name or expression (``logs``, ``logs-*``, ``a,b``): what Elasticsearch allows in a name
#: (lowercase, no ``\\ / * ? " < > | , #`` but the wildcard and the comma of an expression), and not
#: starting with ``_`` (an API) or ``.`` (so ``..`` is never a path segment).
INDEX_PATTERN = r"[a-z0-9*][a-z0-9._*,+-]*"
#: (path pattern, methods) of what the proxy passes on; the app routes each with exactly its methods
#: (so a wrong method is its usual 405 with ``Allow``) and everything else under /v1/es/ to a 400.
PASSED: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (re.compile(rf"_cluster/health(?:/{INDEX_PATTERN})?"), ("GET",)),
    (re.compile(r"_cluster/stats"), ("GET",)),
    (re.compile(rf"_cat/[a-z_]+(?:/{INDEX_PATTERN})?"), ("GET",)),
    (re.compile(rf"(?:{INDEX_PATTERN}/)?_(?:search|count)"), ("GET", "POST")),
)
#: What the refusals name.
PASSED_TEXT = (
    "GET _cluster/health[/<index>], GET _cluster/stats, GET _cat/<what>[/<index>], "
    "GET or POST [<index>/]_search and [<index>/]_count"
)


@dataclass(frozen=True)
class ProxyAnswer:
    """What the API answers: the node's answer passed through, or the proxy's own error."""

    status: int
    body: bytes
    content_type: str = _JSON
    headers: tuple[tuple[str, str], ...] = ()
    #: The proxy's own refusal (status and message), not the node's answer.
    error: str | None = None


def refusal(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> ProxyAnswer:
    return ProxyAnswer(status, b"", _JSON, headers, error=message)


def check_passed(method: str, path: str) -> ProxyAnswer | None:
    """None when ``method`` on Elasticsearch's ``path`` (without the leading ``/``) is passed on;
    else the refusal (400 for a path the proxy does not pass, 405 for a method)."""
    for pattern, methods in PASSED:
        if pattern.fullmatch(path):
            if method in methods:
                return None
            allowed = ", ".join(methods)
            return refusal(
                405,
                f"{method} /v1/es/{path} is not allowed: the proxy is read-only and passes {allowed} here "
                f"(it passes {PASSED_TEXT})",
                (("Allow", allowed),),
            )
    return refusal(
        400,
        f"/v1/es/{path[:100]} is not passed to Elasticsearch: the proxy is read-only and passes {PASSED_TEXT}",
    )


class NoNodeError(Exception):
    """No node can answer a proxied request; ``status`` is 404 (no such node) or 503 (none running)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def pick_node_http(nodes: Sequence[NodeView], wanted: str | None, turn: int = 0) -> str:
    """The ``host:port`` to proxy to.

    ``wanted`` (the ``X-ElasticSearch-Host`` header) names a node by hostname, HTTP address or node
    name; without it the running nodes take turns (``turn`` counts requests). Raises
    :class:`NoNodeError` 404 when nothing matches ``wanted``, 503 when no matching node runs.
    """
    candidates = list(nodes)
    if wanted is not None:
        wanted = wanted.strip()
        candidates = [n for n in nodes if wanted in (n.hostname, n.http_address, n.name)]
        if not candidates:
            raise NoNodeError(404, f"no node matches X-ElasticSearch-Host {wanted!r}")
    running = [n for n in candidates if n.state == RUNNING and n.http_address]
    if not running:
        where = f" matching {wanted!r}" if wanted is not None else ""
        raise NoNodeError(503, f"no node{where} is running")
    address = running[turn % len(running)].http_address
    assert address is not None  # filtered above; mypy cannot follow the list comprehension
    return address


def forward(
    session: requests.Session,
    address: str,
    method: str,
    path: str,
    *,
    query: str,
    body: bytes,
    content_type: str | None,
    timeout: float,
    trust: NodeTrust | None = None,
) -> ProxyAnswer:
    """Send one passed request (checked by :func:`check_passed`) to the node at ``address``; with
    ``trust`` (``--elasticsearchSecurity auto``) over HTTPS, the node's certificate verified against
    the cluster CA, as the ``elastic`` user."""
    url = f"{'https' if trust is not None else 'http'}://{address}/{path}"
    secured: dict[str, Any] = {"verify": trust.ca_file, "auth": trust.auth} if trust is not None else {}
    # Pass the query through as parsed pairs so that nothing but a query string reaches the node.
    params = parse_qs(query, keep_blank_values=True)
    headers = {"Content-Type": content_type or _JSON} if body else {}
    try:
        with session.request(
            method, url, params=params, data=body or None, headers=headers, timeout=timeout, stream=True, **secured
        ) as answer:
            raw = answer.raw.read(MAX_PROXY_BYTES + 1, decode_content=True)
            status = answer.status_code
            answered_type = answer.headers.get("Content-Type", _JSON)
    except requests.RequestException as problem:
        logger.warning("proxy to %s failed: %s", url, problem)
        return refusal(502, f"Elasticsearch node {address} did not answer: {problem}")
    if len(raw) > MAX_PROXY_BYTES:
        return refusal(502, f"Elasticsearch node {address} answered more than {MAX_PROXY_BYTES} bytes")
    return ProxyAnswer(status, raw, answered_type)
