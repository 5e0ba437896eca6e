"""The external volumes of every node id ever used: what was created, with which profile, where.

A node id's two volumes (``<framework><id>config`` and ``<framework><id>data``) outlive its tasks:
a replacement re-attaches them, a scale-down leaves them behind. The state keeps one
:class:`VolumeSet` per node id that ever launched with external volumes, recorded with the launch
(before the ACCEPT goes out), so the inventory (``GET /v1/volumes``) knows every volume the
framework may have created even after its node is gone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

#: A volume's driver options, as (key, value) pairs in the order they were given.
Options = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class VolumeSpec:
    """One volume as the framework asked the driver for it."""

    #: The bare volume name (the node's identity; a driver may receive ``name@profile``).
    name: str
    #: ``config`` or ``data``.
    role: str
    #: The storage profile it was created under (``default`` when none was named).
    profile: str = "default"
    options: Options = ()


@dataclass(frozen=True)
class VolumeSet:
    """The two volumes of one node id."""

    node_id: int
    driver: str
    config: VolumeSpec
    data: VolumeSpec
    #: When a task first launched with these volumes (Unix seconds).
    first_launched_at: float
    #: The agent (and host) the last task with these volumes was launched on, and when.
    last_agent_id: str
    last_hostname: str
    last_launched_at: float
    #: The zone of that agent (None when it has none): a zonal volume (EBS, say) can only be
    #: attached there again.
    last_zone: str | None = None
    #: Set once the volumes were removed (``--volumeRetention delete``); they are gone then.
    removed_at: float | None = None

    @property
    def specs(self) -> tuple[VolumeSpec, VolumeSpec]:
        return self.config, self.data


def record_volume_launch(
    volumes: Mapping[int, VolumeSet],
    node_id: int,
    driver: str,
    specs: tuple[VolumeSpec, VolumeSpec],
    *,
    agent_id: str,
    hostname: str,
    zone: str | None,
    now: float,
) -> Mapping[int, VolumeSet]:
    """The inventory after node ``node_id`` was launched on ``agent_id`` with ``specs``.

    A volume keeps the driver, profile and options it was first created with: no call of the
    Docker volume plugin API changes an existing volume, so what a later configuration names is
    only compared with it (see the inventory), never recorded over it. Volumes recorded as removed
    are created again by this launch, so they are recorded anew.
    """
    known = volumes.get(node_id)
    if known is None or known.removed_at is not None:
        entry = VolumeSet(node_id, driver, specs[0], specs[1], now, agent_id, hostname, now, zone)
    else:
        entry = replace(known, last_agent_id=agent_id, last_hostname=hostname, last_launched_at=now, last_zone=zone)
    return MappingProxyType({**volumes, node_id: entry})


#: Removal attempts after which a removal waits for an operator (see :mod:`es_framework.core.volume_tasks`).
MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class VolumeRemoval:
    """The removal of one node id's volumes: released, in flight, failed or done. Times are Unix seconds."""

    node_id: int
    #: Why the volumes may go: ``scale-down`` (the node was drained and stopped) or ``teardown``.
    reason: str
    #: When they were released for removal; a later launch with these volumes cancels it (see
    #: :func:`removals_due`).
    released_at: float
    #: The bare volume names (config, data) the task removes.
    volumes: tuple[str, ...]
    #: The last removal task and its agent (None before the first attempt).
    task_id: str | None = None
    agent_id: str | None = None
    hostname: str | None = None
    #: When the last task was launched, and when its result came (None while it is in flight).
    started_at: float | None = None
    ended_at: float | None = None
    #: Tasks launched so far.
    attempts: int = 0
    #: Why the last attempt failed (None when it succeeded or none ended yet).
    last_error: str | None = None
    #: When the driver removed the volumes.
    removed_at: float | None = None

    @property
    def in_flight(self) -> bool:
        """A removal task was launched (or is about to be) and its end is not known."""
        return self.task_id is not None and self.ended_at is None

    @property
    def gave_up(self) -> bool:
        return self.removed_at is None and not self.in_flight and self.attempts >= MAX_ATTEMPTS

    def status(self) -> str:
        """One word for the inventory and the log: released, in-flight, failed, gave-up or removed."""
        if self.removed_at is not None:
            return "removed"
        if self.in_flight:
            return "in-flight"
        if self.gave_up:
            return "gave-up"
        return "failed" if self.last_error is not None else "released"


def reconcile_removal_tasks(removals: Mapping[int, VolumeRemoval]) -> list[dict[str, Any]]:
    """The in-flight removal tasks for the explicit RECONCILE list (with their agent ids, as for nodes)."""
    return [
        {"task_id": {"value": r.task_id}, "agent_id": {"value": r.agent_id}}
        for _, r in sorted(removals.items())
        if r.in_flight and r.task_id is not None and r.agent_id is not None
    ]
