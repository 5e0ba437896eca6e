"""Helpers shared by the state store tests."""

from __future__ import annotations

from es_framework.shell.state_store import StateConflictError, StateStore


def increment(store: StateStore, times: int) -> None:
    """Add 1 to the document's ``count`` ``times`` times, re-reading and retrying on every conflict,
    as the scheduler does: concurrent writers must lose no increment."""
    for _ in range(times):
        while True:
            current = store.read()
            assert current is not None
            try:
                store.write({"count": current.document["count"] + 1}, current.version)
                break
            except StateConflictError:
                continue
