"""A node's persisted history (es_framework/core/node_history.py, history_notes.py): bounded per node,
kept in the state document per node id (its own znode), round trip, older documents without it,
and what the engine notes: a launch, a failure with its reason, nothing for a routine TASK_RUNNING,
the operator's commands, the planner's actions, rollout steps; a new engine on the same store (a
failover) shows the same history."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from es_framework.core.mesos_calls import Kill
from es_framework.core.node_history import (
    HISTORY_KEPT,
    TEXT_KEPT,
    HistoryEntry,
    HistoryKind,
    NodeHistory,
    appended,
    history_from_json,
    history_to_json,
    short,
    with_entries,
)
from es_framework.core.node_state import ClusterState, NodeStateError
from es_framework.core.rollout_prep import prepare
from es_framework.core.rollouts import RolloutReason
from es_framework.core.state_changes import changed_node_ids
from es_framework.core.state_document import state_from_json, state_to_json
from es_framework.core.state_layout import diff_layouts, keys_ahead, may_go_ahead, merge_document, split_document
from tests.core.test_engine import FW, launched, make, status
from tests.core.test_engine_permanent_failures import OPT_IN, lose
from tests.core.test_engine_permanent_failures import running as running_replaceable
from tests.core.test_engine_rollouts import cluster, seen

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

_text = st.text(max_size=30)
_entries = st.builds(
    HistoryEntry,
    at=st.floats(min_value=0, max_value=4e9, allow_nan=False),
    kind=st.sampled_from(list(HistoryKind)),
    text=_text,
    state=st.none() | st.sampled_from(["TASK_RUNNING", "TASK_FAILED", "LAUNCHING"]),
    rollout=st.none() | _text,
    step=st.none() | st.sampled_from(["started", "done", "failed"]),
)


def kinds(history: NodeHistory) -> list[str]:
    return [e.kind.value for e in history]


# --- the bound and the identity of unchanged histories ------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(batches=st.lists(st.tuples(st.integers(1, 4), st.lists(_entries, max_size=8)), max_size=12))
def test_each_history_keeps_its_newest_entries_in_order_and_others_stay_the_same_objects(
    batches: list[tuple[int, list[HistoryEntry]]],
) -> None:
    everything: dict[int, list[HistoryEntry]] = {}
    current: Mapping[int, NodeHistory] = MappingProxyType({})
    for node_id, entries in batches:
        before = current
        current = with_entries(current, [(node_id, e) for e in entries])
        everything.setdefault(node_id, []).extend(entries)
        if not entries:
            assert current is before
        for other, history in before.items():
            if other != node_id:
                assert current[other] is history  # a store writes only the changed node
    for node_id, entries in everything.items():
        assert list(current.get(node_id, ())) == entries[-HISTORY_KEPT:]


def test_a_long_text_is_cut() -> None:
    assert short("x" * 1000) == "x" * (TEXT_KEPT - 1) + "…"
    assert short("ok") == "ok"
    one = HistoryEntry(1.0, HistoryKind.LAUNCH, "a")
    assert appended((one,) * HISTORY_KEPT, [one._replace(text="b")])[-1].text == "b"


# --- the stored form ----------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(histories=st.dictionaries(st.integers(1, 50), st.lists(_entries, min_size=1, max_size=HISTORY_KEPT), max_size=6))
def test_the_histories_round_trip_through_the_document_and_its_per_node_cut(
    histories: dict[int, list[HistoryEntry]],
) -> None:
    state = ClusterState(desired_nodes=3, node_history=MappingProxyType({i: tuple(h) for i, h in histories.items()}))
    document = json.loads(json.dumps(state_to_json(state)))
    back = state_from_json(document, FW)
    assert dict(back.node_history) == dict(state.node_history)
    layout = split_document(document)
    assert "node_history" in layout.split_fields and "node_history" not in layout.cluster
    for node_id, history in histories.items():  # each node's history in its own entry (znode)
        assert layout.entries[str(node_id)]["node_history"] == history_to_json(tuple(history))
    assert merge_document(layout) == document


def test_a_stored_history_is_checked_and_a_long_one_keeps_its_newest() -> None:
    entry = {"at": 1.0, "kind": "failure", "text": "TASK_LOST"}
    assert len(history_from_json([entry] * (HISTORY_KEPT + 5), "h")) == HISTORY_KEPT
    bad_entries = [{**entry, "kind": "party"}, {**entry, "kind": ["x"]}, {**entry, "at": True}, {**entry, "text": 3}]
    for bad in ({"x": 1}, [1], *([e] for e in bad_entries), [{**entry, "state": 7}]):
        with pytest.raises(ValueError, match="h"):
            history_from_json(bad, "h")
    with pytest.raises(NodeStateError, match="node_history"):
        state_from_json({**state_to_json(ClusterState(desired_nodes=1)), "node_history": {"1": [{"at": "x"}]}}, FW)


@pytest.mark.parametrize(
    "fixture", ["schema3/state.json", "v0.1.0/state-formed.json", "v0.1.0/state-bootstrapping.json"]
)
def test_older_documents_without_histories_still_load(fixture: str) -> None:
    document = json.loads((FIXTURES / fixture).read_text())
    assert "node_history" not in document
    state = state_from_json(document, FW)
    assert dict(state.node_history) == {}
    assert state_from_json(state_to_json(state), FW) == state


def test_a_history_change_may_go_ahead_with_its_records_own_news() -> None:
    """A reconciliation after a failover that finds many unreachable tasks UNKNOWN notes each in its
    history: those changes still go ahead of the cluster part as before (the last ZooKeeper step of
    a large write holds only what must go with the cluster part)."""
    engine, _, _ = make(elasticsearchNodes="2")
    tasks = launched(engine, 1, 2)
    engine.on_updates([status(t, "TASK_RUNNING", f"agent-{n}-S0") for n, t in tasks.items()])
    engine.on_updates([status(tasks[1], "TASK_UNREACHABLE", "agent-1-S0", reason="REASON_AGENT_REMOVED")])
    old = split_document(state_to_json(engine.state))
    engine.on_updates([status(tasks[1], "TASK_UNKNOWN", "agent-1-S0", reason="REASON_RECONCILIATION")])
    new = split_document(state_to_json(engine.state))
    assert kinds(engine.state.node_history[1]) == ["launch", "failure", "failure"]
    assert may_go_ahead(old.entries["1"], new.entries["1"])
    assert keys_ahead(old, new, diff_layouts(old, new)) == {"1"}
    moved = dict(new.entries["1"], pins={"agent_id": "a", "until": 1.0})
    assert not may_go_ahead(old.entries["1"], moved)  # any other field still goes with the cluster part
    fresh = {"nodes": old.entries["1"]["nodes"]}  # a node whose first entry is noted (an adopted task)
    assert may_go_ahead(fresh, dict(fresh, node_history=[]))


# --- what the engine notes ------------------------------------------------------------------------------


def test_a_fresh_cluster_has_one_entry_per_node_and_running_adds_none() -> None:
    engine, store, _ = make(elasticsearchNodes="3")
    tasks = launched(engine, 1, 2, 3)
    for _ in range(3):  # RUNNING and its repeats (health reports) are routine
        engine.on_updates([status(t, "TASK_RUNNING", f"agent-{n}-S0") for n, t in tasks.items()])
    for node_id in (1, 2, 3):
        (entry,) = engine.state.node_history[node_id]
        assert entry.kind is HistoryKind.LAUNCH and entry.text == f"launched on agent{node_id}.example.com"
        assert entry.state == "LAUNCHING"
    assert state_from_json(store.document, FW).node_history == engine.state.node_history


def test_a_failure_is_noted_with_its_reason_and_a_new_leader_shows_it() -> None:
    engine, store, clock = make(elasticsearchNodes="2")
    tasks = launched(engine, 1, 2)
    engine.on_updates([status(t, "TASK_RUNNING", f"agent-{n}-S0") for n, t in tasks.items()])
    clock.now += 10
    engine.on_updates(
        [status(tasks[2], "TASK_FAILED", "agent-2-S0", reason="REASON_COMMAND_EXECUTOR_FAILED", message="exit 137")]
    )
    writes = len(store.change_sets)
    failure = engine.state.node_history[2][-1]
    assert failure.kind is HistoryKind.FAILURE and failure.state == "TASK_FAILED" and failure.at == clock.now
    assert failure.text == "TASK_FAILED (REASON_COMMAND_EXECUTOR_FAILED): exit 137"
    assert list(store.change_sets[-1]) == ["2"]  # the failure's write touched node 2 only
    clock.now += 100
    launched(engine, 2)  # the relaunch
    assert kinds(engine.state.node_history[2]) == ["launch", "failure", "launch"]
    assert len(store.change_sets) == writes + 1
    successor, _, _ = make(store, elasticsearchNodes="2")  # a failover: a new engine reads the store
    assert successor.state.node_history == engine.state.node_history
    assert kinds(successor.state.node_history[1]) == ["launch"]


def test_an_unreachable_task_is_noted_once_and_a_stop_asked_for_is_not_a_failure() -> None:
    engine, _, _ = make(elasticsearchNodes="2", externalVolumeDriver="rexray")
    tasks = launched(engine, 1, 2)
    engine.on_updates([status(t, "TASK_RUNNING", f"agent-{n}-S0") for n, t in tasks.items()])
    for _ in range(3):
        engine.on_updates([status(tasks[1], "TASK_UNREACHABLE", "agent-1-S0", reason="REASON_AGENT_REMOVED")])
    assert kinds(engine.state.node_history[1]) == ["launch", "failure"]
    engine.restart_node(2)  # forced past the planner: an operator command
    engine.on_updates([status(tasks[2], "TASK_KILLED", "agent-2-S0")])
    history = engine.state.node_history[2]
    assert kinds(history) == ["launch", "command", "stopped"]
    assert history[1].state == "TASK_RUNNING" and history[1].text.startswith("restart (at once): node 2 (task")
    assert history[2].text == "TASK_KILLED: stopped as asked (restart)"


def test_queued_and_started_commands_and_gone_are_noted() -> None:
    engine, _, _ = make(elasticsearchNodes="3", externalVolumeDriver="rexray")
    tasks = launched(engine, 1, 2, 3)
    engine.on_updates([status(t, "TASK_RUNNING", f"agent-{n}-S0") for n, t in tasks.items()])
    engine.request_restart(2)
    assert engine.state.node_history[2][-1].text == "restart queued: requested by the operator"
    engine.plan_disruptions(seen(1, 2, 3))
    started = engine.state.node_history[2][-1]
    assert started.kind is HistoryKind.RESTART and started.text == "restart started (node shutdown restart)"
    engine.on_updates([status(tasks[3], "TASK_UNREACHABLE", "agent-3-S0")])
    engine.release_gone(3, tasks[3])
    assert kinds(engine.state.node_history[3]) == ["launch", "failure", "command"]


def test_a_node_scaled_away_leaves_with_its_history() -> None:
    engine, _, _ = make(elasticsearchNodes="3")
    tasks = launched(engine, 1, 2, 3)
    engine.on_updates([status(t, "TASK_RUNNING", f"agent-{n}-S0") for n, t in tasks.items()])
    engine.set_desired_nodes(2, copies_needed=None)
    engine.plan_disruptions(seen(1, 2, 3))  # the planner starts node 3's drain
    drain = engine.state.node_history[3][-1]
    assert (drain.kind, drain.text) == (HistoryKind.SCALE_DOWN, "scale-down started (node shutdown remove)")
    engine.on_updates([status(tasks[3], "TASK_KILLED", "agent-3-S0")])
    assert 3 not in engine.state.nodes and 3 not in engine.state.node_history
    assert set(engine.state.node_history) == {1, 2}


def test_each_rollout_step_is_noted_started_then_done() -> None:
    engine, store, tasks, _ = cluster(3)
    rollout, _ = engine.start_rollout(RolloutReason.RESTART)
    for _ in range(40):
        state = engine.state
        if state.rollout is None:
            break
        up = tuple(i for i in (1, 2, 3) if i in state.nodes and state.nodes[i].stopping is None)
        view = seen(*up, alloc="primaries" if state.rollout.restore else None)
        _, calls = engine.plan_disruptions(view, ready=prepare(state, view, FW).ready)
        for call in calls:
            assert isinstance(call, Kill)
            node_id = next(i for i, t in tasks.items() if t == call.task_id)
            engine.on_updates([status(call.task_id, "TASK_KILLED", f"agent-{node_id}-S0")])
            tasks.update(launched(engine, node_id))
            engine.on_updates([status(tasks[node_id], "TASK_RUNNING", f"agent-{node_id}-S0")])
    assert engine.state.rollout is None
    for node_id in (1, 2, 3):
        steps = [(e.rollout, e.step) for e in engine.state.node_history[node_id] if e.kind is HistoryKind.ROLLOUT]
        assert steps == [(rollout.id, "started"), (rollout.id, "done")], engine.state.node_history[node_id]
        assert kinds(engine.state.node_history[node_id]) == ["launch", "rollout", "stopped", "launch", "rollout"]
    assert state_from_json(store.document, FW).node_history == engine.state.node_history


def test_an_aborted_rollout_notes_its_step_in_progress() -> None:
    engine, _, _, _ = cluster(3)
    rollout, _ = engine.start_rollout(RolloutReason.RESTART)
    round_, _ = engine.plan_disruptions(seen(1, 2, 3))
    assert round_.decision.start is not None
    node_id = round_.decision.start.node_id
    engine.rollout_command(rollout.id, "abort", "changed my mind")
    last = engine.state.node_history[node_id][-1]
    assert (last.kind, last.rollout, last.step) == (HistoryKind.ROLLOUT, rollout.id, "aborted")


def test_an_unchanged_write_changes_no_history() -> None:
    engine, _, _ = make(elasticsearchNodes="2")
    launched(engine, 1, 2)
    before = engine.state
    engine.set_desired_nodes(3, copies_needed=None)
    assert engine.state.node_history is before.node_history
    assert changed_node_ids(before, engine.state) == set()


def test_an_automatic_replacement_is_noted_after_the_unreachable_task() -> None:
    engine, store, clock, tasks = running_replaceable(**OPT_IN)
    lose(engine, clock, tasks, 2)
    clock.now += 600
    choice, _ = engine.replacement_round()
    assert choice is not None
    engine.fence_result(choice, None)
    history = state_from_json(store.document, FW).node_history[2]
    assert kinds(history) == ["launch", "failure", "replacement"]
    assert history[1].text == "TASK_UNREACHABLE (REASON_AGENT_REMOVED)"
    assert history[2].text.startswith(f"replaced automatically: task {tasks[2]} out of reach since")
    assert history[2].state == "TASK_UNREACHABLE"  # what the node was when it was replaced
