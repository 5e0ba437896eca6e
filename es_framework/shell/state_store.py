"""The scheduler's persistent state: one versioned JSON document per cluster, and the leader lock.

The store knows nothing about nodes: it keeps an opaque JSON object (``dict``) and a version, and
offers three operations, all atomic:

- :meth:`StateStore.read` → :class:`StoredState` ``(document, version)``, or ``None`` before the
  first write;
- :meth:`StateStore.create` → writes the first document only if there is none (version 0);
- :meth:`StateStore.write` → compare-and-set: succeeds only if the stored version is still the
  one the caller read, and returns the new version. Otherwise :class:`StateConflictError`: re-read,
  re-apply the change, write again.

and a **leader lock**, so that one scheduler acts at a time:

- :meth:`StateStore.acquire_leadership` / :meth:`StateStore.release_leadership`;
- :attr:`StateStore.may_act`, a :class:`threading.Event` that is set exactly while this store
  holds the lock over a working connection, and the optional ``on_leadership_change`` callback
  with the :class:`Leadership` status. The callback runs on kazoo's connection thread for session
  events: it must return quickly and must not call the store or ZooKeeper (set a flag, put an
  item on a queue).

**The caller's contract.** Launch, kill or free nothing (no task launch, no volume or node id
released, no state write based on an old read) unless ``may_act`` is set. When it is cleared
(:attr:`Leadership.SUSPENDED`: the ZooKeeper connection is in doubt; :attr:`Leadership.LOST`: the
session expired, the lock is gone and another scheduler may already act), stop at once. After
``SUSPENDED`` → ``LEADER`` (same session, reconnected) and after re-acquiring the lock following
``LOST``, **re-read the state** before acting again: another scheduler may have written it. While
this store holds the lock, its ZooKeeper writes are *fenced*: each write is one transaction that
also checks that our lock znode still exists, so a scheduler whose session expired cannot
overwrite its successor's state (:class:`LeadershipLostError`).

Two implementations, chosen by :func:`parse_state_url` / :func:`open_state_store`:

``zk://[user:password@]host:port[,host:port...][/chroot]`` → :class:`ZooKeeperStateStore`
    Everything lives under ``[/chroot]/<frameworkName>/<clusterName>``: the znode ``state`` holds
    ``{"schema": 1, "state": {...}}`` as UTF-8 JSON (``get /elasticsearch/mesos-ha/state`` in
    ``zkCli.sh`` shows it); its znode version is the state's version. ``leader/`` holds the
    contenders of kazoo's lock recipe (ephemeral sequential znodes, data = the contender's
    identifier). The session timeout is ``--zookeeperMesosTimeout``. With ``user:password@`` the
    client authenticates with ZooKeeper's ``digest`` scheme and every znode it creates (including
    missing parents) is readable and writable by that user only; the credentials are never logged.
``file:///absolute/directory`` → :class:`FileStateStore`, for local mode only (one machine)
    ``<dir>/<frameworkName>/<clusterName>/state.json`` holds ``{"schema": 1, "version": n,
    "state": {...}}``, replaced atomically (temporary file, ``fsync``, ``rename``, ``fsync`` of the
    directory); the leader lock is an exclusive ``flock`` on ``leader.lock`` beside it.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import fcntl
import json
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import unquote

from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadVersionError,
    CancelledError,
    ConnectionClosedError,
    ConnectionLoss,
    KazooException,
    LockTimeout,
    NoAuthError,
    NodeExistsError,
    NoNodeError,
    OperationTimeoutError,
    RolledBackError,
    SessionExpiredError,
)
from kazoo.protocol.states import KazooState
from kazoo.retry import KazooRetry
from kazoo.security import make_digest_acl

from es_framework.config import MesosMaster, Secret

log = logging.getLogger(__name__)

#: The layout version of the stored document; a store refuses to read a newer one.
SCHEMA = 1
#: ZooKeeper refuses znodes over ~1 MiB (``jute.maxbuffer``); we stop a little below.
MAX_STATE_BYTES = 1_000_000
DEFAULT_SESSION_TIMEOUT_MS = 20_000


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


class StateUrlError(ValueError):
    """A state URL that is not ``zk://…`` or ``file:///…``."""


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


