"""The engine's state half: reading the stored state and writing a new one, compare-and-set
(:class:`Store`: ZooKeeper in production, a file in local mode). Kept apart from the event handling
in :mod:`es_framework.core.engine`, which mixes it in.

Writes are all or nothing: the engine acts (launches, kills, frees an id) only after the state that
records the act is written; on a conflict or a failed write it re-reads and acts on nothing.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from es_framework.config import Config
from es_framework.core.node_state import ClusterState
from es_framework.core.state_document import state_from_json, state_to_json

log = logging.getLogger("es_framework.core.engine")


class StoreConflictError(Exception):
    """Someone else wrote the state since we read it (compare-and-set failed)."""


class Store(Protocol):
    """Where the engine's state lives (ZooKeeper in production, a file in local mode)."""

    def load(self) -> tuple[dict[str, Any] | None, int]:
        """The stored document (None if there is none yet) and its version."""
        ...

    def save(self, document: dict[str, Any], version: int) -> int:
        """Write if the stored version is still ``version``; return the new version.
        Raise :class:`StoreConflictError` on a version mismatch, anything else on failure."""
        ...


class StatePersistence:
    """Mixed into :class:`~es_framework.core.engine.Engine`, which provides what is declared here."""

    config: Config
    state: ClusterState
    _store: Store
    _version: int

    def _read(self) -> tuple[ClusterState, int]:
        document, version = self._store.load()
        if document is None:
            return ClusterState(desired_nodes=self.config.elasticsearch_nodes), version
        state = state_from_json(document, self.config.framework_name)
        if state.desired_nodes != self.config.elasticsearch_nodes:
            log.warning(
                "stored desired node count %d wins over --elasticsearchNodes %d (change it through the API)",
                state.desired_nodes,
                self.config.elasticsearch_nodes,
            )
        return state, version

    def reload(self) -> None:
        """Re-read state (after a conflict, or when the store becomes trustworthy again)."""
        self.state, self._version = self._read()

    def _persist(self, state: ClusterState) -> bool:
        """Write ``state``; on success it becomes the engine's state. False (state re-read) on failure."""
        try:
            self._version = self._store.save(state_to_json(state), self._version)
        except StoreConflictError:
            log.error("state changed under us (another scheduler?); re-reading it and acting on nothing this time")
            self._safe_reload()
            return False
        except Exception:
            log.exception("could not write state; acting on nothing until it can be written")
            return False
        self.state = state
        return True

    def _safe_reload(self) -> None:
        try:
            self.reload()
        except Exception:
            log.exception("could not re-read state")
