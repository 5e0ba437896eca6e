"""Removing a node id's external volumes through a volume task (``--volumeRetention delete``), as pure
functions.

The scheduler has no channel to a volume plugin on an agent, so the driver work runs as a small Mesos
*command task* of ours (no executor, no container image: Mesos' command executor runs it) on an agent
that can reach the driver, the agent ``--externalVolumeAttribute`` names. It runs ``docker volume rm
<config> <data>`` and its status update is the result: the command executor sends ``TASK_FINISHED``
when the command exits 0 and ``TASK_FAILED`` with ``Command exited with status N`` (or ``Command
terminated with signal S``) otherwise (``src/launcher/executor.cpp``, ``reaped``, with the wording of
``WSTRINGIFY`` in ``src/common/status_utils.hpp``, apache/mesos). Its task id is a *volume task id*
(:func:`identity.task_ids.volume_task_id_for`), which can never be taken for a node's task.

Why plain ``docker volume rm`` and never ``--force``: Docker refuses to remove a volume that a
container uses ("You can't remove a volume that's in use by a container", the ``docker volume rm``
reference, docs.docker.com/reference/cli/docker/volume/rm), which is one more guard, on the agent
itself, against removing a live node's data. ``--force`` makes the daemon purge its own record of the
volume even when the driver failed to remove it and count a missing volume as removed (moby,
``volume/service/opts``: ``WithPurgeOnError``, set by the API's ``force``), so a failure would read as
success; and under podman's ``docker`` compatibility command ``--force`` removes the containers using
the volume first.

A volume that does not exist: ``docker volume rm`` exits 1 ("no such volume"), as it does for a volume
in use and for a driver that cannot be reached. The command executor reports only the exit status, so
the scheduler cannot tell these apart, and neither would a ``docker volume inspect`` task (it exits 1
both for a missing volume and for a driver it cannot reach). So a removal counts as done only when
``docker volume rm`` exits 0, never by inference: a failed attempt is retried with a capped back-off
(:func:`retry_delay`) and, after :data:`MAX_ATTEMPTS`, left for the operator with its last error (the
volumes stay in the inventory, never silently called removed). Both names go in one command, so a
half-done removal happens only when the driver removes one volume and refuses the other.

The lifecycle of one node id's removal (:class:`VolumeRemoval`, one per node id in the state):

1. *released* (:func:`release_for_removal`): the node's drain finished and its task stopped as a
   scale-down asked, or an operator's ``teardown --purge-volumes`` released it; no task yet.
2. *due* (:func:`removals_due`): retention is ``delete`` (or the release was a teardown's), the
   strategy is external, the id is above the desired count, **no node record holds the id** (a record
   exists until its task is certainly dead: an unreachable or unknown task keeps it, see
   :mod:`es_framework.core.status_updates`), the volumes were not removed, no removal task is in
   flight and the back-off after a failure has passed.
3. *in flight* (:func:`build_removal_task`): recorded, then launched on an offer that
   :func:`offer_can_remove`; meanwhile the id must not be launched (:func:`ids_held_by_removals`).
4. *settled* (:func:`settle_removal` of :func:`removal_result`): removed (:func:`mark_volumes_removed`)
   or failed (``last_error``; due again after the back-off).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, cast

from es_framework.config import Config
from es_framework.config.constraints import HOSTNAME_FIELD, Constraint
from es_framework.core.node_state import ClusterState
from es_framework.core.offers import Offer, attribute_texts
from es_framework.core.resources import Requirements, available, carve, format_milli
from es_framework.core.task_builder import CLUSTER_LABEL
from es_framework.core.volumes import MAX_ATTEMPTS, VolumeRemoval, VolumeSet
from identity.task_ids import volume_task_id_for

#: What a removal task takes: enough for the ``docker`` client and the command executor.
REMOVAL_CPUS_MILLI = 100
REMOVAL_MEM_MILLI = 32 * 1000
#: The command executor kills a task still running after this long and reports TASK_FAILED /
#: REASON_MAX_COMPLETION_TIME_REACHED (``TaskInfo.max_completion_time``): a hung driver call must not
#: hold the removal in flight for ever.
REMOVAL_MAX_SECONDS = 300
#: Back-off after a failed attempt: 30 s, doubling, at most an hour; after this many attempts the
#: removal waits for an operator (see :func:`retry_delay`).
RETRY_BASE_SECONDS = 30.0
RETRY_CAP_SECONDS = 3600.0
#: A released removal waits this long first: an executor sends TASK_KILLED before its container has
#: exited, and Docker refuses to remove a volume a container still uses.
RELEASE_GRACE_SECONDS = 10.0
#: Labels of a volume task (a node's task carries ``es-mesos.node-id`` instead: tools that read that
#: label must never take a volume task for a node).
VOLUME_TASK_LABEL = "es-mesos.volume-task"
VOLUMES_NODE_ID_LABEL = "es-mesos.volumes-of-node"
REMOVE = "remove"
#: The reason ``teardown --purge-volumes`` releases volumes with: the operator confirmed their removal,
#: so it goes ahead whatever ``--volumeRetention`` says (a scale-down's release needs ``delete``).
TEARDOWN = "teardown"
#: Docker's own driver keeps volumes on one host: only that agent can remove them.
HOST_SCOPED_DRIVERS = frozenset({"local"})

_TERMINAL_SUCCESS = "TASK_FINISHED"
#: Task states after which a removal task certainly runs nowhere and did not succeed. TASK_UNKNOWN
#: (Mesos no longer knows the task, e.g. after reconciliation) counts as ended: the id is above the
#: desired count, and the attempt is retried.
_TERMINAL_FAILURE = frozenset(
    {
        "TASK_FAILED",
        "TASK_KILLED",
        "TASK_ERROR",
        "TASK_LOST",
        "TASK_DROPPED",
        "TASK_GONE",
        "TASK_GONE_BY_OPERATOR",
        "TASK_UNKNOWN",
    }
)


def retry_delay(attempts: int) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt: 30 s doubling, capped at an hour."""
    if attempts < 1:
        return 0.0
    return min(RETRY_BASE_SECONDS * (1 << min(attempts - 1, 30)), RETRY_CAP_SECONDS)