@dataclass(frozen=True)
class ZooKeeperStateUrl:
    """A parsed ``zk://`` state URL. ``str()`` never shows the credentials."""

    hosts: tuple[tuple[str, int], ...]
    #: ``""`` or an absolute znode path such as ``/es``, prepended to every path.
    chroot: str = ""
    #: ``user:password`` for ZooKeeper's digest scheme.
    auth: Secret | None = None

    @property
    def hosts_string(self) -> str:
        """``h1:p1,h2:p2``: kazoo's ``hosts`` argument, without the chroot (the store prefixes its
        paths itself, so that a missing chroot is created like any other parent) or credentials."""
        return ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.hosts)

    def __str__(self) -> str:
        return "zk://" + ("****@" if self.auth else "") + self.hosts_string + self.chroot


@dataclass(frozen=True)
class FileStateUrl:
    """A parsed ``file://`` state URL: the directory that holds every cluster's state."""

    directory: Path

    def __str__(self) -> str:
        return f"file://{self.directory}"


StateUrl = ZooKeeperStateUrl | FileStateUrl


# --- URLs --------------------------------------------------------------------------------------

_ZK_FORM = "zk://[user:password@]host:port[,host:port...][/chroot]"
_FILE_FORM = "file:///absolute/directory"


def parse_state_url(text: str) -> StateUrl:
    """``zk://…`` or ``file:///…`` → the parsed URL; anything else raises :class:`StateUrlError`.

    Error messages never contain the credentials of a ``zk://`` URL."""
    stripped = text.strip()
    scheme, sep, rest = stripped.partition("://")
    if not sep:
        # Not echoed: without a scheme we cannot tell credentials from the rest.
        raise StateUrlError(f"the state URL has no scheme; use {_ZK_FORM} or {_FILE_FORM}")
    scheme = scheme.lower()
    if scheme == "zk":
        return _parse_zk(rest)
    if scheme == "file":
        return _parse_file(rest)
    raise StateUrlError(f"state URL scheme {scheme!r} is not supported; use {_ZK_FORM} or {_FILE_FORM}")


def _parse_zk(rest: str) -> ZooKeeperStateUrl:
    authority, slash, path = rest.partition("/")
    auth: Secret | None = None
    if "@" in authority:
        credentials, _, authority = authority.rpartition("@")
        user, colon, password = credentials.partition(":")
        if not user or not colon or not password:
            raise StateUrlError(f"the credentials of a zk:// state URL must be user:password ({_ZK_FORM})")
        auth = Secret(f"{unquote(user)}:{unquote(password)}")
    if not authority:
        raise StateUrlError(f"zk:// state URL without a host; use {_ZK_FORM}")
    hosts = []
    for item in authority.split(","):
        hosts.append(_host_port(item))
    chroot = ""
    if slash and path.strip("/"):
        chroot = "/" + path.strip("/")
        _check_znode_path(chroot, "chroot")
    return ZooKeeperStateUrl(hosts=tuple(hosts), chroot=chroot, auth=auth)


def _host_port(item: str) -> tuple[str, int]:
    item = item.strip()
    if item.startswith("["):  # [IPv6]:port
        host, bracket, port_text = item[1:].partition("]")
        if not bracket or (port_text and not port_text.startswith(":")):
            raise StateUrlError(f"bad host {item!r} in zk:// state URL; use {_ZK_FORM}")
        port_text = port_text[1:]
    else:
        host, _, port_text = item.partition(":")
    if not host or any(c.isspace() or c in "/?#@" for c in host):
        raise StateUrlError(f"bad host {item!r} in zk:// state URL; use {_ZK_FORM}")
    if not port_text:
        return host, 2181
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise StateUrlError(f"bad port in {item!r}: must be 1-65535")
    return host, int(port_text)


def _check_znode_path(path: str, what: str) -> None:
    parts = path.split("/")[1:]
    if any(p in ("", ".", "..", "zookeeper") or not p.isprintable() for p in parts):
        raise StateUrlError(f"the {what} {path!r} is not a valid znode path")


def _parse_file(rest: str) -> FileStateUrl:
    host, slash, path = rest.partition("/")
    if host not in ("", "localhost") or not slash:
        raise StateUrlError(f"a file:// state URL must name an absolute local directory: {_FILE_FORM}")
    directory = "/" + unquote(path)
    if directory.rstrip("/") == "" or any(p in (".", "..") for p in directory.split("/")):
        raise StateUrlError(f"a file:// state URL must name an absolute directory other than / ({_FILE_FORM})")
    return FileStateUrl(directory=Path(directory.rstrip("/")))


