"""The volume inventory: every external volume the framework may have created, and its standing now.

One row per volume (config and data) of every node id that ever launched with external volumes
(:attr:`ClusterState.volumes <es_framework.core.node_state.ClusterState.volumes>`), plus the
volumes a node record names whose launch the state did not record (written by a release before
the inventory, schema 1 or 2): for each, where it was last attached, whether a task of ours holds it now, whether
it is an *orphan* (no node of the cluster will attach it again on its own) and whether the
configuration now names another profile for its role than the one it was created with.

A volume is *held* while a node record holds its node id in a state other than one after which
the task certainly runs nowhere (:data:`~es_framework.core.node_state.FREEING_STATES`): launching,
staging, starting, running, killing, unreachable or unknown. Mesos' task states
(``include/mesos/v1/mesos.proto`` in apache/mesos) mark neither ``TASK_UNREACHABLE`` (its agent
lost contact with the master) nor ``TASK_UNKNOWN`` as terminal: such a task may still run and
write to its volumes, so it still holds them. This is the identity rule
(:mod:`es_framework.core.status_updates`): the id, and so the volumes named after it, stays
reserved exactly while a record holds it.

``GET /v1/volumes`` and ``es-framework volumes`` both show :func:`volume_inventory`'s result as
:meth:`VolumeInventory.to_json`; the inventory only reads the state and the configuration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from es_framework.config import Config
from es_framework.core.node_state import FREEING_STATES, ClusterState, NodeRecord
from es_framework.core.profile_tables import VolumeProfileError
from es_framework.core.volume_profiles import role_volumes, volume_specs
from es_framework.core.volumes import Options, VolumeRemoval, VolumeSet, VolumeSpec

#: The current configuration's volumes of a node id (``volume_specs`` bound to a configuration),
#: or None when the configuration names no volume driver.
CurrentSpecs = Callable[[int], tuple[VolumeSpec, VolumeSpec]] | None


@dataclass(frozen=True)
class VolumeRow:
    """One volume of the inventory. Times are Unix seconds (UTC)."""

    #: The bare volume name (``<framework><id>config`` / ``…data``).
    name: str
    #: ``config`` or ``data``.
    role: str
    node_id: int
    #: The driver, profile and options it was created with; None (and no options) when the state
    #: does not know them (``recorded`` is False).
    driver: str | None
    profile: str | None
    options: Options
    #: False for a volume known only from a node record written before the state kept the
    #: inventory: its driver, profile and first launch are unknown.
    recorded: bool
    #: The agent (and its host and zone) of the task that attached it last: the last one launched
    #: with it, or the live holder when that runs elsewhere (a task adopted after a failover).
    last_agent_id: str | None
    last_hostname: str | None
    last_zone: str | None
    #: When the first and the last task with this volume were launched (None when not recorded).
    first_launched_at: float | None
    last_launched_at: float | None
    #: A task of ours holds the volume now (its node id's record is not in a freeing state).
    held: bool
    #: The holding task, its state (``LAUNCHING``, ``TASK_RUNNING``, ``TASK_UNREACHABLE``, …) and
    #: since when it holds the volume (its launch, else when it was first seen running); None when
    #: not held.
    holder_task_id: str | None
    holder_state: str | None
    held_since: float | None
    #: No node of the cluster will attach it again on its own: its node id is above the desired
    #: count (a scale-down), or the framework was torn down. ``orphan_reason`` says which.
    orphan: bool
    orphan_reason: str | None
    #: The configuration now names another profile for this role than the one the volume was
    #: created with (an existing volume keeps its profile: the Docker volume plugin API has no call
    #: that changes it). ``configured_profile`` is that profile; None without a volume driver.
    profile_differs: bool
    configured_profile: str | None
    #: When the volume was removed (``--volumeRetention delete``); it exists no more.
    removed_at: float | None
    #: Its node id's removal (see :mod:`es_framework.core.volume_tasks`): ``released``, ``in-flight``,
    #: ``failed``, ``gave-up`` or ``removed``; the last removal task, attempts so far and the last
    #: error. None when no removal was ever asked for.
    removal_status: str | None = None
    removal_task_id: str | None = None
    removal_attempts: int = 0
    removal_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "node_id": self.node_id,
            "driver": self.driver,
            "profile": self.profile,
            "options": {key: value for key, value in self.options},
            "recorded": self.recorded,
            "last_agent_id": self.last_agent_id,
            "last_hostname": self.last_hostname,
            "last_zone": self.last_zone,
            "first_launched_at": iso_time(self.first_launched_at),
            "last_launched_at": iso_time(self.last_launched_at),
            "held": self.held,
            "holder_task_id": self.holder_task_id,
            "holder_state": self.holder_state,
            "held_since": iso_time(self.held_since),
            "orphan": self.orphan,
            "orphan_reason": self.orphan_reason,
            "profile_differs": self.profile_differs,
            "configured_profile": self.configured_profile,
            "removed_at": iso_time(self.removed_at),
            "removal_status": self.removal_status,
            "removal_task_id": self.removal_task_id,
            "removal_attempts": self.removal_attempts,
            "removal_error": self.removal_error,
        }


@dataclass(frozen=True)
class VolumeInventory:
    """Every row, ordered by node id then role (config before data), and what they add up to."""

    rows: tuple[VolumeRow, ...]
    desired_nodes: int
    #: When ``es-framework teardown`` marked the state torn down; None while the framework lives.
    torn_down_at: float | None = None

    @property
    def total(self) -> int:
        return len(self.rows)

    @property
    def held(self) -> int:
        return sum(row.held for row in self.rows)

    @property
    def orphans(self) -> int:
        return sum(row.orphan for row in self.rows)

    @property
    def profile_differs(self) -> int:
        return sum(row.profile_differs for row in self.rows)

    @property
    def removed(self) -> int:
        return sum(row.removed_at is not None for row in self.rows)

    def to_json(self) -> dict[str, Any]:
        return {
            "volumes": [row.to_json() for row in self.rows],
            "counts": {
                "total": self.total,
                "held": self.held,
                "orphans": self.orphans,
                "profile_differs": self.profile_differs,
                "removed": self.removed,
            },
            "desired_nodes": self.desired_nodes,
            "torn_down_at": iso_time(self.torn_down_at),
        }


def iso_time(seconds: float | None) -> str | None:
    """``seconds`` as ISO 8601 in UTC (``2026-09-21T10:00:00Z``), as the REST API renders times."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def volume_inventory(state: ClusterState, config: Config) -> VolumeInventory:
    """The inventory of ``state``, compared with what ``config`` would create now.

    A configuration whose profiles do not resolve (the start-up checks refuse it) is compared with
    nothing: the inventory still lists what the state knows instead of failing."""
    current: CurrentSpecs = None
    if config.external_volume_driver:
        try:
            role_volumes(config)
            current = partial(volume_specs, config)
        except VolumeProfileError:
            current = None
    return inventory_of(state, current)


