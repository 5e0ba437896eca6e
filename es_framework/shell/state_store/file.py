"""The state and the leader lock in one directory, for local mode (one machine): :class:`FileStateStore`.

``<dir>/<frameworkName>/<clusterName>/state.json`` holds ``{"schema": 1, "version": n, "state":
{...}}``, replaced atomically (temporary file, ``fsync``, ``rename``, ``fsync`` of the directory);
the leader lock is an exclusive ``flock`` on ``leader.lock`` beside it.

It keeps one file, unlike the ZooKeeper store's znode per node id, on purpose: local mode runs a
handful of nodes on one machine, where rewriting a few kilobytes is cheap, and one ``rename`` is
the only atomic replace a filesystem offers (several files would need a commit protocol of their
own to survive a crash midway). The file has no ZooKeeper size limit, but the same
:data:`~es_framework.shell.state_store.base.MAX_STATE_BYTES` check keeps both stores refusing the
same documents.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from es_framework.shell.state_store.base import (
    SCHEMA,
    Leadership,
    LeadershipCallback,
    LeadershipStatus,
    StateCorruptError,
    StateStoreError,
    StateUnavailableError,
    StoredState,
    check_document,
    check_name,
    decode,
    default_identifier,
    encode,
    exists_conflict,
    log,
    version_conflict,
)


class FileStateStore(LeadershipStatus):
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
        check_name(framework_name, "framework name")
        check_name(cluster_name, "cluster name")
        self.root = Path(directory) / framework_name / cluster_name
        self.state_file = self.root / "state.json"
        self.identifier = identifier or default_identifier()
        super().__init__(f"state {self.root}", on_leadership_change)
        self._leader_fd: int | None = None
        self._mutex = threading.Lock()
        self._closed = False

    def start(self, timeout: float = 15.0) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateUnavailableError(f"cannot create {self.root}: {exc.strerror}") from None

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
        payload = decode(data, str(self.state_file))
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
        check_document(document)
        with self._write_lock():
            if self.state_file.exists():
                raise exists_conflict(str(self.state_file))
            self._replace({"schema": SCHEMA, "version": 0, "state": document})
        return StoredState(document=document, version=0)

    def write(self, document: dict[str, Any], expected_version: int) -> StoredState:
        check_document(document)
        with self._write_lock():
            current = self._read_payload()
            if current is None or current["version"] != expected_version:
                raise version_conflict(str(self.state_file), expected_version)
            version = expected_version + 1
            self._replace({"schema": SCHEMA, "version": version, "state": document})
        return StoredState(document=document, version=version)

    def delete(self) -> None:
        with self._write_lock():
            self.state_file.unlink(missing_ok=True)

    def _replace(self, payload: dict[str, Any]) -> None:
        data = encode(payload)
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
        if fd is not None:
            log.info("state store: %s released the leader lock %s", self.identifier, self.root / "leader.lock")