def release_for_removal(
    removals: Mapping[int, VolumeRemoval], volume_set: VolumeSet, *, reason: str, now: float
) -> Mapping[int, VolumeRemoval]:
    """The removals after node ``volume_set.node_id``'s volumes were released (its drain finished and its
    task stopped as a scale-down asked, or ``teardown --purge-volumes``). A removal in flight is kept as
    it is; a settled or earlier one is replaced (the volumes were launched again since)."""
    known = removals.get(volume_set.node_id)
    if known is not None and known.in_flight:
        return removals
    entry = VolumeRemoval(
        node_id=volume_set.node_id,
        reason=reason,
        released_at=now,
        volumes=tuple(spec.name for spec in volume_set.specs),
    )
    return MappingProxyType({**removals, volume_set.node_id: entry})


def removals_due(
    state: ClusterState, config: Config, now: float, *, removals: Mapping[int, VolumeRemoval]
) -> list[int]:
    """Node ids whose volumes a removal task should remove now, lowest first.

    Every condition must hold: ``--volumeRetention delete``, or a teardown released the volumes
    (:data:`TEARDOWN`); the external strategy (a volume driver is configured); the id is above the
    desired count (a teardown sets it to 0); no node record holds the id (a record exists until
    its task is certainly dead and freed, see :mod:`es_framework.core.status_updates`: an unreachable or
    unknown task keeps it); the id's volumes are known and not removed; they were released after the
    last launch with them (the drain finished); no removal task is in flight; the back-off after a
    failed attempt has passed and fewer than :data:`MAX_ATTEMPTS` were made.
    """
    due: list[int] = []
    for node_id in sorted(removals):
        removal = removals[node_id]
        volume_set = state.volumes.get(node_id)
        if (
            not _removable(removal, config)
            or node_id <= state.desired_nodes
            or node_id in state.nodes
            or volume_set is None
            or volume_set.removed_at is not None
            or removal.removed_at is not None
            or removal.released_at < volume_set.last_launched_at
            or removal.in_flight
            or removal.attempts >= MAX_ATTEMPTS
        ):
            continue
        if now < _due_at(removal):
            continue
        due.append(node_id)
    return due


