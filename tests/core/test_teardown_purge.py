"""``teardown --purge-volumes``'s pure part (es_framework/core/teardown_purge.py) and the teardown
condition of the volume tasks (removals_due, removal_wait honour a teardown's release whatever
--volumeRetention says; a scale-down's still needs delete)."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from es_framework.core.node_state import ClusterState, NodeRecord, TaskState
from es_framework.core.teardown_purge import (
    ABANDONED,
    TEARDOWN_ATTEMPTS,
    abandon_in_flight,
    nodes_left,
    purge_progress,
    release_all,
    stored_form,
    teardown_view,
    volumes_to_remove,
)
from es_framework.core.volume_tasks import (
    RELEASE_GRACE_SECONDS,
    TEARDOWN,
    release_for_removal,
    removal_wait,
    removals_due,
)
from es_framework.core.volumes import MAX_ATTEMPTS, VolumeRemoval, VolumeSet, VolumeSpec
from identity.naming import volume_names
from identity.task_ids import task_id_for
from tests.harness.builders import config

FW = "elasticsearch"
T0 = 1_790_000_000.0
KEEP = config(externalVolumeDriver="rexray")  # --volumeRetention keep (the default)
DELETE = config(externalVolumeDriver="rexray", volumeRetention="delete")
NORMAL = config()


def volume_set(node_id: int, *, removed_at: float | None = None) -> VolumeSet:
    config_name, data_name = volume_names(FW, node_id)
    return VolumeSet(
        node_id,
        "rexray",
        VolumeSpec(config_name, "config"),
        VolumeSpec(data_name, "data"),
        T0,
        "agent-1-S0",
        "agent1.example.com",
        T0,
        removed_at=removed_at,
    )


def node(node_id: int, state: TaskState = TaskState.RUNNING, **kw: Any) -> NodeRecord:
    return NodeRecord(
        node_id=node_id,
        task_id=task_id_for(FW, node_id, f"{node_id:032x}"),
        agent_id=f"agent-{node_id}",
        hostname=f"agent{node_id}.example.com",
        http_port=9200,
        transport_port=9300,
        state=state,
        volumes=volume_names(FW, node_id),
        **kw,
    )


def cluster(ids: tuple[int, ...] = (1, 2, 3), *, running: tuple[int, ...] = (1, 2, 3), **kw: Any) -> ClusterState:
    return ClusterState(
        desired_nodes=3,
        nodes=MappingProxyType({i: node(i) for i in running}),
        framework_id="fw-1",
        volumes=MappingProxyType({i: volume_set(i) for i in ids}),
        **kw,
    )


# --- the view -------------------------------------------------------------------------------------


def test_the_view_wants_no_node_stops_every_node_and_is_not_torn_down() -> None:
    stored = cluster(torn_down_at=T0)
    stored = replace(stored, nodes=MappingProxyType({**stored.nodes, 2: replace(stored.nodes[2], stopping="restart")}))
    view = teardown_view(stored)
    assert view.desired_nodes == 0 and view.torn_down_at is None
    assert {r.stopping for r in view.nodes.values()} == {TEARDOWN}
    assert [r.task_id for r in nodes_left(view)] == [stored.nodes[i].task_id for i in (1, 2, 3)]
    assert view.missing_nodes == 0  # nothing is launched
    back = stored_form(view, torn_down_at=T0, desired_nodes=3)
    assert back.desired_nodes == 3 and back.torn_down_at == T0 and back.volumes == stored.volumes


def test_the_stored_form_always_wants_a_node() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        stored_form(teardown_view(cluster()), torn_down_at=T0, desired_nodes=0)


# --- release --------------------------------------------------------------------------------------


def test_nothing_is_released_while_a_record_holds_an_id() -> None:
    state = teardown_view(cluster(running=(2,)))
    with pytest.raises(ValueError, match=r"node\(s\) 2 still hold"):
        release_all(state, T0)


def test_release_all_releases_every_known_volume_set_not_removed() -> None:
    state = cluster((1, 2, 3, 5), running=())
    state = replace(state, volumes=MappingProxyType({**state.volumes, 5: volume_set(5, removed_at=T0 - 5)}))
    view = teardown_view(state)
    released = release_all(view, T0)
    assert volumes_to_remove(view) == [1, 2, 3]
    assert sorted(released.volume_removals) == [1, 2, 3]
    assert {r.reason for r in released.volume_removals.values()} == {TEARDOWN}
    assert released.volume_removals[2].volumes == volume_names(FW, 2)
    assert release_all(teardown_view(cluster((), running=())), T0).volume_removals == {}


def test_release_keeps_a_removal_in_flight_and_replaces_a_failed_one() -> None:
    flying = VolumeRemoval(1, "scale-down", T0 - 100, volume_names(FW, 1), task_id="t", agent_id="a", attempts=1)
    failed = VolumeRemoval(
        2, TEARDOWN, T0 - 100, volume_names(FW, 2), task_id="u", started_at=T0 - 90, ended_at=T0 - 80, attempts=3,
        last_error="TASK_FAILED",
    )  # fmt: skip
    state = replace(cluster(running=()), volume_removals=MappingProxyType({1: flying, 2: failed}))
    released = release_all(teardown_view(state), T0)
    assert released.volume_removals[1] is flying
    assert released.volume_removals[2].attempts == 0 and released.volume_removals[2].released_at == T0


# --- the teardown condition in removals_due / removal_wait ----------------------------------------


@pytest.mark.parametrize("cfg", [KEEP, DELETE], ids=["keep", "delete"])
def test_a_teardown_release_is_due_after_the_grace_whatever_the_retention(cfg: Any) -> None:
    view = release_all(teardown_view(cluster(running=())), T0)
    assert removals_due(view, cfg, T0 + 1, removals=view.volume_removals) == []
    assert removal_wait(view, cfg, T0 + 1) == pytest.approx(RELEASE_GRACE_SECONDS - 1)
    now = T0 + RELEASE_GRACE_SECONDS
    assert removals_due(view, cfg, now, removals=view.volume_removals) == [1, 2, 3]
    assert removal_wait(view, cfg, now) == 0.0


def test_a_scale_down_release_still_needs_retention_delete_and_the_normal_strategy_removes_nothing() -> None:
    state = cluster(running=())
    state = replace(state, desired_nodes=1)
    removals = release_for_removal(state.volume_removals, state.volumes[3], reason="scale-down", now=T0)
    state = replace(state, volume_removals=removals)
    later = T0 + RELEASE_GRACE_SECONDS
    assert removals_due(state, KEEP, later, removals=removals) == []
    assert removal_wait(state, KEEP, later) is None
    assert removals_due(state, DELETE, later, removals=removals) == [3]
    view = release_all(teardown_view(cluster(running=())), T0)
    assert removals_due(view, NORMAL, later, removals=view.volume_removals) == []
    assert removal_wait(view, NORMAL, later) is None


def test_a_teardown_release_is_never_due_while_a_record_holds_the_id() -> None:
    view = release_all(teardown_view(cluster(running=())), T0)
    # A task of node 2 found running afterwards (reconciliation) holds the id again.
    held = replace(view, nodes=MappingProxyType({2: node(2)}))
    assert removals_due(held, KEEP, T0 + 60, removals=held.volume_removals) == [1, 3]


# --- progress ---------------------------------------------------------------------------------------


def _removal(node_id: int, **kw: Any) -> VolumeRemoval:
    return VolumeRemoval(node_id, TEARDOWN, T0, volume_names(FW, node_id), **kw)


def test_progress_counts_removed_failed_for_good_and_pending() -> None:
    removals = {
        1: _removal(1, task_id="a", started_at=T0, ended_at=T0 + 1, attempts=1, removed_at=T0 + 1),
        2: _removal(2, task_id="b", started_at=T0, ended_at=T0 + 1, attempts=TEARDOWN_ATTEMPTS, last_error="no"),
        3: _removal(3, task_id="c", started_at=T0, ended_at=T0 + 1, attempts=1, last_error="retry"),
        4: _removal(4, task_id="d", started_at=T0, attempts=TEARDOWN_ATTEMPTS),  # the last try is in flight
        5: _removal(5),
    }
    state = replace(
        cluster((1, 2, 3, 4, 5), running=()),
        volume_removals=MappingProxyType(removals),
    )
    progress = purge_progress(state, (1, 2, 3, 4, 5, 6))
    assert progress.removed == (1,)
    assert progress.failed == ((2, "no"), (6, "its removal is no longer recorded"))
    assert progress.pending == (3, 4, 5)
    assert progress.total == 6 and not progress.settled and not progress.complete
    done = purge_progress(state, (1,))
    assert done.settled and done.complete
    failed = purge_progress(state, (1, 2))
    assert failed.settled and not failed.complete


def test_volumes_marked_removed_count_as_removed() -> None:
    state = cluster(running=())
    state = replace(state, volumes=MappingProxyType({1: volume_set(1, removed_at=T0)}))
    assert purge_progress(state, (1,)).removed == (1,)


def test_the_engines_own_limit_also_settles_a_removal() -> None:
    gave_up = _removal(1, task_id="a", started_at=T0, ended_at=T0 + 1, attempts=MAX_ATTEMPTS, last_error="x")
    state = replace(cluster((1,), running=()), volume_removals=MappingProxyType({1: gave_up}))
    assert purge_progress(state, (1,), attempts=MAX_ATTEMPTS + 5).failed == ((1, "x"),)


def test_a_forced_teardown_records_the_removals_it_cut_short() -> None:
    flying = _removal(1, task_id="a", agent_id="ag", started_at=T0, attempts=1)
    settled = _removal(2, task_id="b", started_at=T0, ended_at=T0 + 1, attempts=1, removed_at=T0 + 1)
    state = replace(cluster((1, 2), running=()), volume_removals=MappingProxyType({1: flying, 2: settled}))
    after = abandon_in_flight(state, T0 + 9)
    assert after.volume_removals[1].last_error == ABANDONED and not after.volume_removals[1].in_flight
    assert after.volume_removals[1].removed_at is None and after.volume_removals[2] is settled
    assert abandon_in_flight(after, T0 + 10) is after


@settings(max_examples=200, deadline=None)
@given(
    ids=st.sets(st.integers(1, 12), max_size=8),
    removed=st.sets(st.integers(1, 12), max_size=8),
    desired=st.integers(1, 12),
    retention=st.sampled_from([KEEP, DELETE]),
    elapsed=st.floats(0, 100),
)
def test_every_released_teardown_removal_is_due_exactly_after_the_grace(
    ids: set[int], removed: set[int], desired: int, retention: Any, elapsed: float
) -> None:
    volumes = {i: volume_set(i, removed_at=T0 - 1 if i in removed else None) for i in ids}
    stored = ClusterState(desired_nodes=desired, framework_id="fw", volumes=MappingProxyType(volumes))
    view = release_all(teardown_view(stored), T0)
    expected = sorted(i for i in ids if i not in removed)
    assert volumes_to_remove(view) == expected
    due = removals_due(view, retention, T0 + elapsed, removals=view.volume_removals)
    assert due == (expected if elapsed >= RELEASE_GRACE_SECONDS else [])
    progress = purge_progress(view, tuple(expected))
    assert progress.pending == tuple(expected) and not progress.failed
