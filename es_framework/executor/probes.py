"""What the executor asks its node over HTTP: ``GET /`` (does it answer, and in which cluster) and
``GET /_cluster/health``.

``GET /`` answers ``cluster_uuid`` ``_na_`` (:data:`es_framework.contract.NO_CLUSTER_UUID`) while the
node has not joined a formed cluster; :func:`node_identity` turns that into a
:class:`~es_framework.contract.NodeReport` without a uuid, the form the scheduler reads.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any

from es_framework.contract import NO_CLUSTER_UUID, NodeReport

HTTP_TIMEOUT = 2.0


def http_get(url: str, authorization: str | None = None) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) of ``GET url``; an HTTP error status is an answer, not an exception."""
    headers = {"Accept": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
            return int(response.status), json.loads(response.read().decode("utf-8") or "{}")
    except urllib.error.HTTPError as error:
        try:
            body = json.loads(error.read().decode("utf-8") or "{}")
        except ValueError:
            body = {}
        return int(error.code), body if isinstance(body, dict) else {}


def basic_authorization(password: str | None) -> str | None:
    """The ``elastic`` user's Authorization header (security enabled), else None."""
    if not password:
        return None
    return "Basic " + base64.b64encode(f"elastic:{password}".encode()).decode("ascii")


def node_identity(base_url: str, authorization: str | None = None) -> NodeReport | None:
    """``GET /``: None while the node does not answer 200; else what it says about itself (no
    ``cluster_uuid`` while it has not joined a formed cluster)."""
    try:
        status, body = http_get(base_url + "/", authorization)
    except (OSError, ValueError):
        return None
    if status != 200:
        return None
    version = body.get("version")
    number = version.get("number") if isinstance(version, dict) else None
    uuid = body.get("cluster_uuid")
    name = body.get("name")
    return NodeReport(
        cluster_uuid=str(uuid) if uuid and uuid != NO_CLUSTER_UUID else None,
        version=str(number) if number else None,
        node_name=str(name) if name else None,
    )


def node_healthy(base_url: str, authorization: str | None = None) -> bool:
    """Whether ``GET /_cluster/health`` answers 200 with status green or yellow."""
    try:
        status, body = http_get(base_url + "/_cluster/health?timeout=1s", authorization)
    except (OSError, ValueError):
        return False
    return status == 200 and body.get("status") in ("green", "yellow")