def state_url_for_mesos_master(master: MesosMaster | None) -> ZooKeeperStateUrl | None:
    """The default state URL: the ZooKeeper ensemble (and credentials) that Mesos uses, without
    its ``/mesos`` path, so the state lives at ``/<frameworkName>/<clusterName>`` as in the Java
    framework. ``None`` when Mesos is not found through ZooKeeper."""
    if master is None or master.kind != "zk":
        return None
    return ZooKeeperStateUrl(hosts=master.hosts, auth=master.zk_auth)


def _check_name(value: str, what: str) -> None:
    if not value or value in (".", "..") or "/" in value or not value.isprintable() or value.isspace():
        raise ValueError(f"{what} {value!r} cannot be a znode or directory name")


# --- the document ------------------------------------------------------------------------------


def _encode(payload: dict[str, Any]) -> bytes:
    try:
        data = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise TypeError(f"the state document is not JSON: {exc}") from exc
    if len(data) > MAX_STATE_BYTES:
        raise StateStoreError(f"the state document is {len(data)} bytes; the limit is {MAX_STATE_BYTES}")
    return data


def _decode(data: bytes, where: str) -> dict[str, Any]:
    try:
        payload = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise StateCorruptError(f"{where} is not JSON: {exc}") from None
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


def _check_document(document: dict[str, Any]) -> None:
    if not isinstance(document, dict):
        raise TypeError(f"the state document must be a dict, not {type(document).__name__}")


# --- the protocol ------------------------------------------------------------------------------


@runtime_checkable
class StateStore(Protocol):
    """What the scheduler needs from persistent state; see the module's documentation."""

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


class _LeadershipTracker:
    """Status, ``may_act`` and the callback, shared by both stores. Thread-safe."""

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
        level = logging.WARNING if status in (Leadership.SUSPENDED, Leadership.LOST) else logging.INFO
        log.log(level, "%s: leadership %s -> %s", self.name, old.value, status.value)
        if self._callback is not None:
            try:
                self._callback(status)
            except Exception:
                log.exception("%s: the leadership callback failed", self.name)


# --- ZooKeeper -----------------------------------------------------------------------------------


