"""GET /v1/nodes/<id>'s history (es_framework/app/scheduler_api.py ``node_events``): the node's
persisted entries, which a failover keeps, with this scheduler's routine task updates in between;
nothing twice (a launch, a command, a failure are persisted, so their in-memory events are not shown)."""

from __future__ import annotations

from es_framework.app.scheduler_api import node_events
from es_framework.core.engine_stats import EngineEvent
from es_framework.core.node_history import HistoryEntry, HistoryKind


def test_the_persisted_entries_with_this_schedulers_routine_updates_between() -> None:
    history = (
        HistoryEntry(10.0, HistoryKind.LAUNCH, "launched on host1", "LAUNCHING"),
        HistoryEntry(30.0, HistoryKind.ROLLOUT, "rollout r step started", "TASK_RUNNING", "r", "started"),
        HistoryEntry(40.0, HistoryKind.FAILURE, "TASK_FAILED (x): boom", "TASK_FAILED"),
    )
    events = [
        EngineEvent(11.0, "launching on host1 (task t)", 1, "LAUNCHING"),  # persisted already
        EngineEvent(20.0, "TASK_RUNNING: node 1 runs", 1, "TASK_RUNNING"),  # routine: shown
        EngineEvent(21.0, "TASK_RUNNING: node 2 runs", 2, "TASK_RUNNING"),  # another node's
        EngineEvent(25.0, "node 1: restart queued", 1, "TASK_RUNNING"),  # a command: persisted
        EngineEvent(40.0, "TASK_FAILED (x): node 1 is free", 1, "TASK_FAILED"),  # a failure: persisted
        EngineEvent(41.0, "registered with Mesos", None, None),
    ]
    shown = node_events(history, events, 1)
    assert [(e.time, e.kind, e.state) for e in shown] == [
        (10.0, "launch", "LAUNCHING"),
        (20.0, None, "TASK_RUNNING"),
        (30.0, "rollout", "TASK_RUNNING"),
        (40.0, "failure", "TASK_FAILED"),
    ]
    assert (shown[2].rollout, shown[2].step) == ("r", "started")
    assert shown[3].message == "TASK_FAILED (x): boom"


def test_a_node_without_a_persisted_history_shows_its_routine_updates() -> None:
    shown = node_events((), [EngineEvent(1.0, "TASK_STARTING: node 1 starts", 1, "TASK_STARTING")], 1)
    assert [(e.state, e.kind) for e in shown] == [("TASK_STARTING", None)]
