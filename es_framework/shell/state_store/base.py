"""What both state stores share: errors, plain data, the :class:`StateStore` protocol, the stored
document's encoding and checks, and the leadership status (``may_act``, ``leadership``)."""

from __future__ import annotations

import enum
import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, Self, runtime_checkable

#: One logger for the whole store (its backends included), named after the package: one name to turn up or down.
log = logging.getLogger("es_framework.shell.state_store")

#: The layout version of the stored document; a store refuses to read a newer one.
SCHEMA = 1
#: The largest znode (or state file) written. ZooKeeper refuses requests over ~1 MiB
#: (``jute.maxbuffer``); we stop a little below. With one znode per node id (layout 2) no znode
#: grows with the number of nodes, so this bounds the cluster part and a single node's entry.
MAX_STATE_BYTES = 1_000_000


# --- errors ----------------------------------------------------------------------------------


class StateStoreError(Exception):
    """Base class of everything the state store raises."""


class StateConflictError(StateStoreError):
    """The state changed since it was read (or already exists on create): re-read and retry."""


class StateUnavailableError(StateStoreError):
    """The store cannot be reached (ZooKeeper down, connection suspended, operation timed out).

    After a failed *write* the outcome is unknown: the write may still have happened. Re-read."""


class LeadershipLostError(StateStoreError):
    """A fenced write was refused because this store no longer holds the leader lock."""


class StateCorruptError(StateStoreError):
    """The stored document is not what this version of es-mesos writes (bad JSON, newer schema)."""


def exists_conflict(where: str) -> StateConflictError:
    return StateConflictError(f"{where} exists already; read it instead")


def version_conflict(where: str, expected_version: int) -> StateConflictError:
    return StateConflictError(
        f"{where} is no longer at version {expected_version} (or does not exist); re-read and retry"
    )


# --- plain data ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredState:
    """A document and the version it was read at (pass that version to :meth:`StateStore.write`)."""

    document: dict[str, Any]
    version: int


class Leadership(enum.Enum):
    """Where this store stands with the leader lock. Only ``LEADER`` may act."""

    #: Never acquired, released, or the store is closed.
    NOT_LEADER = "not_leader"
    #: Holds the lock over a working connection: ``may_act`` is set.
    LEADER = "leader"
    #: Holds the lock but the connection is down: stop acting; back to ``LEADER`` if the same
    #: session reconnects, to ``LOST`` if it expired.
    SUSPENDED = "suspended"
    #: The session expired: the lock is gone and someone else may lead. Re-acquire, then re-read.
    LOST = "lost"


LeadershipCallback = Callable[[Leadership], None]


def check_name(value: str, what: str) -> None:
    if not value or value in (".", "..") or "/" in value or not value.isprintable() or value.isspace():
        raise ValueError(f"{what} {value!r} cannot be a znode or directory name")


def default_identifier() -> str:
    """Who holds the leader lock, as its contenders and operators see it."""
    return f"{socket.gethostname()}:{os.getpid()}"


# --- the document ------------------------------------------------------------------------------


def encode(payload: dict[str, Any], what: str = "the state document") -> bytes:
    """``payload`` as compact UTF-8 JSON, at most :data:`MAX_STATE_BYTES` (the limit of one znode or file)."""
    try:
        data = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} is not JSON: {exc}") from exc
    if len(data) > MAX_STATE_BYTES:
        raise StateStoreError(f"{what} is {len(data)} bytes; the limit is {MAX_STATE_BYTES}")
    return data


def decode_json(data: bytes, where: str) -> Any:
    """``data`` as UTF-8 JSON, or :class:`StateCorruptError` naming ``where``."""
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise StateCorruptError(f"{where} is not JSON: {exc}") from None


