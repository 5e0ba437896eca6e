"""The engine's state half: reading the stored state and writing a new one, compare-and-set
(:class:`Store`: ZooKeeper in production, a file in local mode). Kept apart from the event handling
in :mod:`es_framework.core.engine`, which mixes it in.

Writes are all or nothing: the engine acts (launches, kills, frees an id) only after the state that
records the act is written; on a conflict or a failed write it re-reads and acts on nothing.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol, runtime_checkable

from es_framework.config import Config
from es_framework.core.node_state import ClusterState
from es_framework.core.state_changes import StateChanges, state_changes
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


@runtime_checkable
class IncrementalStore(Store, Protocol):
    """A store that can write only what changed since the version it holds (O(changed) per write)."""

    def save_changes(self, changes: StateChanges, version: int) -> int:
        """As :meth:`Store.save` of ``changes.document()``, given only the changed node ids' entries
        over the stored ``version`` (which the caller wrote itself, so it knows what is stored)."""
        ...


class StatePersistence:
    """Mixed into :class:`~es_framework.core.engine.Engine`, which provides what is declared here."""

    config: Config
    state: ClusterState
    _store: Store
    _version: int
    #: The version and the state this engine last wrote itself: what the store holds at that version,
    #: so the next write need only say which node ids changed. None until a first whole write, and
    #: after anything else (a read, a failed write), when the next write is whole again.
    _written: tuple[int, ClusterState] | None = None

    def _read(self) -> tuple[ClusterState, int]:
        self._written = None  # what is read is what the next write is based on
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
        written, self._written = self._written, None  # unknown until this write's outcome is
        try:
            if written is not None and written[0] == self._version and isinstance(self._store, IncrementalStore):
                self._version = self._store.save_changes(state_changes(written[1], state), self._version)
            else:
                self._version = self._store.save(state_to_json(state), self._version)
        except StoreConflictError:
            log.error("state changed under us (another scheduler?); re-reading it and acting on nothing this time")
            self._safe_reload()
            return False
        except Exception:
            log.exception("could not write state; acting on nothing until it can be written")
            return False
        self.state = state
        self._written = (self._version, state)
        return True

    def _safe_reload(self) -> None:
        try:
            self.reload()
        except Exception:
            log.exception("could not re-read state")
