"""The state and the leader lock in ZooKeeper (kazoo): :class:`ZooKeeperStateStore`.

Everything lives under ``[/chroot]/<frameworkName>/<clusterName>``: the state as a small
``cluster`` znode and one ``nodes/<id>`` znode per node id (layout 2, see
:mod:`~es_framework.shell.state_store.zookeeper_layout`; ``get /elasticsearch/mesos-ha/cluster``
and ``get /elasticsearch/mesos-ha/nodes/3`` in ``zkCli.sh`` show them); the state's version is the
cluster znode's. ``state`` is release 0.1.0's single document (layout 1): a leader that finds it
migrates it, and leaves a tombstone that 0.1.0 refuses to read. ``leader/`` holds the contenders of
kazoo's lock recipe (ephemeral sequential znodes, data = the contender's identifier). The session
timeout is ``--zookeeperMesosTimeout``. With ``user:password@`` the client authenticates with
ZooKeeper's ``digest`` scheme and every znode it creates (including missing parents) is readable
and writable by that user only; the credentials are never logged.

The store keeps the interface of one document: :meth:`~ZooKeeperStateStore.write` takes the whole
document, compares it with what this store last read or wrote at that version, and sends only the
difference in one multi request (nothing when nothing changed), or in several when it does not fit
in one request (:mod:`~es_framework.shell.state_store.zookeeper_write` says how, and what a reader
sees meanwhile). While this store holds the lock, its writes are *fenced*: every multi also checks
that our lock znode still exists, so a scheduler whose session expired cannot overwrite its
successor's state (:class:`~es_framework.shell.state_store.base.LeadershipLostError`). A write that
fails for any reason leaves this store knowing nothing of what is stored: the next write reads it
first.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import (
    CancelledError,
    ConnectionClosedError,
    ConnectionLoss,
    KazooException,
    LockTimeout,
    NoAuthError,
    NoNodeError,
    OperationTimeoutError,
    SessionExpiredError,
)
from kazoo.protocol.states import KazooState
from kazoo.retry import KazooRetry
from kazoo.security import make_digest_acl

from es_framework.config.urls import ZooKeeperUrl
from es_framework.core.state_layout import split_document
from es_framework.shell.state_store.base import (
    Leadership,
    LeadershipCallback,
    LeadershipLostError,
    LeadershipStatus,
    StateConflictError,
    StateStoreError,
    StateUnavailableError,
    StoredState,
    check_document,
    check_name,
    default_identifier,
    log,
    version_conflict,
)
from es_framework.shell.state_store.zookeeper_layout import LAYOUT_VERSION, Basis, ZooKeeperLayout

DEFAULT_SESSION_TIMEOUT_MS = 20_000


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
_KAZOO_LOG = logging.getLogger(f"{log.name}.kazoo")
_REDACT = _RedactingFilter()
_KAZOO_LOG.addFilter(_REDACT)


class ZooKeeperStateStore(LeadershipStatus):
    """The state and the leader lock in ZooKeeper (kazoo). Create it, then :meth:`start` it."""

    def __init__(
        self,
        url: ZooKeeperUrl,
        framework_name: str,
        cluster_name: str,
        *,
        session_timeout_ms: int = DEFAULT_SESSION_TIMEOUT_MS,
        identifier: str | None = None,
        on_leadership_change: LeadershipCallback | None = None,
    ) -> None:
        check_name(framework_name, "framework name")
        check_name(cluster_name, "cluster name")
        if session_timeout_ms <= 0:
            raise ValueError(f"session timeout must be positive, not {session_timeout_ms} ms")
        self.url = url
        self.root = f"{url.path}/{framework_name}/{cluster_name}"
        self.lock_path = f"{self.root}/leader"
        self.identifier = identifier or default_identifier()
        self.session_timeout_s = session_timeout_ms / 1000.0
        #: How long one read or write waits for ZooKeeper before :class:`StateUnavailableError`.
        self.operation_timeout_s = max(1.0, self.session_timeout_s)
        super().__init__(f"state zk://…{self.root}", on_leadership_change)
        self._mutex = threading.RLock()
        self._lock: Any = None  # kazoo Lock while held
        self._lock_znode: str | None = None
        self._session_epoch = 0  # +1 on every LOST
        self._closed = False
        #: Serialises reads and writes of this store: each compares with what the previous one left.
        self._io = threading.Lock()
        #: What is stored at the version this store last read or wrote (a write sends only the difference).
        self._basis: Basis | None = None

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
        self.layout = ZooKeeperLayout(self._client, self.root, self.operation_timeout_s)
        self.cluster_path = self.layout.cluster_path
        self.nodes_path = self.layout.nodes_path
        #: Release 0.1.0's single document (layout 1); a tombstone once migrated.
        self.legacy_path = self.layout.legacy_path

    # -- connection

    @property
    def client(self) -> Any:
        """The kazoo client (for tests and diagnostics)."""
        return self._client

    def start(self, timeout: float = 15.0) -> None:
        try:
            self._client.start(timeout=timeout)
        except self._client.handler.timeout_exception:
            raise StateUnavailableError(f"cannot connect to ZooKeeper {self.url} within {timeout:g} s") from None
        log.info("state store: connected to ZooKeeper %s, state at %s", self.url, self.root)

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

    def _writer(self, what: str) -> str | None:
        """The lock znode that fences our writes (None when not leading); refuses while in doubt."""
        with self._mutex:
            lock_znode = self._lock_znode
            status = self._tracker.status
        if status in (Leadership.SUSPENDED, Leadership.LOST):
            raise LeadershipLostError(f"not {what} {self.root}: leadership is {status.value}")
        return lock_znode

    def read(self) -> StoredState | None:
        """The state; a leader that finds layout 1 (release 0.1.0's single document) migrates it."""
        with self._io, self._translate(f"reading {self.root}"):
            self._basis = None
            for _ in range(3):
                found = self.layout.read()
                with self._mutex:
                    fence = self._lock_znode if self._tracker.status is Leadership.LEADER else None
                if found is None or not found[0].legacy or fence is None:
                    break
                try:
                    migrated = self.layout.install(found[0].layout, legacy_version=found[0].version, fence=fence)
                    found = migrated, found[1]
                    break
                except StateConflictError:
                    continue  # the old document changed (or another store migrated it): read again
            else:
                raise StateUnavailableError(f"{self.root}: the migration to layout {LAYOUT_VERSION} kept conflicting")
            if found is None:
                return None
            self._basis, document = found
        return StoredState(document=document, version=self._basis.version)

    def create(self, document: dict[str, Any]) -> StoredState:
        check_document(document)
        layout = split_document(document)
        fence = self._writer("creating")
        with self._io, self._translate(f"creating {self.root}"):
            self._basis = None
            self._basis = self.layout.install(layout, legacy_version=None, fence=fence)
        return StoredState(document=document, version=self._basis.version)

    def _take_basis(self, expected_version: int) -> Basis:
        """What the store holds at ``expected_version`` (re-read unless this store wrote it last); a
        conflict (:func:`version_conflict`) if it holds another. The remembered basis is dropped:
        unknown until the write's outcome is."""
        basis, self._basis = self._basis, None
        if basis is None or basis.version != expected_version:
            found = self.layout.read()
            basis = None if found is None else found[0]
        if basis is None or basis.version != expected_version:
            raise version_conflict(self.root, expected_version)
        return basis

    def write(self, document: dict[str, Any], expected_version: int) -> StoredState:
        check_document(document)
        layout = split_document(document)
        fence = self._writer("writing")
        with self._io, self._translate(f"writing {self.root}"):
            basis = self._take_basis(expected_version)
            if not basis.legacy:
                self._basis, _ = self.layout.write(basis, layout, fence)
            elif fence is None:
                # Layout 1 and not the leader: the old compare-and-set; only a leader migrates.
                version = self.layout.write_legacy(document, expected_version)
                self._basis = Basis(split_document(json.loads(json.dumps(document))), version, legacy=True)
            else:
                self._basis = self.layout.install(layout, legacy_version=expected_version, fence=fence)
            return StoredState(document=document, version=self._basis.version)

    def write_changes(
        self,
        cluster: dict[str, Any],
        split_fields: tuple[str, ...],
        entries: Mapping[str, Mapping[str, Any] | None],
        expected_version: int,
    ) -> int | None:
        """As :meth:`write` of the document whose cluster part is ``cluster`` and whose node entries
        are the stored ones with ``entries`` (node key -> new entry, None: gone) applied: the same
        fenced compare-and-set, writing only the node znodes that differ (O(changed)); returns the new
        version. None, with nothing written, when the stored state is not layout 2 cut in
        ``split_fields`` (then :meth:`write` the whole document)."""
        check_document(cluster)
        fence = self._writer("writing")
        with self._io, self._translate(f"writing {self.root}"):
            basis = self._take_basis(expected_version)
            if basis.legacy or basis.layout.split_fields != split_fields:
                self._basis = basis
                return None
            self._basis, _ = self.layout.write_changes(basis, cluster, entries, fence)
            return self._basis.version

    def delete(self) -> None:
        with self._io, self._translate(f"deleting {self.root}"):
            self._basis = None
            self.layout.delete()

    # -- leadership

    def _remove_own_contenders(self) -> None:
        """Delete the lock contenders our own session left behind.

        An attempt that timed out while ZooKeeper could not be reached leaves its contender znode
        (kazoo's clean-up could not delete it), alive as long as our session is. Once the leader
        lets go, that orphan is the lowest contender, nobody acts on it, and every later attempt —
        ours too — waits behind it for ever (found by the chaos runner: a standby never took over
        after a ZooKeeper restart). Only one attempt per store runs at a time, so every contender
        of our session found before an attempt is such an orphan."""
        session_id = self._client.client_id[0] if self._client.client_id else None
        if session_id is None:
            return
        try:
            children = self._client.get_children(self.lock_path)
        except NoNodeError:
            return
        except Exception as error:  # best effort: the attempt itself reports a real outage
            log.debug("state store: could not list the lock contenders of %s: %s", self.lock_path, error)
            return
        for child in children:
            path = f"{self.lock_path}/{child}"
            try:
                stat = self._client.exists(path)
                if stat is not None and stat.ephemeralOwner == session_id:
                    self._client.delete(path, version=stat.version)
                    log.warning("state store: removed %s, a lock contender our earlier attempt left", path)
            except NoNodeError:
                continue
            except Exception as error:
                log.warning("state store: could not remove our stale lock contender %s: %s", path, error)

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
            self._remove_own_contenders()
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
        if znode is not None:
            log.info("state store: %s released the leader lock %s", self.identifier, znode)

    def _delete_lock_znode(self, znode: str) -> None:
        """Best effort, bounded by the operation timeout: the znode is ephemeral and goes with the
        session at the latest (kazoo's own ``Lock.release`` could wait for a reconnect forever)."""
        try:
            self._client.delete_async(znode).get(timeout=self.operation_timeout_s)
        except NoNodeError:
            pass
        except (KazooException, self._client.handler.timeout_exception) as exc:
            log.warning("state store: deleting the lock znode %s failed (%s); it ends with the session", znode, exc)
