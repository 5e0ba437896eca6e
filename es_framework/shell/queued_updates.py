"""Which status updates wait in the driver shell's queue, so that a re-sent copy of one still waiting
is dropped instead of queued again.

Why: Mesos re-sends a status update until the scheduler acknowledges it (the agent's status update
manager: after 10 s, then doubling to 10 minutes; src/slave/constants.hpp). A scheduler that falls
behind — 10,000 tasks starting, or reconciling after a failover — would otherwise queue every
re-sent copy behind the original, each one more to handle and acknowledge before the queue drains,
and hold them all in memory. A copy is the same ``(task id, uuid)``; the original, still queued,
is handled and acknowledged, which is all the copy asks for. An update without a uuid (a
reconciliation answer, never acknowledged) is always queued.

What waits is only what the engine reads of an update (:func:`slim`,
:data:`~es_framework.core.status_updates.READ_FIELDS`): at 10,000 nodes the queue held 8,000
updates while the engine caught up, and a ``TaskStatus`` with its ``container_status`` (network
infos, addresses, cgroup info) is several times the size of those fields.
"""

from __future__ import annotations

import threading
from typing import Any

from es_framework.core.status_updates import READ_FIELDS
from es_framework.shell.mesos_objects import plain, value_of


def slim(status: Any) -> Any:
    """``status`` (a v1 ``TaskStatus``, plain or addict) as a plain dict with only the fields the engine
    reads; anything else as it is (the engine refuses it with a clear error)."""
    status = plain(status)
    if not isinstance(status, dict):
        return status
    return {key: status[key] for key in READ_FIELDS if key in status}


def update_key(status: Any) -> tuple[str, str] | None:
    """``(task id, uuid)`` of a status update, or None when it has no uuid (or cannot be read)."""
    if not isinstance(status, dict):
        return None
    task_id, uuid = value_of(status.get("task_id")), status.get("uuid")
    return (task_id, uuid) if task_id is not None and isinstance(uuid, str) and uuid else None


class QueuedUpdates:
    """The keys of the status updates in the queue: pymesos' thread admits, the engine thread takes."""

    def __init__(self) -> None:
        self._keys: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def admit(self, status: Any) -> bool:
        """Whether ``status`` should be queued: False for a copy of one still waiting."""
        key = update_key(status)
        if key is None:
            return True
        with self._lock:
            if key in self._keys:
                return False
            self._keys.add(key)
            return True

    def taken(self, status: Any) -> None:
        """``status`` left the queue for the engine: a copy of it arriving now is queued again (its
        acknowledgement may have been lost)."""
        key = update_key(status)
        if key is not None:
            with self._lock:
                self._keys.discard(key)

    def __len__(self) -> int:
        with self._lock:
            return len(self._keys)
