"""A :class:`~es_framework.core.volumes.VolumeRemoval` as JSON, for the state document (the field
``volume_removals``: a list of these objects) and the volume inventory."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from es_framework.core.volumes import VolumeRemoval


def removal_to_json(removal: VolumeRemoval) -> dict[str, Any]:
    """A removal as JSON (for the state document and the inventory)."""
    return {
        "node_id": removal.node_id,
        "reason": removal.reason,
        "released_at": removal.released_at,
        "volumes": list(removal.volumes),
        "task_id": removal.task_id,
        "agent_id": removal.agent_id,
        "hostname": removal.hostname,
        "started_at": removal.started_at,
        "ended_at": removal.ended_at,
        "attempts": removal.attempts,
        "last_error": removal.last_error,
        "removed_at": removal.removed_at,
        "status": removal.status(),
    }


def removal_from_json(item: object, where: str = "volume_removals") -> VolumeRemoval:
    """The inverse of :func:`removal_to_json`; :class:`ValueError` naming the field that is wrong."""
    if not isinstance(item, Mapping):
        raise ValueError(f"{where}: a removal must be an object")

    def number(key: str, *, optional: bool = True) -> float | None:
        value = item.get(key)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where}: '{key}' must be a number, got {value!r}")
        return float(value)

    def text(key: str, *, optional: bool = True) -> str | None:
        value = item.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value:
            raise ValueError(f"{where}: '{key}' must be a non-empty string, got {value!r}")
        return value

    node_id = item.get("node_id")
    if isinstance(node_id, bool) or not isinstance(node_id, int) or node_id < 1:
        raise ValueError(f"{where}: 'node_id' must be an integer of 1 or greater, got {node_id!r}")
    volumes = item.get("volumes")
    if not isinstance(volumes, list) or not volumes or not all(isinstance(v, str) and v for v in volumes):
        raise ValueError(f"{where}: 'volumes' must be a non-empty list of volume names, got {volumes!r}")
    attempts = item.get("attempts", 0)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
        raise ValueError(f"{where}: 'attempts' must be a whole number, got {attempts!r}")
    released_at = number("released_at", optional=False)
    reason = text("reason", optional=False)
    if released_at is None or reason is None:  # unreachable: required fields raise above
        raise ValueError(f"{where}: 'released_at' and 'reason' are required")
    return VolumeRemoval(
        node_id=node_id,
        reason=reason,
        released_at=released_at,
        volumes=tuple(volumes),
        task_id=text("task_id"),
        agent_id=text("agent_id"),
        hostname=text("hostname"),
        started_at=number("started_at"),
        ended_at=number("ended_at"),
        attempts=attempts,
        last_error=text("last_error"),
        removed_at=number("removed_at"),
    )