class _RedactingFilter(logging.Filter):
    """Masks digest credentials in kazoo's log (kazoo logs its Auth request, password included, at DEBUG)."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()

    def add(self, credentials: str) -> None:
        self._secrets.update(s for s in (credentials, credentials.partition(":")[2]) if s)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(s in message for s in self._secrets):
            for secret in sorted(self._secrets, key=len, reverse=True):
                message = message.replace(secret, "****")
            record.msg, record.args = message, ()
        return True


#: kazoo logs through this logger (not ``kazoo.client``), so that the filter sees every record.
_KAZOO_LOG = logging.getLogger(f"{__name__}.kazoo")
_REDACT = _RedactingFilter()
_KAZOO_LOG.addFilter(_REDACT)


class ZooKeeperStateStore:
    """The state and the leader lock in ZooKeeper (kazoo). Create it, then :meth:`start` it."""

    def __init__(
        self,
        url: ZooKeeperStateUrl,
        framework_name: str,
        cluster_name: str,
        *,
        session_timeout_ms: int = DEFAULT_SESSION_TIMEOUT_MS,
        identifier: str | None = None,
        on_leadership_change: LeadershipCallback | None = None,
    ) -> None:
        _check_name(framework_name, "framework name")
        _check_name(cluster_name, "cluster name")
        if session_timeout_ms <= 0:
            raise ValueError(f"session timeout must be positive, not {session_timeout_ms} ms")
        self.url = url
        self.root = f"{url.chroot}/{framework_name}/{cluster_name}"
        self.state_path = f"{self.root}/state"
        self.lock_path = f"{self.root}/leader"
        self.identifier = identifier or f"{socket.gethostname()}:{os.getpid()}"
        self.session_timeout_s = session_timeout_ms / 1000.0
        #: How long one read or write waits for ZooKeeper before :class:`StateUnavailableError`.
        self.operation_timeout_s = max(1.0, self.session_timeout_s)
        self._tracker = _LeadershipTracker(f"state zk://…{self.root}", on_leadership_change)
        self._mutex = threading.RLock()
        self._lock: Any = None  # kazoo Lock while held
        self._lock_znode: str | None = None
        self._session_epoch = 0  # +1 on every LOST
        self._closed = False

        auth_data = None
        default_acl = None
        if url.auth is not None:
            user, _, password = url.auth.reveal().partition(":")
            auth_data = [("digest", f"{user}:{password}")]
            default_acl = [make_digest_acl(user, password, all=True)]
            _REDACT.add(url.auth.reveal())
        # Reconnect forever and quickly (≤ 1 s apart), so that a session survives a ZooKeeper restart.
        self._client: Any = KazooClient(
            hosts=url.hosts_string,
            timeout=self.session_timeout_s,
            connection_retry=KazooRetry(max_tries=-1, delay=0.05, backoff=2, max_delay=1.0),
            command_retry=KazooRetry(max_tries=3, delay=0.1, backoff=2, max_delay=1.0),
            auth_data=auth_data,
            default_acl=default_acl,
            logger=_KAZOO_LOG,
        )
        self._client.add_listener(self._on_session_state)

    # -- connection

    @property
    def may_act(self) -> threading.Event:
        return self._tracker.may_act

    @property
    def leadership(self) -> Leadership:
        return self._tracker.status

    @property
    def client(self) -> Any:
        """The kazoo client (for tests and diagnostics)."""
        return self._client

    def start(self, timeout: float = 15.0) -> None:
        try:
            self._client.start(timeout=timeout)
        except self._client.handler.timeout_exception:
            raise StateUnavailableError(f"cannot connect to ZooKeeper {self.url} within {timeout:g} s") from None
        log.info("state store: connected to ZooKeeper %s, state at %s", self.url, self.state_path)

    def __enter__(self) -> ZooKeeperStateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._mutex:
            self._closed = True
            lock = self._lock
        if lock is not None:
            lock.cancel()
        self.release_leadership()
        self._client.stop()
        self._client.close()

    def _on_session_state(self, state: str) -> None:
        # Runs on kazoo's connection thread: it must not block and must not call ZooKeeper.
        with self._mutex:
            holding = self._lock_znode is not None
            if state == KazooState.LOST:
                self._session_epoch += 1
                if holding:  # the session is gone, so is our ephemeral lock znode
                    self._lock = None
                    self._lock_znode = None
                    self._tracker.set(Leadership.NOT_LEADER if self._closed else Leadership.LOST)
            elif state == KazooState.SUSPENDED:
                if holding:
                    self._tracker.set(Leadership.SUSPENDED)
            elif state == KazooState.CONNECTED and holding:
                # Same session back (an expired one is reported as LOST first): the lock still holds.
                self._tracker.set(Leadership.LEADER)

    @contextlib.contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        try:
            yield
        except (ConnectionLoss, SessionExpiredError, ConnectionClosedError, OperationTimeoutError) as exc:
            raise StateUnavailableError(f"{what}: ZooKeeper {self.url} unavailable ({type(exc).__name__})") from None
        except self._client.handler.timeout_exception:
            raise StateUnavailableError(
                f"{what}: no answer from ZooKeeper {self.url} within {self.operation_timeout_s:g} s"
            ) from None
        except NoAuthError:
            raise StateStoreError(f"{what}: ZooKeeper {self.url} denies access (check the credentials)") from None

    # -- state

    def read(self) -> StoredState | None:
        with self._translate(f"reading {self.state_path}"):
            try:
                data, stat = self._client.get_async(self.state_path).get(timeout=self.operation_timeout_s)
            except NoNodeError:
                return None
        payload = _decode(data, f"znode {self.state_path}")
        return StoredState(document=payload["state"], version=int(stat.version))

    def create(self, document: dict[str, Any]) -> StoredState:
        _check_document(document)
        data = _encode({"schema": SCHEMA, "state": document})
        with self._translate(f"creating {self.state_path}"):
            try:
                self._client.create_async(self.state_path, data, makepath=True).get(timeout=self.operation_timeout_s)
            except NodeExistsError:
                raise StateConflictError(f"{self.state_path} exists already; read it instead") from None
        return StoredState(document=document, version=0)

    def write(self, document: dict[str, Any], expected_version: int) -> StoredState:
        _check_document(document)
        data = _encode({"schema": SCHEMA, "state": document})
        with self._mutex:
            lock_znode = self._lock_znode
            status = self._tracker.status
        if status in (Leadership.SUSPENDED, Leadership.LOST):
            raise LeadershipLostError(f"not writing {self.state_path}: leadership is {status.value}")
        with self._translate(f"writing {self.state_path}"):
            if lock_znode is None:
                try:
                    stat = self._client.set_async(self.state_path, data, expected_version).get(
                        timeout=self.operation_timeout_s
                    )
                except (BadVersionError, NoNodeError):
                    raise self._conflict(expected_version) from None
                return StoredState(document=document, version=int(stat.version))
            # Fenced: the write happens only if our lock znode (hence our leadership) still exists.
            transaction = self._client.transaction()
            transaction.check(lock_znode, -1)
            transaction.set_data(self.state_path, data, expected_version)
            results = transaction.commit_async().get(timeout=self.operation_timeout_s)
        check, result = results
        if isinstance(check, NoNodeError):
            raise LeadershipLostError(f"not writing {self.state_path}: the lock znode {lock_znode} is gone")
        if isinstance(result, (BadVersionError, NoNodeError)):
            raise self._conflict(expected_version)
        for outcome in results:
            if isinstance(outcome, Exception) and not isinstance(outcome, RolledBackError):
                raise StateStoreError(f"writing {self.state_path} failed: {type(outcome).__name__}")
        return StoredState(document=document, version=int(result.version))

    def _conflict(self, expected_version: int) -> StateConflictError:
        return StateConflictError(
            f"{self.state_path} is no longer at version {expected_version} (or does not exist); re-read and retry"
        )

    def delete(self) -> None:
        with self._translate(f"deleting {self.state_path}"), contextlib.suppress(NoNodeError):
            self._client.delete_async(self.state_path).get(timeout=self.operation_timeout_s)

    # -- leadership

    def acquire_leadership(self, timeout: float | None = None) -> bool:
        with self._mutex:
            if self._closed:
                raise StateStoreError("the state store is closed")
            if self._lock_znode is not None:
                return True
            if self._lock is not None:
                raise StateStoreError("another thread is acquiring the leader lock of this store")
            epoch = self._session_epoch
            lock = self._lock = self._client.Lock(self.lock_path, self.identifier)
        got = False
        try:
            with self._translate(f"acquiring the leader lock {self.lock_path}"):
                got = bool(lock.acquire(blocking=True, timeout=timeout))
        except (LockTimeout, CancelledError):
            got = False
        finally:
            if not got:
                with self._mutex:
                    if self._lock is lock:
                        self._lock = None
        if not got:
            return False
        znode = f"{self.lock_path}/{lock.node}"
        valid = False
        try:
            # The lock znode must belong to our current session: a LOST during acquisition voids it.
            with self._translate(f"checking the leader lock {znode}"):
                stat = self._client.exists_async(znode).get(timeout=self.operation_timeout_s)
            session_id = self._client.client_id[0] if self._client.client_id else None
            with self._mutex:
                valid = (
                    stat is not None
                    and stat.ephemeralOwner == session_id
                    and epoch == self._session_epoch
                    and not self._closed
                    and self._lock is lock
                )
                if valid:
                    self._lock_znode = znode
                    self._tracker.set(Leadership.LEADER if self._client.connected else Leadership.SUSPENDED)
        finally:
            if not valid:
                with self._mutex:
                    if self._lock is lock:
                        self._lock = None
                self._delete_lock_znode(znode)
        if not valid:
            return False
        log.info("state store: %s holds the leader lock %s", self.identifier, znode)
        return True

    def release_leadership(self) -> None:
        with self._mutex:
            lock, self._lock = self._lock, None
            znode, self._lock_znode = self._lock_znode, None
            if znode is not None or self._tracker.status is Leadership.LOST:
                self._tracker.set(Leadership.NOT_LEADER)  # clears may_act before the znode goes
        if lock is not None and znode is not None:
            self._delete_lock_znode(znode)

    def _delete_lock_znode(self, znode: str) -> None:
        """Best effort, bounded by the operation timeout: the znode is ephemeral and goes with the
        session at the latest (kazoo's own ``Lock.release`` could wait for a reconnect forever)."""
        try:
            self._client.delete_async(znode).get(timeout=self.operation_timeout_s)
        except NoNodeError:
            pass
        except (KazooException, self._client.handler.timeout_exception) as exc:
            log.warning("state store: deleting the lock znode %s failed (%s); it ends with the session", znode, exc)


# --- files (local mode) ------------------------------------------------------------------------


class FileStateStore:
    """The state in one JSON file, for local mode. Safe across threads and processes on one host.

    Writes hold an exclusive ``flock`` on ``state.lock`` around read-compare-replace, so the
    compare-and-set is atomic; the leader lock is an exclusive ``flock`` on ``leader.lock`` that
    lasts until :meth:`release_leadership`, :meth:`close` or the death of the process."""

    def __init__(
        self,
        directory: Path,
        framework_name: str,
        cluster_name: str,
        *,
        identifier: str | None = None,
        on_leadership_change: LeadershipCallback | None = None,
    ) -> None:
        _check_name(framework_name, "framework name")
        _check_name(cluster_name, "cluster name")
        self.root = Path(directory) / framework_name / cluster_name
        self.state_file = self.root / "state.json"
        self.identifier = identifier or f"{socket.gethostname()}:{os.getpid()}"
        self._tracker = _LeadershipTracker(f"state {self.root}", on_leadership_change)
        self._leader_fd: int | None = None
        self._mutex = threading.Lock()
        self._closed = False

    @property
    def may_act(self) -> threading.Event:
        return self._tracker.may_act

    @property
    def leadership(self) -> Leadership:
        return self._tracker.status

    def start(self, timeout: float = 15.0) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateUnavailableError(f"cannot create {self.root}: {exc.strerror}") from None

    def __enter__(self) -> FileStateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        self.release_leadership()

    @contextlib.contextmanager
    def _write_lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / "state.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # also unlocks

    def _read_payload(self) -> dict[str, Any] | None:
        try:
            data = self.state_file.read_bytes()
        except FileNotFoundError:
            return None
        payload = _decode(data, str(self.state_file))
        version = payload.get("version")
        if type(version) is not int or version < 0:
            raise StateCorruptError(f"{self.state_file} has no valid version")
        return payload

    def read(self) -> StoredState | None:
        payload = self._read_payload()
        if payload is None:
            return None
        return StoredState(document=payload["state"], version=payload["version"])

    def create(self, document: dict[str, Any]) -> StoredState:
        _check_document(document)
        with self._write_lock():
            if self.state_file.exists():
                raise StateConflictError(f"{self.state_file} exists already; read it instead")
            self._replace({"schema": SCHEMA, "version": 0, "state": document})
        return StoredState(document=document, version=0)

    def write(self, document: dict[str, Any], expected_version: int) -> StoredState:
        _check_document(document)
        with self._write_lock():
            current = self._read_payload()
            if current is None or current["version"] != expected_version:
                raise StateConflictError(
                    f"{self.state_file} is no longer at version {expected_version} (or does not exist); "
                    "re-read and retry"
                )
            version = expected_version + 1
            self._replace({"schema": SCHEMA, "version": version, "state": document})
        return StoredState(document=document, version=version)

    def delete(self) -> None:
        with self._write_lock():
            self.state_file.unlink(missing_ok=True)

    def _replace(self, payload: dict[str, Any]) -> None:
        data = _encode(payload)
        fd, tmp = tempfile.mkstemp(prefix=".state.json.", suffix=".tmp", dir=self.root)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.state_file)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def acquire_leadership(self, timeout: float | None = None) -> bool:
        with self._mutex:
            if self._closed:
                raise StateStoreError("the state store is closed")
            if self._leader_fd is not None:
                return True
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / "leader.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        os.close(fd)
                        raise
                if deadline is not None and time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(0.05)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{self.identifier}\n".encode(), 0)
            self._leader_fd = fd
            self._tracker.set(Leadership.LEADER)
        log.info("state store: %s holds the leader lock %s", self.identifier, self.root / "leader.lock")
        return True

    def release_leadership(self) -> None:
        with self._mutex:
            fd, self._leader_fd = self._leader_fd, None
            self._tracker.set(Leadership.NOT_LEADER)
            if fd is not None:
                os.close(fd)  # releases the flock


def open_state_store(
    url: str | StateUrl,
    *,
    framework_name: str,
    cluster_name: str,
    session_timeout_ms: int = DEFAULT_SESSION_TIMEOUT_MS,
    identifier: str | None = None,
    on_leadership_change: LeadershipCallback | None = None,
) -> ZooKeeperStateStore | FileStateStore:
    """The store for ``url`` (not started yet). ``session_timeout_ms`` is ``--zookeeperMesosTimeout``."""
    parsed = parse_state_url(url) if isinstance(url, str) else url
    if isinstance(parsed, ZooKeeperStateUrl):
        return ZooKeeperStateStore(
            parsed,
            framework_name,
            cluster_name,
            session_timeout_ms=session_timeout_ms,
            identifier=identifier,
            on_leadership_change=on_leadership_change,
        )
    return FileStateStore(
        parsed.directory,
        framework_name,
        cluster_name,
        identifier=identifier,
        on_leadership_change=on_leadership_change,
    )