def decode(data: bytes, where: str) -> dict[str, Any]:
    payload = decode_json(data, where)
    if not isinstance(payload, dict) or not isinstance(payload.get("state"), dict):
        raise StateCorruptError(f'{where} is not a {{"schema": …, "state": {{…}}}} document')
    schema = payload.get("schema")
    if schema != SCHEMA:
        newer = isinstance(schema, int) and schema > SCHEMA
        raise StateCorruptError(
            f"{where} has schema {schema!r}; this es-mesos reads schema {SCHEMA}"
            + (" (it was written by a newer es-mesos)" if newer else "")
        )
    return payload


def check_document(document: dict[str, Any]) -> None:
    if not isinstance(document, dict):
        raise TypeError(f"the state document must be a dict, not {type(document).__name__}")


# --- the protocol ------------------------------------------------------------------------------


@runtime_checkable
class StateStore(Protocol):
    """What the scheduler needs from persistent state; see :mod:`es_framework.shell.state_store`."""

    @property
    def may_act(self) -> threading.Event:
        """Set exactly while this store is :attr:`Leadership.LEADER`."""
        ...

    @property
    def leadership(self) -> Leadership: ...

    def start(self, timeout: float = ...) -> None:
        """Connect (ZooKeeper) or create the directory (file). Raises :class:`StateUnavailableError`."""

    def read(self) -> StoredState | None: ...

    def create(self, document: dict[str, Any]) -> StoredState:
        """Store the first document (version 0); :class:`StateConflictError` if one exists."""
        ...

    def write(self, document: dict[str, Any], expected_version: int) -> StoredState:
        """Replace the document if its version is still ``expected_version``; the new version."""
        ...

    def delete(self) -> None:
        """Remove the document (``teardown --purge``); nothing happens if there is none."""
        ...

    def acquire_leadership(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds (``None``: forever) for the leader lock; ``True`` if held."""
        ...

    def release_leadership(self) -> None: ...

    def close(self) -> None:
        """Release the lock (if held) and disconnect. The store cannot be used afterwards."""


# --- leadership ----------------------------------------------------------------------------------


def _transition_level(old: Leadership, new: Leadership) -> int:
    """How loud a change of leadership is logged. Taking and giving up the lock on purpose
    (``not_leader`` <-> ``leader``) is DEBUG: the store logs it itself, once, saying who holds or
    released which lock, and a process that leads the state briefly before the scheduler does
    (local mode frees the previous run's nodes first) would otherwise read as a flapping lock.
    What happens *to* the lock (``suspended``, ``lost``) is a WARNING, its return INFO."""
    if new in (Leadership.SUSPENDED, Leadership.LOST):
        return logging.WARNING
    if old in (Leadership.SUSPENDED, Leadership.LOST):
        return logging.INFO
    return logging.DEBUG


class LeadershipTracker:
    """Status, ``may_act`` and the callback. Thread-safe."""

    def __init__(self, name: str, callback: LeadershipCallback | None) -> None:
        self.name = name
        self.may_act = threading.Event()
        self._callback = callback
        self._mutex = threading.Lock()
        self.status = Leadership.NOT_LEADER

    def set(self, status: Leadership) -> None:
        with self._mutex:
            if status is self.status:
                return
            old, self.status = self.status, status
            # Clear before anyone can see the new status; set only once the status says LEADER.
            if status is Leadership.LEADER:
                self.may_act.set()
            else:
                self.may_act.clear()
        log.log(_transition_level(old, status), "%s: leadership %s -> %s", self.name, old.value, status.value)
        if self._callback is not None:
            try:
                self._callback(status)
            except Exception:
                log.exception("%s: the leadership callback failed", self.name)


class LeadershipStatus:
    """The base of both stores: ``may_act`` and ``leadership`` from one :class:`LeadershipTracker`
    (``self._tracker``, which the store sets as the lock comes and goes), and ``with store:``,
    which closes the store at the end."""

    def __init__(self, name: str, on_leadership_change: LeadershipCallback | None) -> None:
        self._tracker = LeadershipTracker(name, on_leadership_change)

    @property
    def may_act(self) -> threading.Event:
        return self._tracker.may_act

    @property
    def leadership(self) -> Leadership:
        return self._tracker.status

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
