"""What the chaos runner watches while faults happen: who holds the leader lock, and which process
sent each call the development master took.

:class:`LockWatcher` samples the leader lock every 50 ms with its own ZooKeeper client: the holder
is the lowest-sequence child of ``<root>/leader`` (kazoo's lock recipe), and its data is the
contender's identifier, ``<hostname>:<pid>`` (``default_identifier`` in the state store).

:class:`CallRecorder` wraps the in-process master's ``subscribe`` and ``handle_call``: a
SUBSCRIBE's stream is tied to the local process that opened the connection (the peer port the HTTP
front hands over, found in ``/proc/net/tcp`` and in the candidate processes' file descriptors), and
every call the master takes on that stream afterwards is recorded with that process id.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient

from es_framework.dev.chaos.invariants import LockSample, TakenCall
from es_framework.dev.devcluster import DevMaster
from es_framework.dev.devcluster.http_api import subscribing_peer

logger = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 0.05
#: The watcher's reconnection to ZooKeeper: every 0.1 s without back-off. Kazoo's default back-off
#: doubles up to 60 s, so after a ``ZOOKEEPER_RESTART`` the watcher was seen blind for up to 18 s:
#: the lock's holder unknown (faults aimed at a stale leader, API calls retried in vain) and every
#: call in that gap unjudged by ``acted_only_as_leader``. It is a single local client: no herd.
RECONNECT_DELAY_S = 0.1
#: The watcher's session timeout. Kazoo waits this long for the answer to its connect request, and a
#: ZooKeeper just started accepts connections a moment before it answers them: with 10 s the watcher
#: was seen blind for 9 s after a restart, holding up the convergence wait (which needs a fresh
#: sample). The watcher holds no ephemeral node, so a session it loses costs nothing.
SESSION_TIMEOUT_S = 1.5


def _sequence(child: str) -> int:
    digits = child.rsplit("__", 1)[-1]
    return int(digits) if digits.isdigit() else 1 << 62


class LockWatcher:
    """Samples the leader lock's holder (a pid) every :data:`SAMPLE_INTERVAL_S` in a thread."""

    def __init__(self, hosts: str, lock_path: str) -> None:
        self.lock_path = lock_path
        self._client = KazooClient(
            hosts=hosts,
            timeout=SESSION_TIMEOUT_S,
            connection_retry={"max_tries": -1, "delay": RECONNECT_DELAY_S, "backoff": 1, "max_jitter": 0.0},
        )
        self._samples: list[LockSample] = []
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-lock-watcher", daemon=True)

    def start(self) -> LockWatcher:
        self._client.start(timeout=15)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        with contextlib.suppress(Exception):
            self._client.stop()
            self._client.close()

    def holder(self) -> int | None:
        """One reading now (``ValueError`` style errors from ZooKeeper propagate)."""
        children = self._client.get_children(self.lock_path) if self._client.exists(self.lock_path) else []
        if not children:
            return None
        lowest = min(children, key=_sequence)
        data, _ = self._client.get(f"{self.lock_path}/{lowest}")
        pid = data.decode("utf-8", "replace").rsplit(":", 1)[-1]
        return int(pid) if pid.isdigit() else None

    def contenders(self) -> list[tuple[str, int | None, int]]:
        """Every contender of the lock now, lowest (the holder) first: ``(znode, pid, session id)``."""
        out = []
        for child in sorted(self._client.get_children(self.lock_path), key=_sequence):
            with contextlib.suppress(Exception):  # gone in between
                data, stat = self._client.get(f"{self.lock_path}/{child}")
                pid = data.decode("utf-8", "replace").rsplit(":", 1)[-1]
                out.append((child, int(pid) if pid.isdigit() else None, stat.ephemeralOwner))
        return out

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            try:
                holder = self.holder()
            except Exception:  # ZooKeeper down (a fault): no sample, try again
                continue
            with self._guard:
                self._samples.append(LockSample(time.monotonic(), holder))

    def samples(self) -> list[LockSample]:
        with self._guard:
            return list(self._samples)

    def latest(self, max_age_s: float | None = None) -> int | None:
        """The holder of the last sample; ``None`` also when that sample is older than ``max_age_s``
        (the watcher is blind: ZooKeeper down, or its session reconnecting)."""
        with self._guard:
            if not self._samples:
                return None
            last = self._samples[-1]
        if max_age_s is not None and time.monotonic() - last.at > max_age_s:
            return None
        return last.holder_pid


def _socket_inode(local_port: int, remote_port: int) -> str | None:
    """The inode of the TCP socket ``127.0.0.1:local_port`` → ``remote_port`` (``/proc/net/tcp``)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, remote, inode = fields[1], fields[2], fields[9]
                if int(local.rsplit(":", 1)[1], 16) == local_port and int(remote.rsplit(":", 1)[1], 16) == remote_port:
                    return inode
    return None


def process_of_connection(local_port: int, remote_port: int, pids: Iterable[int]) -> int | None:
    """Which of ``pids`` owns the connection from ``local_port`` to ``remote_port`` (``None``: none)."""
    inode = _socket_inode(local_port, remote_port)
    if inode is None:
        return None
    wanted = f"socket:[{inode}]"
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == wanted:
                        return pid
    return None


class CallRecorder:
    """Records every call the master takes with the pid of the scheduler whose stream sent it."""

    def __init__(self, master: DevMaster, pids: Callable[[], Iterable[int]]) -> None:
        self._master_port = master.port
        self._pids = pids
        self._guard = threading.Lock()
        self._calls: list[TakenCall] = []
        self._stream_pid: dict[str, int | None] = {}
        subscribe, handle_call = master.subscribe, master.handle_call

        def recording_subscribe(call: dict[str, Any]) -> Any:
            peer = subscribing_peer()
            pid = process_of_connection(peer[1], self._master_port, self._pids()) if peer else None
            sub = subscribe(call)
            with self._guard:
                self._stream_pid[sub.stream_id] = pid
                self._calls.append(TakenCall(time.monotonic(), "SUBSCRIBE", pid))
            return sub

        def recording_handle_call(call: object, stream_id: str | None) -> None:
            handle_call(call, stream_id)  # a refused call raises CallError: not taken, not recorded
            kind = str(call.get("type")) if isinstance(call, dict) else "?"
            if kind == "ACCEPT" and isinstance(call, dict) and not _launches(call):
                kind = "ACCEPT(no launch)"
            with self._guard:
                self._calls.append(
                    TakenCall(time.monotonic(), kind, self._stream_pid.get(stream_id or ""), _killed(call))
                )

        master.subscribe = recording_subscribe  # type: ignore[method-assign]
        master.handle_call = recording_handle_call  # type: ignore[method-assign]

    def calls(self) -> list[TakenCall]:
        with self._guard:
            return list(self._calls)

    def stream_pid(self, stream_id: str) -> int | None:
        """The process that opened the event stream ``stream_id`` (``None``: unknown, or not yet recorded)."""
        with self._guard:
            return self._stream_pid.get(stream_id)


def _killed(call: object) -> str | None:
    """The task a KILL names (``None`` for any other call)."""
    if not isinstance(call, dict) or call.get("type") != "KILL":
        return None
    task = (call.get("kill") or {}).get("task_id") or {}
    return str(task["value"]) if isinstance(task, dict) and "value" in task else None


def _launches(call: dict[str, Any]) -> bool:
    operations = (call.get("accept") or {}).get("operations") or []
    return any(isinstance(op, dict) and op.get("type") == "LAUNCH" for op in operations)


__all__ = ["CallRecorder", "LockWatcher", "process_of_connection"]
