"""The cluster's state store as the scheduler process and its commands use it: where it lives
(:func:`state_url`), leading it (:func:`leading`, :func:`lead_state`), and the engine's view of it
(:class:`EngineStore`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from es_framework.config import Config
from es_framework.core.engine_state import StoreConflictError
from es_framework.core.node_state import ClusterState
from es_framework.core.state_changes import StateChanges
from es_framework.core.state_document import state_from_json, state_to_json
from es_framework.shell.state_store import (
    StateConflictError,
    StateStore,
    ZooKeeperStateStore,
    open_state_store,
    state_url_for_mesos_master,
)


class EngineStore:
    """The engine's :class:`~es_framework.core.engine_state.Store` on top of a :class:`StateStore`."""

    #: The version the engine holds before any document exists.
    NO_DOCUMENT = -1

    def __init__(self, store: StateStore) -> None:
        self._store = store

    def load(self) -> tuple[dict[str, Any] | None, int]:
        stored = self._store.read()
        return (None, self.NO_DOCUMENT) if stored is None else (stored.document, stored.version)

    def save(self, document: dict[str, Any], version: int) -> int:
        try:
            if version == self.NO_DOCUMENT:
                return self._store.create(document).version
            return self._store.write(document, version).version
        except StateConflictError as exc:
            raise StoreConflictError(str(exc)) from exc

    def save_changes(self, changes: StateChanges, version: int) -> int:
        """Only the changed node znodes (ZooKeeper, layout 2); the one file of a file store is
        rewritten whole (it is for a single machine)."""
        if isinstance(self._store, ZooKeeperStateStore) and version != self.NO_DOCUMENT:
            try:
                written = self._store.write_changes(changes.cluster, changes.split_fields, changes.entries, version)
            except StateConflictError as exc:
                raise StoreConflictError(str(exc)) from exc
            if written is not None:
                return written
        return self.save(changes.document(), version)


def state_url(config: Config) -> str:
    """Where state lives: ``--frameworkStateUrl``, else the ZooKeeper of ``--zookeeperMesosUrl``.

    With an HTTP master and no state URL there is nowhere durable to keep it, and state lost on a
    redeploy is how the Java framework lost clusters: refuse."""
    if config.state_url is not None:
        return config.state_url.reveal()
    if config.local_mode:
        return local_state_url(config)
    derived = state_url_for_mesos_master(config.mesos_master)
    if derived is None:
        raise ValueError(
            "--frameworkStateUrl is needed with an HTTP Mesos master: give zk://host:port[,...] (or file:///dir "
            "on a single machine); without durable state a restarted scheduler would lose the cluster"
        )
    return derived.reveal()


def local_state_url(config: Config) -> str:
    """Local mode's default state URL: ``file://<absolute --localWorkDir>/state``."""
    return (Path(config.local_work_dir).expanduser().absolute() / "state").as_uri()


def open_store(config: Config) -> StateStore:
    """The cluster's state store (not started)."""
    return open_state_store(
        state_url(config),
        framework_name=config.framework_name,
        cluster_name=config.cluster_name,
        session_timeout_ms=config.zookeeper_mesos_timeout_ms,
    )


@contextlib.contextmanager
def leading(config: Config, *, lock_timeout: float, busy: Exception) -> Iterator[StateStore]:
    """The state store, started and led by this process for the ``with`` block, closed after;
    ``busy`` is raised when another process holds the leader lock for ``lock_timeout`` seconds."""
    store = open_store(config)
    store.start()
    try:
        if not store.acquire_leadership(timeout=lock_timeout):
            raise busy
        yield store
    finally:
        store.close()


class LedState:
    """The stored cluster state, read while leading the store (see :func:`lead_state`)."""

    def __init__(self, config: Config, store: StateStore) -> None:
        self.store = store
        self._engine_store = EngineStore(store)
        document, self._version = self._engine_store.load()
        #: ``None`` when no state is stored.
        self.state: ClusterState | None = None if document is None else state_from_json(document, config.framework_name)

    def save(self, state: ClusterState) -> None:
        """Write ``state`` over the version read (a conflict raises ``StoreConflictError``)."""
        self._version = self._engine_store.save(state_to_json(state), self._version)
        self.state = state


@contextlib.contextmanager
def lead_state(config: Config, *, lock_timeout: float, busy: Exception) -> Iterator[LedState]:
    """Lead the store (as :func:`leading`), load and decode the stored state: what a one-shot
    change of the state outside the scheduler needs (``es-framework teardown``, local mode's
    restart). Raises ``NodeStateError`` when the stored state is not well-formed."""
    with leading(config, lock_timeout=lock_timeout, busy=busy) as store:
        yield LedState(config, store)