def holds_volumes(record: NodeRecord) -> bool:
    """Whether the task of ``record`` may still run with its node's volumes attached."""
    return record.state not in FREEING_STATES


def inventory_of(state: ClusterState, current: CurrentSpecs) -> VolumeInventory:
    """The inventory of ``state``; ``current`` gives the volumes the configuration would create."""
    unrecorded = {i: r for i, r in state.nodes.items() if r.volumes is not None and i not in state.volumes}
    rows: list[VolumeRow] = []
    for node_id in sorted({*state.volumes, *unrecorded}):
        record = state.nodes.get(node_id)
        holder = record if record is not None and holds_volumes(record) else None
        entry = state.volumes.get(node_id)
        wanted = current(node_id) if current is not None else None
        if entry is not None:
            rows.extend(_recorded_rows(state, entry, holder, wanted))
        else:
            rows.extend(_unrecorded_rows(state, unrecorded[node_id], holder, wanted))
    return VolumeInventory(tuple(rows), state.desired_nodes, state.torn_down_at)


def orphan_reason(state: ClusterState, node_id: int, *, held: bool, removed: bool) -> str | None:
    """Why the volumes of ``node_id`` are orphans, or None when a node of the cluster still uses them."""
    if removed:
        return None  # they exist no more
    if state.torn_down_at is not None:
        return f"the framework was torn down at {iso_time(state.torn_down_at)}"
    if node_id > state.desired_nodes:
        reason = f"node {node_id} is above the desired {state.desired_nodes} node(s) (scaled down)"
        return reason + ("; its task still holds them until it is stopped" if held else "")
    return None


