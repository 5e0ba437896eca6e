"""Which task holds which named volume, since when (development tool, not for production).

The development master keeps this ledger for every executor backend, because no backend but
Docker's has a volume driver that could tell: a task's named volumes (what
:func:`~.processes.volume_mounts` reads from the TaskInfo its backend is given, so a volume the
agent's isolators skip is not attached) are attached when the agent hands the task to its
executor, and detached when the task reaches a terminal state (its executor reports it ended, or
the agent is marked gone). A task on an unreachable agent keeps its volumes: its container still
runs on the partitioned machine, which is why the scheduler must keep its node id.

The ledger also keeps every launch since the master started (one :class:`Attachment` per task,
with no volume at all for a task without one), so a tool can check afterwards that no two live
tasks ever shared a node id or a volume, to the instant (``time.monotonic`` of the master's
process). A second attachment of a volume that is already attached is recorded and logged as a
warning: a real driver would refuse it or pre-empt the first holder (REX-Ray's ``preempt``), and
either way two nodes would have written one data directory.

Every method expects the master's lock held.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from es_framework.dev.devcluster.processes import volume_mounts

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attachment:
    """One executor task's life on its agent and the named volumes it held meanwhile."""

    framework_id: str
    task_id: str
    agent_id: str
    volumes: tuple[str, ...]
    #: ``time.monotonic()`` when the agent handed the task to its executor.
    attached_at: float
    #: When the task reached a terminal state (``None``: it still holds its volumes).
    detached_at: float | None = None
    #: The terminal state that detached it.
    ended_as: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "framework_id": self.framework_id,
            "task_id": self.task_id,
            "agent_id": self.agent_id,
            "volumes": list(self.volumes),
            "attached_at": self.attached_at,
            "detached_at": self.detached_at,
            "ended_as": self.ended_as,
        }


def task_volumes(task_info: Mapping[str, Any]) -> tuple[str, ...]:
    """The named volumes (not host paths) the task's executor mounts, each once, in order."""
    names = [source for kind, source, _ in volume_mounts(task_info) if kind == "volume"]
    return tuple(dict.fromkeys(names))


class VolumeAttachments:
    """The ledger: every launch's attachment, open or closed, in launch order."""

    def __init__(self) -> None:
        self._history: list[Attachment] = []
        self._open: dict[tuple[str, str], int] = {}

    def attach(self, framework_id: str, task_id: str, agent_id: str, task_info: Mapping[str, Any], now: float) -> None:
        volumes = task_volumes(task_info)
        for volume in volumes:
            holders = [a.task_id for a in self.attached() if volume in a.volumes]
            if holders:
                logger.warning(
                    "agent %s: volume %s attached to task %s while task(s) %s hold it",
                    agent_id,
                    volume,
                    task_id,
                    ", ".join(holders),
                )
        self._open[(framework_id, task_id)] = len(self._history)
        self._history.append(Attachment(framework_id, task_id, agent_id, volumes, now))

    def detach(self, framework_id: str, task_id: str, state: str, now: float) -> None:
        index = self._open.pop((framework_id, task_id), None)
        if index is not None:
            self._history[index] = replace(self._history[index], detached_at=now, ended_as=state)

    def attached(self) -> list[Attachment]:
        """The tasks that hold their volumes now."""
        return [self._history[i] for i in sorted(self._open.values())]

    def history(self) -> list[Attachment]:
        """Every attachment since the master started, oldest first."""
        return list(self._history)
