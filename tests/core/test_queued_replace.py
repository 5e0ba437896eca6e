"""The operator's replace through the disruption planner (issue 12): a running node's replace is
queued in the ledger (202 "queued"), started only when the planner admits it — counted with rollout
steps, scale-down drains and maintenance moves, never two nodes away — prepared as its shutdown type
says (node shutdown ``restart`` with external volumes, the allocation exclusion with local disk),
then stopped and launched again with the same id; ``force`` and a node that is not running go at
once, as before."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

import pytest

from es_framework.core.disruption import Disruption, Kind, ShutdownType, plan_disruption, request
from es_framework.core.disruption_seen import Seen
from es_framework.core.engine import Engine
from es_framework.core.maintenance_moves import moving, prepare_moves, stop_ready
from es_framework.core.mesos_calls import Kill
from es_framework.core.node_state import ClusterState, TaskState
from es_framework.core.operations import OperatorError
from es_framework.core.rollouts import RolloutReason, StepState, plan_rollout, start_step
from es_framework.core.state_document import state_from_json
from tests.core.test_disruption import S, cluster, green, started
from tests.core.test_engine import FW, Clock, MemoryStore, accepts, launched, make, status
from tests.harness.builders import offer

# --- the planner (pure) -------------------------------------------------------------------------


def queued(state: ClusterState, node_id: int, *, external: bool = True) -> ClusterState:
    ledger = request(state.disruptions, state, Kind.REPLACE, node_id, now=1.0, external_volumes=external)
    return replace(state, disruptions=ledger)


def test_a_queued_replace_waits_while_a_rollout_step_is_under_way_then_starts() -> None:
    state = queued(cluster(5), 2)
    rollout = plan_rollout(state, RolloutReason.RESTART, 0.0, None, master_nodes=3, target="t", nodes=(4, 5))
    rollout, _ = start_step(rollout, 4, 1.0)
    waiting = plan_disruption(
        state, ledger=state.disruptions, rollout=rollout, seen=green(1, 2, 3, 4, 5), now=2.0, settings=S
    )
    assert waiting.start is None
    (blocked, *_) = waiting.blocked
    assert (blocked.node_id, blocked.kind, blocked.predicate) == (2, Kind.REPLACE, "max_unavailable")
    assert "node 4 is already restarting (rollout step draining)" in blocked.message
    # The step is over: the replace comes before the rollout's next step (PRIORITY).
    done = replace(
        rollout, steps=MappingProxyType({**rollout.steps, 4: replace(rollout.steps[4], state=StepState.DONE)})
    )
    decision = plan_disruption(
        state, ledger=state.disruptions, rollout=done, seen=green(1, 2, 3, 4, 5), now=3.0, settings=S
    )
    assert decision.start is not None
    assert (decision.start.node_id, decision.start.kind, decision.start.started_at) == (2, Kind.REPLACE, 3.0)
    assert decision.start.task_id == state.nodes[2].task_id
    assert [(b.node_id, b.predicate) for b in decision.blocked] == [(5, "one_action_at_a_time")]


def test_a_queued_replace_waits_behind_a_started_scale_down_drain_and_a_maintenance_move() -> None:
    base = cluster(5, desired=4)
    drain = started(5, Kind.SCALE_DOWN, base, ShutdownType.REMOVE)
    state = queued(replace(base, disruptions=MappingProxyType({5: drain})), 2)
    decision = plan_disruption(
        state, ledger=state.disruptions, rollout=None, seen=green(1, 2, 3, 4, 5), now=2.0, settings=S
    )
    assert decision.start is None and decision.blocked[0].predicate == "max_unavailable"
    move = started(3, Kind.MAINTENANCE, cluster(5))
    state = queued(replace(cluster(5), disruptions=MappingProxyType({3: move})), 2)
    decision = plan_disruption(
        state, ledger=state.disruptions, rollout=None, seen=green(1, 2, 3, 4, 5), now=2.0, settings=S
    )
    assert decision.start is None and "being drained for maintenance" in decision.blocked[0].message


def test_the_replace_shutdown_type_follows_the_volumes_and_a_registered_remove_stays() -> None:
    assert queued(cluster(3), 2).disruptions[2].shutdown is ShutdownType.RESTART
    assert queued(cluster(3), 2, external=False).disruptions[2].shutdown is ShutdownType.REMOVE
    state = queued(cluster(3), 2)
    removing = Seen(
        "green",
        frozenset(f"{FW}{i}" for i in (1, 2, 3)),
        f"{FW}1",
        0,
        0,
        0,
        shutdowns=MappingProxyType({f"{FW}2": ("remove", "in_progress")}),
    )
    decision = plan_disruption(state, ledger=state.disruptions, rollout=None, seen=removing, now=2.0, settings=S)
    assert decision.start is not None and decision.start.shutdown is ShutdownType.REMOVE


def with_version(state: ClusterState, node_id: int, version: str) -> ClusterState:
    nodes = {**state.nodes, node_id: replace(state.nodes[node_id], version=version)}
    return replace(state, nodes=MappingProxyType(nodes))


def test_a_started_replace_is_moved_like_a_maintenance_move() -> None:
    base = with_version(cluster(3), 2, "8.15.3")
    entry = Disruption(2, Kind.REPLACE, ShutdownType.RESTART, 1.0, 2.0, base.nodes[2].task_id, "by the operator")
    state = replace(base, disruptions=MappingProxyType({2: entry}))
    assert moving(state) == (entry,)
    view = green(1, 2, 3)
    first = prepare_moves(state, view, FW)
    assert first.register == ((2, state.nodes[2].task_id),) and first.replacing == {2} and not first.ready
    complete = replace(view, shutdowns=MappingProxyType({f"{FW}2": ("restart", "complete")}))
    assert prepare_moves(state, complete, FW).ready == {2}
    stopped = stop_ready(state, frozenset({2}))
    assert stopped.state.nodes[2].stopping == "replace" and stopped.kills[0][:2] == (2, state.nodes[2].task_id)
    assert "drained for its replace (by the operator)" in stopped.messages[0][1]
    # Local disk: the allocation exclusion, ready once the node is empty.
    remove = replace(entry, shutdown=ShutdownType.REMOVE)
    state = replace(base, disruptions=MappingProxyType({2: remove}))
    assert prepare_moves(state, view, FW).exclude == (f"{FW}2",)
    assert prepare_moves(state, view, FW, (f"{FW}2",)).ready == {2}


# --- the engine --------------------------------------------------------------------------------


def three(**flags: str) -> tuple[Engine, MemoryStore, Clock, dict[int, str]]:
    engine, store, clock = make(None, elasticsearchNodes="3", **flags)
    tasks = launched(engine, 1, 2, 3)
    for node_id, task_id in tasks.items():
        engine.on_updates([status(task_id, "TASK_RUNNING", f"agent-{node_id}-S0")])
    return engine, store, clock, tasks


def seen(*ids: int) -> Seen:
    return Seen("green", frozenset(f"{FW}{i}" for i in ids), f"{FW}1", 0, 0, 0)


def test_the_replace_is_queued_persisted_started_prepared_stopped_and_launched_again_with_its_id() -> None:
    engine, store, _, tasks = three(externalVolumeDriver="rexray")
    writes = len(store.writes)
    message, calls = engine.request_replace(2)
    assert "replace queued" in message and "node shutdown restart" in message and calls == []
    assert len(store.writes) == writes + 1 and engine.state.nodes[2].stopping is None
    stored = state_from_json(store.document, FW).disruptions[2]
    assert (stored.kind, stored.shutdown, stored.started_at) == (Kind.REPLACE, ShutdownType.RESTART, None)
    assert any(e.node_id == 2 and "replace queued" in e.message for e in engine.events)
    # Asked again: the same request, nothing new written.
    engine.request_replace(2)
    assert len(store.writes) == writes + 1
    # Node 3 not in Elasticsearch's node list: it counts as away, the replace waits.
    round_, calls = engine.plan_disruptions(seen(1, 2))
    assert round_.decision.start is None and calls == []
    assert round_.decision.blocked[0].predicate == "max_unavailable"
    round_, calls = engine.plan_disruptions(seen(1, 2, 3))
    assert round_.decision.start is not None and round_.decision.start.kind is Kind.REPLACE and calls == []
    assert engine.state.nodes[2].stopping is None  # not stopped before it is prepared
    ready = prepare_moves(engine.state, seen(1, 2, 3), FW).ready  # no version reported: ready at once
    _, calls = engine.plan_disruptions(seen(1, 2, 3), ready=ready)
    assert Kill(tasks[2], "agent-2-S0") in calls and engine.state.nodes[2].stopping == "replace"
    engine.on_updates([status(tasks[2], "TASK_KILLED", "agent-2-S0")])
    (accept,) = accepts(engine.on_offers([offer(4)]))
    assert accept.task_infos[0]["name"] == f"{FW}2"
    engine.plan_disruptions(seen(1, 3))
    assert engine.state.disruptions == {}


def test_a_started_replace_holds_back_a_rollout_step_and_a_local_disk_replace_is_a_remove() -> None:
    engine, _, _, _ = three()
    message, _ = engine.request_replace(3)
    assert "its shards moved away first" in message
    engine.plan_disruptions(seen(1, 2, 3))
    assert engine.state.disruptions[3].shutdown is ShutdownType.REMOVE
    engine.start_rollout(RolloutReason.RESTART)
    round_, _ = engine.plan_disruptions(seen(1, 2, 3))
    assert round_.decision.start is None
    assert {b.predicate for b in round_.decision.blocked} == {"max_unavailable"}


def test_force_replaces_at_once_and_drops_the_queued_request() -> None:
    engine, _, _, tasks = three()
    engine.request_replace(2)
    _, calls = engine.replace_node(2)
    assert Kill(tasks[2], "agent-2-S0") in calls
    assert 2 not in engine.state.disruptions and engine.state.nodes[2].stopping == "replace"


def test_a_node_not_running_is_replaced_at_once_and_refusals_change_nothing() -> None:
    engine, store, _ = make(None, elasticsearchNodes="2")
    tasks = launched(engine, 1, 2)
    engine.on_updates([status(tasks[1], "TASK_RUNNING", "agent-1-S0")])
    engine.on_updates([status(tasks[2], "TASK_STARTING", "agent-2-S0")])
    message, calls = engine.request_replace(2)
    assert "nothing to drain, so not queued" in message and Kill(tasks[2], "agent-2-S0") in calls
    assert engine.state.disruptions == {} and engine.state.nodes[2].stopping == "replace"
    writes = len(store.writes)
    for node_id, code in ((2, 409), (9, 404)):  # already being stopped; no such node
        with pytest.raises(OperatorError) as refused:
            engine.request_replace(node_id)
        assert refused.value.status == code
    assert len(store.writes) == writes
    engine.on_updates([status(tasks[1], "TASK_UNREACHABLE", "agent-1-S0", uuid=None)])
    assert engine.state.nodes[1].state is TaskState.UNREACHABLE
    writes = len(store.writes)
    with pytest.raises(OperatorError) as unreachable:
        engine.request_replace(1)
    assert unreachable.value.status == 409 and "TASK_UNREACHABLE, not running" in unreachable.value.message
    assert len(store.writes) == writes and engine.state.disruptions == {}


def test_a_node_restarting_in_a_rollout_or_with_a_restart_pending_is_not_replaced() -> None:
    engine, _, _, _ = three()
    engine.start_rollout(RolloutReason.RESTART)
    round_, _ = engine.plan_disruptions(seen(1, 2, 3))
    assert round_.decision.start is not None
    with pytest.raises(OperatorError) as in_rollout:
        engine.request_replace(round_.decision.start.node_id)
    assert in_rollout.value.status == 409 and "rollout" in in_rollout.value.message
    engine, _, _, _ = three()
    engine.request_restart(2)
    with pytest.raises(OperatorError) as pending:
        engine.request_replace(2)
    assert pending.value.status == 409 and "restart (restart) pending" in pending.value.message
