"""What every request action of the demo node (development tool, not Elasticsearch) needs: the current
cluster state, index names resolved, internal calls to other nodes, Elasticsearch's parameter parsing."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from typing import Any

from es_framework.dev.demo_es.channel import Reachable
from es_framework.dev.demo_es.client import call
from es_framework.dev.demo_es.cluster_state import DemoClusterState
from es_framework.dev.demo_es.errors import EsError, index_not_found
from es_framework.dev.demo_es.node_api import NodeAPI

STATE_WAIT = 5.0


def post(target: Reachable, path: str, body: Any, timeout: float = 10.0) -> tuple[int, Any]:
    """POST to another node's internal API."""
    return call(target, "POST", path, body, timeout=timeout)


def current_state(node: NodeAPI) -> DemoClusterState:
    """This node's cluster state, waiting a little for the first one to arrive from the master."""
    state = node.current() or node.wait_for(lambda _: True, STATE_WAIT)
    if state is None:
        raise EsError(
            503, "cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];"
        )
    return state


def resolve(state: DemoClusterState, expression: str | None, *, allow_missing: bool = False) -> list[str]:
    """Index names for ``a,b``, ``logs-*``, ``_all`` or nothing (all); a missing concrete name is a 404."""
    if not expression or expression in ("_all", "*"):
        return sorted(state.indices)
    names: list[str] = []
    for raw in expression.split(","):
        part = raw.strip()
        if "*" in part or "?" in part:
            names.extend(n for n in sorted(state.indices) if fnmatch.fnmatchcase(n, part))
        elif part in state.indices:
            names.append(part)
        elif not allow_missing:
            raise index_not_found(part)
    return list(dict.fromkeys(names))


def parse_time(text: str | None, default: float) -> float:
    """Elasticsearch time values (``30s``, ``500ms``, ``1m``) in seconds."""
    if not text:
        return default
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|nanos|micros)?", text.strip())
    if match is None:
        raise EsError(
            400, "illegal_argument_exception", f"failed to parse setting [timeout] with value [{text}] as a time value"
        )
    value = float(match.group(1))
    factor = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "nanos": 1e-9, "micros": 1e-6, None: 1}[
        match.group(2)
    ]
    return value * factor


def int_param(params: Mapping[str, str], body: Mapping[str, Any], key: str, default: int) -> int:
    raw = params.get(key, body.get(key, default))
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise EsError(
            400, "illegal_argument_exception", f"Failed to parse int parameter [{key}] with value [{raw}]"
        ) from None
