"""Errors of the demo node (development tool, not Elasticsearch) in Elasticsearch's JSON shape and status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def error_body(
    status: int,
    kind: str,
    reason: str,
    caused_by: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``{"error": {"root_cause": [...], "type", "reason", ...}, "status"}`` as Elasticsearch answers."""
    cause = {"type": kind, "reason": reason, **(extra or {})}
    error: dict[str, Any] = {"root_cause": [cause], **cause}
    if caused_by is not None:
        error["caused_by"] = dict(caused_by)
    return {"error": error, "status": status}


class EsError(Exception):
    """An error answered as ``status`` with Elasticsearch's error body (``kind`` is its ``type``)."""

    def __init__(
        self,
        status: int,
        kind: str,
        reason: str,
        *,
        extra: Mapping[str, Any] | None = None,
        caused_by: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.kind = kind
        self.reason = reason
        self.extra = dict(extra or {})
        self.caused_by = caused_by

    def body(self) -> dict[str, Any]:
        return error_body(self.status, self.kind, self.reason, self.caused_by, self.extra)

    def item_error(self) -> dict[str, Any]:
        """The ``error`` object of one ``_bulk`` item or one shard failure."""
        return {"type": self.kind, "reason": self.reason, **self.extra}


def index_not_found(index: str) -> EsError:
    return EsError(
        404,
        "index_not_found_exception",
        f"no such index [{index}]",
        extra={"resource.type": "index_or_alias", "resource.id": index, "index_uuid": "_na_", "index": index},
    )
