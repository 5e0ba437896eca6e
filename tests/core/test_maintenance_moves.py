"""Maintenance moves, purely: which nodes get a request (once), what the monitor does for a started
move (node shutdown ``restart`` with external volumes, the allocation exclusion with local disk), and
the stop of a prepared one (same id, any agent)."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from es_framework.core.disruption_ledger import Disruption, Kind, ShutdownType
from es_framework.core.disruption_seen import Seen, Unknown
from es_framework.core.maintenance import LEAD_S, Unavailability
from es_framework.core.maintenance_moves import (
    apply_requests,
    cancelled,
    exclusions,
    late,
    move_requests,
    moving,
    prepare_moves,
    stop_ready,
)
from es_framework.core.node_state import ClusterState, TaskState
from tests.core.test_maintenance import state

FW = "elasticsearch"
NOW = 10_000.0
SOON = Unavailability(NOW + 60, NOW + 3660)


def three() -> ClusterState:
    return state((1, "a", TaskState.RUNNING), (2, "b", TaskState.RUNNING), (3, "a", TaskState.STAGING))


def test_every_node_of_ours_on_the_agent_gets_one_request_with_the_window_in_its_reason() -> None:
    s = three()
    requests = move_requests(s, {"a": SOON, "b": None, "c": SOON}, NOW)
    assert [(r.node_id, r.task_id, r.agent_id) for r in requests] == [(1, "t1", "a"), (3, "t3", "a")]
    assert requests[0].reason == (
        "moving off agent a (h-a) for maintenance from 1970-01-01T02:47:40Z until 1970-01-01T03:47:40Z"
    )
    moved = apply_requests(s, requests, now=NOW, external_volumes=True)
    assert moved.disruptions[1] == Disruption(1, Kind.MAINTENANCE, ShutdownType.RESTART, NOW, reason=requests[0].reason)
    assert apply_requests(s, requests, now=NOW, external_volumes=False).disruptions[1].shutdown is ShutdownType.REMOVE
    # The master re-sends the inverse offer: the nodes already requested are not asked again.
    assert move_requests(moved, {"a": SOON}, NOW + 5) == ()
    assert apply_requests(moved, requests, now=NOW + 5, external_volumes=True) is moved


def test_no_request_without_a_window_that_keeps_nodes_off_the_agent() -> None:
    s = three()
    assert move_requests(s, {"a": Unavailability(NOW - 7200, NOW - 3600)}, NOW) == ()  # over
    assert move_requests(s, {"a": Unavailability(NOW + LEAD_S + 1, None)}, NOW) == ()  # far away: asked later
    assert move_requests(s, {"a": None}, NOW) == ()  # STOP_MAINTENANCE: offers carry no window
    assert move_requests(s, {"z": SOON}, NOW) == ()  # no node of ours there
    # A window that started and has not ended still moves the node (late, but Mesos has not taken it).
    assert [r.node_id for r in move_requests(s, {"b": Unavailability(NOW - 10, None)}, NOW)] == [2]


def test_a_node_scaled_away_or_with_another_disruption_is_not_requested() -> None:
    s = replace(three(), desired_nodes=2)
    other = Disruption(1, Kind.RESTART, ShutdownType.RESTART, NOW)
    s = replace(s, disruptions=MappingProxyType({1: other}))
    assert move_requests(s, {"a": SOON}, NOW) == ()


def test_a_queued_request_is_void_once_the_agent_shows_no_window_and_a_started_one_goes_on() -> None:
    s = apply_requests(three(), move_requests(three(), {"a": SOON}, NOW), now=NOW, external_volumes=True)
    started = replace(s.disruptions[1], started_at=NOW, task_id="t1")
    s = replace(s, disruptions=MappingProxyType({**s.disruptions, 1: started}))
    assert cancelled(s, {"a": SOON}, NOW) == ()
    assert cancelled(s, {"b": None}, NOW) == ()
    assert cancelled(s, {"a": None}, NOW) == (3,)


def started(s: ClusterState, node_id: int, shutdown: ShutdownType, version: str | None = None) -> ClusterState:
    record = s.nodes[node_id]
    entry = Disruption(node_id, Kind.MAINTENANCE, shutdown, NOW, NOW, record.task_id, "moving off agent a")
    nodes = {**s.nodes, node_id: replace(record, version=version)}
    return replace(s, nodes=MappingProxyType(nodes), disruptions=MappingProxyType({**s.disruptions, node_id: entry}))


def seen(*, shutdowns: dict[str, tuple[str, str]] | None = None, shards: int = 0, unassigned: int = 0) -> Seen:
    return Seen(
        "green",
        frozenset({f"{FW}1", f"{FW}2"}),
        f"{FW}2",
        unassigned,
        0,
        0,
        shards_by_node=MappingProxyType({f"{FW}1": shards}),
        shutdowns=MappingProxyType(shutdowns or {}),
    )


def test_with_external_volumes_node_shutdown_restart_is_registered_and_the_node_ready_when_complete() -> None:
    s = started(three(), 1, ShutdownType.RESTART, "8.15.3")
    first = prepare_moves(s, seen(), FW)
    assert (first.register, first.ready, first.holding) == (((1, "t1"),), frozenset(), frozenset({1}))
    assert prepare_moves(s, seen(shutdowns={f"{FW}1": ("restart", "in_progress")}), FW).ready == frozenset()
    assert prepare_moves(s, seen(shutdowns={f"{FW}1": ("restart", "complete")}), FW).ready == {1}
    # A ``remove`` someone registered is not turned into a restart: the move waits.
    waits = prepare_moves(s, seen(shutdowns={f"{FW}1": ("remove", "complete")}), FW)
    assert waits.ready == frozenset() and waits.register == () and "remove" in waits.waits[1]
    # Without the node-shutdown API the node is stopped gracefully at once.
    assert prepare_moves(started(three(), 1, ShutdownType.RESTART, "7.10.2"), seen(), FW).ready == {1}
    # Unknown: nothing at all.
    assert prepare_moves(s, Unknown("timeout"), FW) == prepare_moves(three(), Unknown("x"), FW)


def test_with_local_disk_the_node_is_excluded_and_ready_once_empty_with_nothing_in_flight() -> None:
    s = started(three(), 1, ShutdownType.REMOVE, "8.15.3")
    first = prepare_moves(s, seen(shards=4), FW)
    assert first.exclude == (f"{FW}1",) and first.ready == frozenset() and first.register == ()
    assert prepare_moves(s, seen(shards=4), FW, (f"{FW}1",)).ready == frozenset()
    assert prepare_moves(s, seen(shards=0, unassigned=1), FW, (f"{FW}1",)).ready == frozenset()
    assert prepare_moves(s, seen(shards=0), FW, (f"{FW}1",)).ready == {1}
    # The exclusion list: the scale-down drain's, plus the moves' names.
    assert exclusions(("other", f"{FW}5"), first.exclude) == ("other", f"{FW}5", f"{FW}1")
    assert exclusions(("other", f"{FW}1"), first.exclude) == ("other", f"{FW}1")
    assert exclusions(("other",), ()) == ("other",)


def test_a_ready_move_is_stopped_as_a_replace_and_then_no_longer_prepared() -> None:
    s = started(three(), 1, ShutdownType.RESTART)
    assert stop_ready(s, frozenset({2})).kills == ()
    stopped = stop_ready(s, frozenset({1}))
    assert stopped.kills == ((1, "t1", "a"),)
    assert stopped.state.nodes[1].stopping == "replace"
    assert moving(stopped.state) == ()
    assert prepare_moves(stopped.state, seen(), FW).holding == frozenset()
    assert "drained for maintenance (moving off agent a)" in stopped.messages[0][1]


def test_late_names_moves_still_on_an_agent_whose_window_started() -> None:
    s = apply_requests(three(), move_requests(three(), {"a": SOON}, NOW), now=NOW, external_volumes=True)
    assert late(s, {"a": SOON}, NOW) == ()
    assert late(s, {"a": SOON}, SOON.start) == (1, 3)
    assert late(s, {}, SOON.start) == ()
