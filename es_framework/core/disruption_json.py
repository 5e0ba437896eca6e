"""The disruption ledger in the state document: one entry per node id (kept with that node id),
versioned; a malformed entry is refused with a :class:`ValueError` naming it."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from es_framework.core.disruption_ledger import Disruption, Kind, ShutdownType

LEDGER_SCHEMA = 1
MAX_REASON = 1000


def ledger_to_json(ledger: Mapping[int, Disruption]) -> dict[str, dict[str, Any]]:
    """Node id (decimal) -> its entry: what goes with each node id in the state."""
    return {
        str(i): {
            "schema": LEDGER_SCHEMA,
            "kind": e.kind.value,
            "shutdown": e.shutdown.value,
            "requested_at": e.requested_at,
            "started_at": e.started_at,
            "task_id": e.task_id,
            "reason": e.reason,
        }
        for i, e in sorted(ledger.items())
    }


def ledger_from_json(raw: Mapping[str, object]) -> Mapping[int, Disruption]:
    out: dict[int, Disruption] = {}
    for key, entry in raw.items():
        where = f"disruption {key!r}"
        if not (isinstance(key, str) and key.isdigit() and not key.startswith("0")):
            raise ValueError(f"{where}: not a node id")
        if not isinstance(entry, Mapping) or entry.get("schema") != LEDGER_SCHEMA:
            raise ValueError(f"{where}: not an entry of schema {LEDGER_SCHEMA}")
        try:
            kind, shutdown = Kind(str(entry.get("kind"))), ShutdownType(str(entry.get("shutdown")))
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        requested, started = entry.get("requested_at"), entry.get("started_at")
        task_id, reason = entry.get("task_id"), entry.get("reason", "")
        if (
            not isinstance(requested, int | float)
            or isinstance(requested, bool)
            or not (started is None or (isinstance(started, int | float) and not isinstance(started, bool)))
            or not (task_id is None or isinstance(task_id, str))
            or not isinstance(reason, str)
            or len(reason) > MAX_REASON
        ):
            raise ValueError(f"{where}: a field is missing or has the wrong type")
        out[int(key)] = Disruption(
            int(key),
            kind,
            shutdown,
            float(requested),
            float(started) if started is not None else None,
            task_id,
            reason,
        )
    return MappingProxyType(out)
