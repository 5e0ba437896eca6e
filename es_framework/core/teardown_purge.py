"""``es-framework teardown --purge-volumes`` as pure functions over :class:`ClusterState`.

The teardown runs the scheduler's own engine for a while, in a *teardown view* of the stored state
(:func:`teardown_view`): it wants no node (desired count 0), every node's task is being stopped on
purpose (``stopping`` :data:`TEARDOWN`, so the engine kills it and its end is no failure), and the
view is not marked torn down (the driver shell subscribes to Mesos only for a live state). What is
stored meanwhile stays marked torn down, with the desired count the cluster had
(:func:`stored_form`): a scheduler started while the teardown runs, or after it died half-way, refuses
to start on it, and running the teardown again carries on.

The order is the issue's: every node's task ends first (:func:`nodes_left`); only then are all the
volumes released (:func:`release_all`, reason :data:`~es_framework.core.volume_tasks.TEARDOWN`), so
the engine's removal tasks (:mod:`es_framework.core.volume_tasks`) run after the release grace;
:func:`purge_progress` says when every removal settled: removed, or failed :data:`TEARDOWN_ATTEMPTS`
times (the teardown's bounded policy; a scale-down's removal retries up to
:data:`~es_framework.core.volumes.MAX_ATTEMPTS` with back-off up to an hour, which no operator waits
for at a prompt).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import MappingProxyType

from es_framework.core.node_state import ClusterState, NodeRecord
from es_framework.core.volume_tasks import TEARDOWN, release_for_removal, settle_removal

#: Removal attempts a teardown makes per node id before it reports the volumes as remaining: the first
#: after the release grace, then two retries after the engine's back-off (30 s, 60 s).
TEARDOWN_ATTEMPTS = 3
#: The error recorded for a removal task still in flight when a forced TEARDOWN killed it.
ABANDONED = "TEARDOWN (--force) ended the removal task before its result came: the volumes may remain"


def teardown_view(state: ClusterState) -> ClusterState:
    """The state as the engine sees it during the teardown: no node wanted, every record stopping
    for the teardown, not torn down."""
    nodes = {node_id: replace(record, stopping=TEARDOWN) for node_id, record in state.nodes.items()}
    return replace(state, desired_nodes=0, torn_down_at=None, nodes=MappingProxyType(nodes))


def stored_form(view: ClusterState, *, torn_down_at: float, desired_nodes: int) -> ClusterState:
    """What is stored for the engine's ``view``: marked torn down at ``torn_down_at``, with the
    desired count the cluster had (a stored state always wants at least one node)."""
    if desired_nodes < 1:
        raise ValueError(f"the stored desired count must be at least 1, not {desired_nodes}")
    return replace(view, torn_down_at=torn_down_at, desired_nodes=desired_nodes)


def nodes_left(state: ClusterState) -> list[NodeRecord]:
    """The records still holding a node id, lowest id first: their tasks have not certainly ended
    (a running, killing, launching, unreachable or unknown task keeps its record)."""
    return [state.nodes[node_id] for node_id in sorted(state.nodes)]


def volumes_to_remove(state: ClusterState) -> list[int]:
    """Node ids whose volumes the state knows and that were not removed yet, lowest first."""
    return [node_id for node_id, volume_set in sorted(state.volumes.items()) if volume_set.removed_at is None]


def release_all(state: ClusterState, now: float) -> ClusterState:
    """Release every known, not yet removed volume set for removal (reason :data:`TEARDOWN`). Refused
    while a record still holds a node id: its task may still use its volumes."""
    if state.nodes:
        raise ValueError(f"node(s) {', '.join(map(str, sorted(state.nodes)))} still hold their ids: stop them first")
    removals = state.volume_removals
    for node_id in volumes_to_remove(state):
        removals = release_for_removal(removals, state.volumes[node_id], reason=TEARDOWN, now=now)
    return state if removals is state.volume_removals else replace(state, volume_removals=removals)


@dataclass(frozen=True)
class PurgeProgress:
    """Where the removals of ``ids`` stand."""

    removed: tuple[int, ...]
    #: Node id and the last error, for removals that failed :data:`TEARDOWN_ATTEMPTS` times.
    failed: tuple[tuple[int, str], ...]
    #: Released, in flight or waiting for a retry.
    pending: tuple[int, ...]

    @property
    def total(self) -> int:
        return len(self.removed) + len(self.failed) + len(self.pending)

    @property
    def settled(self) -> bool:
        return not self.pending

    @property
    def complete(self) -> bool:
        return not self.pending and not self.failed


def purge_progress(state: ClusterState, ids: tuple[int, ...], attempts: int = TEARDOWN_ATTEMPTS) -> PurgeProgress:
    """How the removals of ``ids`` (those :func:`release_all` released) stand: a removal failed for
    good once ``attempts`` tasks failed, or the engine gave up (its own limit), or it is gone."""
    removed: list[int] = []
    failed: list[tuple[int, str]] = []
    pending: list[int] = []
    for node_id in ids:
        removal = state.volume_removals.get(node_id)
        volume_set = state.volumes.get(node_id)
        if (volume_set is not None and volume_set.removed_at is not None) or (
            removal is not None and removal.removed_at is not None
        ):
            removed.append(node_id)
        elif removal is None:
            failed.append((node_id, "its removal is no longer recorded"))
        elif not removal.in_flight and (removal.attempts >= attempts or removal.gave_up):
            failed.append((node_id, removal.last_error or "failed"))
        else:
            pending.append(node_id)
    return PurgeProgress(tuple(removed), tuple(failed), tuple(pending))


def abandon_in_flight(state: ClusterState, now: float) -> ClusterState:
    """The state after a forced TEARDOWN killed the removal tasks still in flight: each is recorded
    as failed with :data:`ABANDONED` (its result never comes: the framework is gone)."""
    removals = dict(state.volume_removals)
    for node_id, removal in state.volume_removals.items():
        if removal.in_flight and removal.task_id is not None:
            removals[node_id] = settle_removal(removal, removal.task_id, False, ABANDONED, now)
    if removals == dict(state.volume_removals):
        return state
    return replace(state, volume_removals=MappingProxyType(removals))