def _holding(holder: NodeRecord | None, entry: VolumeSet | None) -> tuple[str | None, str | None, float | None]:
    if holder is None:
        return None, None, None
    if entry is not None and entry.last_agent_id == holder.agent_id:
        since: float | None = entry.last_launched_at
    else:
        # Adopted, or launched before the inventory was kept: its launch time is not recorded.
        since = holder.started_at
    return holder.task_id, holder.state.value, since


def _recorded_rows(
    state: ClusterState, entry: VolumeSet, holder: NodeRecord | None, wanted: tuple[VolumeSpec, VolumeSpec] | None
) -> list[VolumeRow]:
    task_id, task_state, since = _holding(holder, entry)
    reason = orphan_reason(state, entry.node_id, held=holder is not None, removed=entry.removed_at is not None)
    # A holder on another agent than the last recorded launch (adopted) is where the volumes are now.
    moved = holder is not None and holder.agent_id != entry.last_agent_id
    agent, hostname, zone = (
        (holder.agent_id, holder.hostname, holder.zone)
        if holder is not None and moved
        else (entry.last_agent_id, entry.last_hostname, entry.last_zone)
    )
    rows = []
    for index, spec in enumerate(entry.specs):
        configured = wanted[index].profile if wanted is not None else None
        rows.append(
            VolumeRow(
                name=spec.name,
                role=spec.role,
                node_id=entry.node_id,
                driver=entry.driver,
                profile=spec.profile,
                options=spec.options,
                recorded=True,
                last_agent_id=agent,
                last_hostname=hostname,
                last_zone=zone,
                first_launched_at=entry.first_launched_at,
                last_launched_at=entry.last_launched_at,
                held=holder is not None,
                holder_task_id=task_id,
                holder_state=task_state,
                held_since=since,
                orphan=reason is not None,
                orphan_reason=reason,
                # A removed volume has no profile left to differ; a new launch creates it afresh.
                profile_differs=entry.removed_at is None and configured is not None and configured != spec.profile,
                configured_profile=configured,
                removed_at=entry.removed_at,
                **_removal_fields(state.volume_removals.get(entry.node_id)),
            )
        )
    return rows


def _removal_fields(removal: VolumeRemoval | None) -> dict[str, Any]:
    if removal is None:
        return {}
    return {
        "removal_status": removal.status(),
        "removal_task_id": removal.task_id,
        "removal_attempts": removal.attempts,
        "removal_error": removal.last_error,
    }


def _unrecorded_rows(
    state: ClusterState, record: NodeRecord, holder: NodeRecord | None, wanted: tuple[VolumeSpec, VolumeSpec] | None
) -> list[VolumeRow]:
    assert record.volumes is not None
    task_id, task_state, since = _holding(holder, None)
    reason = orphan_reason(state, record.node_id, held=holder is not None, removed=False)
    return [
        VolumeRow(
            name=name,
            role=role,
            node_id=record.node_id,
            driver=None,
            profile=None,
            options=(),
            recorded=False,
            last_agent_id=record.agent_id,
            last_hostname=record.hostname,
            last_zone=record.zone,
            first_launched_at=None,
            last_launched_at=None,
            held=holder is not None,
            holder_task_id=task_id,
            holder_state=task_state,
            held_since=since,
            orphan=reason is not None,
            orphan_reason=reason,
            # What it was created with is not known, so neither is whether it differs.
            profile_differs=False,
            configured_profile=wanted[index].profile if wanted is not None else None,
            removed_at=None,
        )
        for index, (name, role) in enumerate(zip(record.volumes, ("config", "data"), strict=True))
    ]