def _removable(removal: VolumeRemoval, config: Config) -> bool:
    """Whether ``config`` lets ``removal`` go ahead at all: only with a volume driver, and a scale-down's
    release only with ``--volumeRetention delete``; a teardown's always."""
    return bool(config.external_volume_driver) and (removal.reason == TEARDOWN or config.volume_retention == "delete")


def _due_at(removal: VolumeRemoval) -> float:
    failed_at = removal.ended_at if removal.last_error is not None else None
    if failed_at is not None:
        return failed_at + retry_delay(removal.attempts)
    return removal.released_at + RELEASE_GRACE_SECONDS


def removal_wait(state: ClusterState, config: Config, now: float) -> float | None:
    """Seconds until the next removal is due (0: now), or None when none is pending. The scheduler
    keeps offers coming while one is pending, and declines them for no longer than this."""
    waits = [
        max(0.0, _due_at(r) - now)
        for node_id, r in state.volume_removals.items()
        if _removable(r, config)
        and r.removed_at is None
        and not r.in_flight
        and r.attempts < MAX_ATTEMPTS
        and node_id > state.desired_nodes
    ]
    return min(waits) if waits else None


def ids_held_by_removals(removals: Mapping[int, VolumeRemoval]) -> frozenset[int]:
    """Node ids that must not be launched now: a removal task for their volumes may be running. A node
    launched with them meanwhile could find them removed under it (Docker refuses to remove a volume in
    use only on the agent that uses it)."""
    return frozenset(node_id for node_id, removal in removals.items() if removal.in_flight)


def _matches(constraint: Constraint, value: str | None) -> bool:
    # TODO(lead): the strategies' constraint evaluation (strategies/constraints.py) is the one place
    # for Marathon's semantics; strategies sit above the core, so this keeps the two operators that
    # --externalVolumeAttribute produces (parse_attribute_requirement): IS and LIKE (full match).
    if value is None:
        return False
    if constraint.operator == "IS":
        return value == constraint.value
    if constraint.operator == "LIKE":
        return re.fullmatch(constraint.value or "", value) is not None
    raise ValueError(f"--externalVolumeAttribute: operator {constraint.operator} is not an attribute requirement")


def removal_refusal(offer: Offer, config: Config, volume_set: VolumeSet | None = None) -> str | None:
    """Why a removal task cannot run on this offer, or None when it can.

    The agent must satisfy ``--externalVolumeAttribute`` (the agents that can reach the driver; without
    the flag every agent can), offer our role :data:`REMOVAL_CPUS_MILLI` cpus and
    :data:`REMOVAL_MEM_MILLI` mem, and, for a driver whose volumes live on one host (Docker's ``local``),
    be the agent that last attached them: another agent's Docker does not know them.
    """
    requirement = config.external_volume_attribute
    if requirement is not None:
        if requirement.field == HOSTNAME_FIELD:
            value: str | None = offer.hostname
        else:
            value = attribute_texts(offer).get(requirement.field)
        if not _matches(requirement, value):
            shown = "missing" if value is None else repr(value)
            return f"agent lacks --externalVolumeAttribute {requirement} ({requirement.field}: {shown})"
    if (
        volume_set is not None
        and volume_set.driver in HOST_SCOPED_DRIVERS
        and offer.agent_id != volume_set.last_agent_id
    ):
        return (
            f"driver {volume_set.driver} keeps volumes on one host: only agent {volume_set.last_agent_id} "
            f"({volume_set.last_hostname}) can remove them"
        )
    free = available(offer, config.role)
    if free.cpus_milli < REMOVAL_CPUS_MILLI or free.mem_milli < REMOVAL_MEM_MILLI:
        return (
            f"a volume task needs {format_milli(REMOVAL_CPUS_MILLI)} cpus and {format_milli(REMOVAL_MEM_MILLI)} mem; "
            f"offered to role {config.role}: {format_milli(free.cpus_milli)} cpus, {format_milli(free.mem_milli)} mem"
        )
    return None


def offer_can_remove(offer: Offer, config: Config, volume_set: VolumeSet | None = None) -> bool:
    """Whether a removal task (of ``volume_set``'s volumes, when given) can run on this offer."""
    return removal_refusal(offer, config, volume_set) is None


