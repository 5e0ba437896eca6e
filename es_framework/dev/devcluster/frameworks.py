"""Frameworks as the development master knows them (development tool, not for production).

A :class:`Framework` is what a SUBSCRIBE registered: its ``FrameworkInfo``, the capabilities that
change the master's answers (``MULTI_ROLE``, ``PARTITION_AWARE``, ``GPU_RESOURCES``), its role and
failover timeout, and its :class:`Subscription` (the RecordIO event stream) while it is connected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from es_framework.dev.devcluster.recordio import RecordStream


class Subscription(RecordStream):
    """A framework's SUBSCRIBE stream."""

    def __init__(self, framework_id: str) -> None:
        super().__init__()
        self.framework_id = framework_id
        self.last_heartbeat = 0.0

    @property
    def owner(self) -> str:
        """Who reads the stream, for log lines."""
        return f"framework {self.framework_id}"


@dataclass
class Framework:
    id: str
    info: dict[str, Any]
    subscription: Subscription | None = None
    disconnected_at: float | None = None
    suppressed: bool = False

    @property
    def capabilities(self) -> frozenset[str]:
        caps = self.info.get("capabilities") or []
        return frozenset(str(c.get("type")) for c in caps if isinstance(c, dict))

    @property
    def multi_role(self) -> bool:
        return "MULTI_ROLE" in self.capabilities

    @property
    def partition_aware(self) -> bool:
        return "PARTITION_AWARE" in self.capabilities

    @property
    def role(self) -> str:
        roles = self.info.get("roles")
        if self.multi_role and isinstance(roles, list) and roles:
            return str(roles[0])
        return str(self.info.get("role") or "*")

    @property
    def failover_timeout(self) -> float:
        value = self.info.get("failover_timeout", 0.0)
        return float(value) if isinstance(value, int | float) else 0.0

    @property
    def connected(self) -> bool:
        return self.subscription is not None
