"""Internal HTTP calls between demo nodes (development tool, not Elasticsearch): cluster state publication,
master actions and shard operations travel as JSON, to the peers' HTTP ports, or to their transport ports
inside mutual TLS when transport TLS is on (see :mod:`.channel`; the real transport protocol is binary and
carries all of it)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from es_framework.dev.demo_es.channel import Reachable, internal_url

INTERNAL_TIMEOUT = 10.0
#: Internal calls go straight to the peers, never through an HTTP proxy from the environment.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def call(
    target: Reachable, method: str, path: str, body: Any = None, timeout: float = INTERNAL_TIMEOUT
) -> tuple[int, Any]:
    """One JSON request to another demo node: (status, decoded body)."""
    url, context = internal_url(target, path)
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    opener = _opener
    if context is not None:
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
        )
    try:
        with opener.open(request, timeout=timeout) as response:
            return int(response.status), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        try:
            return int(error.code), json.loads(error.read() or b"null")
        except ValueError:
            return int(error.code), None