def removal_command(volumes: Iterable[str]) -> dict[str, Any]:
    """``docker volume rm <names>`` as a CommandInfo: no shell, ``arguments[0]`` is argv[0] (Mesos runs
    ``value`` with ``arguments`` as its argv when ``shell`` is false)."""
    names = list(volumes)
    if not names:
        raise ValueError("a removal needs at least one volume name")
    return {"shell": False, "value": "docker", "arguments": ["docker", "volume", "rm", *names]}


def build_removal_task(
    node_id: int,
    volume_set: VolumeSet,
    offer: Offer,
    config: Config,
    now: float,
    *,
    launch_id: str,
    previous: VolumeRemoval | None = None,
) -> tuple[dict[str, Any], VolumeRemoval]:
    """The TaskInfo of a removal task on ``offer`` and the removal record to persist before the ACCEPT.

    ``launch_id`` is :func:`identity.task_ids.new_launch_id` (passed in: the core takes no randomness);
    ``previous`` is the node id's current removal (its ``reason``, ``released_at`` and ``attempts``
    carry over). Raises :class:`ValueError` when the offer cannot take the task (check
    :func:`removal_refusal` first) or the ids disagree.
    """
    if volume_set.node_id != node_id:
        raise ValueError(f"volume set of node {volume_set.node_id} given for node {node_id}")
    refusal = removal_refusal(offer, config, volume_set)
    if refusal is not None:
        raise ValueError(f"node {node_id}: offer {offer.id} cannot take the removal task: {refusal}")
    task_id = volume_task_id_for(config.framework_name, node_id, launch_id)
    volumes = tuple(spec.name for spec in volume_set.specs)
    # No ports (carve takes each port listed; the field's type names a node's two).
    requirements = Requirements(
        cpus_milli=REMOVAL_CPUS_MILLI, mem_milli=REMOVAL_MEM_MILLI, disk_milli=0, ports=cast(tuple[int, int], ())
    )
    labels = [
        *config.executor_labels,
        (VOLUME_TASK_LABEL, REMOVE),
        (VOLUMES_NODE_ID_LABEL, str(node_id)),
        (CLUSTER_LABEL, config.cluster_name),
    ]
    task_info: dict[str, Any] = {
        "name": f"{config.framework_name}{node_id} volume removal",
        "task_id": {"value": task_id},
        "agent_id": {"value": offer.agent_id},
        "resources": carve(offer, config.role, requirements),
        "command": removal_command(volumes),
        "labels": {"labels": [{"key": k, "value": v} for k, v in labels]},
        "max_completion_time": {"nanoseconds": REMOVAL_MAX_SECONDS * 10**9},
    }
    removal = VolumeRemoval(
        node_id=node_id,
        reason=previous.reason if previous is not None else "scale-down",
        released_at=previous.released_at if previous is not None else now,
        volumes=volumes,
        task_id=task_id,
        agent_id=offer.agent_id,
        hostname=offer.hostname,
        started_at=now,
        ended_at=None,
        attempts=(previous.attempts if previous is not None else 0) + 1,
        last_error=previous.last_error if previous is not None else None,
    )
    return task_info, removal


@dataclass(frozen=True)
class RemovalLaunch:
    """One removal task to launch: ACCEPT ``offer_id`` with ``task_info`` after persisting ``removal``."""

    offer_id: str
    task_info: dict[str, Any]
    removal: VolumeRemoval


def assign_removals(
    due: Iterable[int],
    state: ClusterState,
    offers: Iterable[Offer],
    config: Config,
    *,
    removals: Mapping[int, VolumeRemoval],
    now: float,
    launch_ids: Iterable[str],
) -> list[RemovalLaunch]:
    """Put each due node id's removal task on the first offer that can take it, one task per offer.

    ``offers`` are the offers no node launch used (the plan's declines); ``launch_ids`` yields a fresh
    launch id per task. An id no offer can take now waits for the next offers.
    """
    free = list(offers)
    ids = iter(launch_ids)
    out: list[RemovalLaunch] = []
    for node_id in due:
        volume_set = state.volumes.get(node_id)
        if volume_set is None:
            continue
        offer = next((o for o in free if offer_can_remove(o, config, volume_set)), None)
        if offer is None:
            continue
        free.remove(offer)
        task_info, removal = build_removal_task(
            node_id, volume_set, offer, config, now, launch_id=next(ids), previous=removals.get(node_id)
        )
        out.append(RemovalLaunch(offer.id, task_info, removal))
    return out


