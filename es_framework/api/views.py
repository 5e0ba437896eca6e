"""The REST API's JSON views of the core's snapshots: :func:`to_json` (frozen dataclasses, mappings
and tuples as JSON values, time fields as ISO 8601), a node as ``GET /v1/tasks`` and
``GET /v1/nodes/<id>`` show it. Used by :mod:`es_framework.api.app` and its route modules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime
from typing import Any

from es_framework.api.core import NodeView


def iso_time(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


_TIME_FIELDS = frozenset(
    {"time", "started_at", "last_time", "blocked_at", "blocked_until", "created_at", "finished_at", "since"}
)


def to_json(value: object) -> Any:
    """Snapshots (frozen dataclasses, mappings, tuples) as JSON values; time fields as ISO 8601."""
    if is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: iso_time(getattr(value, f.name)) if f.name in _TIME_FIELDS else to_json(getattr(value, f.name))
            for f in fields(value)
        }
    if isinstance(value, Mapping):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    return value


def task_json(node: NodeView) -> dict[str, Any]:
    """A node as ``GET /v1/tasks`` shows it: the old framework's fields plus ours."""
    return {
        "id": node.task_id,
        "node_id": node.node_id,
        "name": node.name,
        "state": node.state,
        "hostname": node.hostname,
        "agent_id": node.agent_id,
        "http_address": node.http_address,
        "transport_address": node.transport_address,
        "volumes": to_json(node.volumes),
        "started_at": iso_time(node.started_at),
        "version": node.version,
    }


def node_json(node: NodeView) -> dict[str, Any]:
    """A node as ``GET /v1/nodes/<id>`` shows it: the task fields, health and history."""
    return {
        **task_json(node),
        "healthy": node.healthy,
        "outdated": node.outdated,
        "history": to_json(node.history),
    }
