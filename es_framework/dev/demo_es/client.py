"""Internal HTTP calls between demo nodes (development tool, not Elasticsearch): cluster state publication,
master actions and shard operations travel as JSON over the nodes' HTTP ports (the real transport protocol
is binary and on the transport port; the demo's transport port only answers discovery probes)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

INTERNAL_TIMEOUT = 10.0
#: Internal calls go straight to the peers, never through an HTTP proxy from the environment.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def call(address: str, method: str, path: str, body: Any = None, timeout: float = INTERNAL_TIMEOUT) -> tuple[int, Any]:
    """One JSON request to another demo node's HTTP address (``host:port``): (status, decoded body)."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(
        f"http://{address}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with _opener.open(request, timeout=timeout) as response:
            return int(response.status), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        try:
            return int(error.code), json.loads(error.read() or b"null")
        except ValueError:
            return int(error.code), None