def _text(raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    return value if isinstance(value, str) and value else None


def removal_result(status: Mapping[str, Any]) -> tuple[bool, str | None]:
    """``(done, error)`` from a removal task's TaskStatus (v1 JSON, ``event.update.status``).

    ``(True, None)``: ``TASK_FINISHED``, the command exited 0 and Docker removed both volumes.
    ``(False, error)``: the task ended without success (``TASK_FAILED`` with the command executor's
    ``Command exited with status N``, or ERROR, DROPPED, LOST, GONE, KILLED, UNKNOWN); ``error`` says the
    state, reason and message. ``(False, None)``: still under way (STAGING, STARTING, RUNNING, KILLING)
    or unreachable (the task may still run: it stays in flight).
    """
    state = _text(status, "state")
    if state == _TERMINAL_SUCCESS:
        return True, None
    if state in _TERMINAL_FAILURE:
        parts = [state]
        reason = _text(status, "reason")
        if reason:
            parts.append(f"({reason})")
        message = _text(status, "message")
        error = " ".join(parts) + (f": {message}" if message else "")
        if state == "TASK_FAILED" and message and message.startswith("Command exited with status"):
            error += (
                " (docker volume rm refused: a volume is in use, does not exist on that agent, or the driver "
                "failed; the task's stderr in its sandbox says which)"
            )
        return False, error
    return False, None


def settle_removal(removal: VolumeRemoval, task_id: str, done: bool, error: str | None, now: float) -> VolumeRemoval:
    """The removal after its task's result (from :func:`removal_result`); unchanged for an update of
    another (earlier) task or one that settles nothing."""
    if task_id != removal.task_id or not removal.in_flight or (not done and error is None):
        return removal
    if done:
        return replace(removal, ended_at=now, removed_at=now, last_error=None)
    return replace(removal, ended_at=now, last_error=error)


def mark_volumes_removed(volumes: Mapping[int, VolumeSet], node_id: int, now: float) -> Mapping[int, VolumeSet]:
    """The inventory after node ``node_id``'s volumes were removed (they stay listed, as removed)."""
    known = volumes.get(node_id)
    if known is None or known.removed_at is not None:
        return volumes
    return MappingProxyType({**volumes, node_id: replace(known, removed_at=now)})


def release_after_stop(
    state: ClusterState, config: Config, node_id: int, stopping: str | None, now: float
) -> ClusterState:
    """The state after node ``node_id``'s task was freed: with ``--volumeRetention delete``, a node that
    was stopped because a scale-down drained it (``stopping == "scale-down"``) releases its volumes for
    removal. A node that failed or was stopped for any other reason keeps them: a failed leaving
    node may hold the only copy of some shards."""
    volume_set = state.volumes.get(node_id)
    if config.volume_retention != "delete" or stopping != "scale-down" or volume_set is None:
        return state
    removals = release_for_removal(state.volume_removals, volume_set, reason="scale-down", now=now)
    return state if removals is state.volume_removals else replace(state, volume_removals=removals)


def plan_removals(
    state: ClusterState, config: Config, offers: Iterable[Offer], now: float, launch_ids: Iterable[str]
) -> tuple[ClusterState, list[RemovalLaunch]]:
    """The removal tasks to launch on ``offers`` (those no node launch used) and the state that records
    them in flight; it must be persisted before any ACCEPT goes out."""
    due = removals_due(state, config, now, removals=state.volume_removals)
    if not due:
        return state, []
    launches = assign_removals(
        due, state, offers, config, removals=state.volume_removals, now=now, launch_ids=launch_ids
    )
    if not launches:
        return state, []
    removals = MappingProxyType(
        {**state.volume_removals, **{launch.removal.node_id: launch.removal for launch in launches}}
    )
    return replace(state, volume_removals=removals), launches
