from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from es_framework.core.describe import describe
from es_framework.core.node_state import (
    FREEING_STATES,
    ClusterState,
    NodeRecord,
    NodeStateError,
    TaskState,
    record_launch,
    release_node,
)
from es_framework.core.state_document import state_from_json, state_to_json
from es_framework.core.status_updates import Action, StatusUpdate, apply_status, parse_status
from identity import task_id_for, volume_names

FW = "elasticsearch"


def tid(node_id: int, launch: int = 0) -> str:
    return task_id_for(FW, node_id, f"{launch:032x}")


def launching(node_id: int, launch: int = 0, agent: str | None = None) -> NodeRecord:
    return NodeRecord(
        node_id=node_id,
        task_id=tid(node_id, launch),
        agent_id=agent or f"agent-{node_id}",
        hostname=f"host{node_id}",
        http_port=31000,
        transport_port=31001,
        volumes=volume_names(FW, node_id),
    )


def cluster(*node_ids: int, desired: int = 3) -> ClusterState:
    state = ClusterState(desired_nodes=desired)
    for node_id in node_ids:
        state = record_launch(state, launching(node_id))
    return state


def update(node_id: int, state: TaskState, launch: int = 0, **kw: Any) -> StatusUpdate:
    return StatusUpdate(
        task_id=tid(node_id, launch), state=state, agent_id=kw.pop("agent_id", f"agent-{node_id}"), **kw
    )


def apply(state: ClusterState, *updates: StatusUpdate) -> tuple[ClusterState, list[Action]]:
    actions = []
    for u in updates:
        state, decision = apply_status(state, u, FW)
        actions.append(decision.action)
    return state, actions


def running(*node_ids: int) -> ClusterState:
    state = cluster(*node_ids)
    state, _ = apply(state, *(update(n, TaskState.RUNNING) for n in node_ids))
    return state


# --- launching ---------------------------------------------------------------------------------


def test_record_launch_reserves_the_id_before_mesos_knows() -> None:
    state = cluster(1, 2)
    assert sorted(state.nodes) == [1, 2]
    assert state.nodes[1].state is TaskState.LAUNCHING
    assert state.allocator().allocate() == 3
    assert state.view().present_nodes == 2


def test_record_launch_refuses_a_held_id_or_a_reused_task_id() -> None:
    state = cluster(1)
    with pytest.raises(NodeStateError, match="node 1 is already held by task"):
        record_launch(state, launching(1, launch=1))
    other = launching(2)
    with pytest.raises(NodeStateError, match="already recorded"):
        record_launch(state, NodeRecord(**{**other.__dict__, "task_id": tid(1)}))
    with pytest.raises(NodeStateError, match="LAUNCHING"):
        record_launch(state, NodeRecord(**{**other.__dict__, "state": TaskState.RUNNING}))
    assert list(state.nodes) == [1]


# --- the freeing rules ----------------------------------------------------------------------------


@pytest.mark.parametrize("final", sorted(FREEING_STATES))
def test_certainly_dead_tasks_free_their_id(final: TaskState) -> None:
    state, actions = apply(running(1, 2, 3), update(2, final, reason="REASON_COMMAND_EXECUTOR_FAILED"))
    assert actions == [Action.FREE]
    assert sorted(state.nodes) == [1, 3]
    assert state.allocator().allocate() == 2  # the replacement is node 2 again


def test_freeing_state_set_is_exactly_the_issue_list() -> None:
    assert {s.value for s in FREEING_STATES} == {
        "TASK_FINISHED",
        "TASK_FAILED",
        "TASK_KILLED",
        "TASK_ERROR",
        "TASK_DROPPED",
        "TASK_GONE",
        "TASK_GONE_BY_OPERATOR",
        "TASK_LOST",
    }


def test_unreachable_keeps_the_id_and_counts_as_present() -> None:
    state, actions = apply(running(1, 2, 3), update(2, TaskState.UNREACHABLE, reason="REASON_AGENT_REMOVED"))
    assert actions == [Action.UPDATE]
    assert state.nodes[2].state is TaskState.UNREACHABLE
    view = state.view()
    assert view.present_nodes == 3 and view.missing_nodes == 0
    assert view.nodes_by_agent["agent-2"] == 2
    assert "unreachable (id kept)" in describe(state)


def test_unreachable_then_gone_frees() -> None:
    state, actions = apply(running(1, 2), update(2, TaskState.UNREACHABLE), update(2, TaskState.GONE))
    assert actions == [Action.UPDATE, Action.FREE]
    assert 2 not in state.nodes


def test_unreachable_then_back_running_keeps_the_old_node() -> None:
    state, actions = apply(
        running(1, 2),
        update(2, TaskState.UNREACHABLE),
        update(2, TaskState.RUNNING, reason="REASON_AGENT_REREGISTERED"),
    )
    assert actions == [Action.UPDATE, Action.UPDATE]
    assert state.nodes[2].state is TaskState.RUNNING
    assert state.nodes[2].task_id == tid(2)


@pytest.mark.parametrize("before", [TaskState.RUNNING, TaskState.UNREACHABLE])
def test_unknown_keeps_a_task_that_ran_or_was_unreachable(before: TaskState) -> None:
    state, _ = apply(running(1, 2), update(2, before))
    state, actions = apply(state, update(2, TaskState.UNKNOWN, reason="REASON_RECONCILIATION"))
    assert actions == [Action.UPDATE]
    assert state.nodes[2].needs_operator and state.nodes[2].state is TaskState.UNKNOWN
    assert "operator action needed" in describe(state)
    # Asking again changes nothing.
    assert apply(state, update(2, TaskState.UNKNOWN, reason="REASON_RECONCILIATION"))[1] == [Action.IGNORE]
    # The operator frees it.
    assert 2 not in release_node(state, 2).nodes


def test_repeated_unknown_keeps_an_unreachable_task_that_never_ran() -> None:
    # Found by the property test below: the second UNKNOWN used to free it.
    state, actions = apply(
        cluster(1), update(1, TaskState.UNREACHABLE), update(1, TaskState.UNKNOWN), update(1, TaskState.UNKNOWN)
    )
    assert actions == [Action.UPDATE, Action.UPDATE, Action.IGNORE]
    assert state.nodes[1].needs_operator


@pytest.mark.parametrize("before", [TaskState.LAUNCHING, TaskState.STAGING, TaskState.STARTING])
def test_unknown_frees_a_task_that_never_ran(before: TaskState) -> None:
    state = cluster(1)
    if before is not TaskState.LAUNCHING:
        state, _ = apply(state, update(1, before))
    state, actions = apply(state, update(1, TaskState.UNKNOWN))
    assert actions == [Action.FREE]
    assert not state.nodes


def test_unknown_task_back_running_clears_the_flag() -> None:
    state, _ = apply(running(1), update(1, TaskState.UNKNOWN), update(1, TaskState.RUNNING))
    assert state.nodes[1].state is TaskState.RUNNING and not state.nodes[1].needs_operator


# --- duplicates, stale and foreign updates -------------------------------------------------------


def test_duplicate_updates_change_nothing() -> None:
    state = running(1)
    again, actions = apply(state, update(1, TaskState.RUNNING))
    assert actions == [Action.IGNORE]
    assert again is state


def test_reconciliation_answers_and_repeated_health_change_nothing() -> None:
    state = running(1)
    again, actions = apply(state, update(1, TaskState.RUNNING, reason="REASON_RECONCILIATION"))
    assert actions == [Action.IGNORE] and again is state
    healthy, actions = apply(state, update(1, TaskState.RUNNING, healthy=True))
    assert actions == [Action.UPDATE] and healthy.nodes[1].healthy is True
    same, actions = apply(
        healthy, update(1, TaskState.RUNNING, healthy=True, reason="REASON_TASK_HEALTH_CHECK_STATUS_UPDATED")
    )
    assert actions == [Action.IGNORE] and same is healthy
    sick, decisions = apply_status(healthy, update(1, TaskState.RUNNING, healthy=False), FW)
    assert decisions.action is Action.UPDATE and "unhealthy (was True)" in decisions.reason
    assert sick.nodes[1].healthy is False
    # A report without health news keeps the last one.
    assert apply(sick, update(1, TaskState.UNREACHABLE))[0].nodes[1].healthy is False
    assert state_from_json(state_to_json(sick), FW).nodes[1].healthy is False


@pytest.mark.parametrize("stale", [TaskState.STAGING, TaskState.STARTING])
def test_stale_updates_never_move_a_task_back(stale: TaskState) -> None:
    state, actions = apply(running(1), update(1, stale))
    assert actions == [Action.IGNORE]
    assert state.nodes[1].state is TaskState.RUNNING


def test_late_update_of_an_earlier_task_changes_nothing() -> None:
    state, _ = apply(running(2), update(2, TaskState.FAILED))
    state = record_launch(state, launching(2, launch=1))
    late, actions = apply(state, update(2, TaskState.FAILED, launch=0))
    assert actions == [Action.IGNORE]
    assert late.nodes[2].task_id == tid(2, 1)


@pytest.mark.parametrize("live", [TaskState.RUNNING, TaskState.STARTING, TaskState.STAGING, TaskState.UNREACHABLE])
def test_a_second_live_task_for_a_held_id_is_killed(live: TaskState) -> None:
    state = running(2)
    after, actions = apply(state, update(2, live, launch=7, agent_id="agent-9"))
    assert actions == [Action.KILL]
    assert after is state
    assert after.nodes[2].task_id == tid(2)


def test_a_live_task_state_lacks_is_adopted() -> None:
    state, actions = apply(ClusterState(desired_nodes=3), update(3, TaskState.RUNNING, agent_id="agent-x"))
    assert actions == [Action.ADOPT]
    record = state.nodes[3]
    assert (record.task_id, record.agent_id, record.state, record.seen_running) == (
        tid(3),
        "agent-x",
        TaskState.RUNNING,
        True,
    )
    # Its host is not known yet, so it does not seed discovery or match offers by hostname.
    assert state.view().seed_hosts == () and "" not in state.view().nodes_by_hostname
    assert state.view().nodes_by_agent["agent-x"] == 3


def test_adoption_needs_an_agent_id() -> None:
    state, actions = apply(ClusterState(desired_nodes=3), update(3, TaskState.RUNNING, agent_id=None))
    assert actions == [Action.KILL]
    assert not state.nodes


def test_dead_tasks_state_lacks_are_ignored() -> None:
    for final in (*FREEING_STATES, TaskState.UNKNOWN):
        state, actions = apply(ClusterState(desired_nodes=3), update(1, final))
        assert actions == [Action.IGNORE] and not state.nodes


@pytest.mark.parametrize("task_id", ["other-node1-" + "0" * 32, "garbage", "elasticsearch-node1"])
def test_tasks_that_are_not_ours(task_id: str) -> None:
    state = running(1)
    live = StatusUpdate(task_id=task_id, state=TaskState.RUNNING, agent_id="a")
    assert apply_status(state, live, FW)[1].action is Action.KILL
    dead = StatusUpdate(task_id=task_id, state=TaskState.FAILED, agent_id="a")
    assert apply_status(state, dead, FW)[1].action is Action.IGNORE


def test_decision_reads_well_in_a_log() -> None:
    _, decision = apply_status(running(2), update(2, TaskState.UNREACHABLE), FW)
    assert str(decision).startswith(f"node 2 task {tid(2)}: update: agent unreachable; node 2 stays reserved")


# --- status parsing ---------------------------------------------------------------------------------


def test_parse_status_from_the_wire() -> None:
    raw = {
        "task_id": {"value": tid(1)},
        "state": "TASK_UNREACHABLE",
        "agent_id": {"value": "a1"},
        "reason": "REASON_AGENT_REMOVED",
        "source": "SOURCE_MASTER",
        "message": "health check timed out",
        "timestamp": 1.5,
        "unreachable_time": {"nanoseconds": 1},
    }
    status = parse_status(raw)
    assert status == StatusUpdate(
        task_id=tid(1),
        state=TaskState.UNREACHABLE,
        agent_id="a1",
        reason="REASON_AGENT_REMOVED",
        source="SOURCE_MASTER",
        message="health check timed out",
        uuid=None,
        timestamp=1.5,
        unreachable_time=1e-9,
    )
    assert parse_status({**raw, "uuid": "AAEC", "healthy": True}).uuid == "AAEC"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "JSON object"),
        ({"state": "TASK_RUNNING"}, "task_id"),
        ({"task_id": {"value": ""}, "state": "TASK_RUNNING"}, "task_id"),
        ({"task_id": {"value": "t"}, "state": "RUNNING"}, "not a Mesos task state"),
        ({"task_id": {"value": "t"}, "state": "LAUNCHING"}, "not a Mesos task state"),
        ({"task_id": {"value": "t"}}, "not a Mesos task state"),
    ],
)
def test_malformed_statuses_are_refused(raw: object, message: str) -> None:
    with pytest.raises(NodeStateError, match=message):
        parse_status(raw)


# --- persistence ----------------------------------------------------------------------------------


def test_state_json_round_trip() -> None:
    state, _ = apply(running(1, 2, 3), update(2, TaskState.UNREACHABLE), update(3, TaskState.UNKNOWN))
    state = ClusterState(desired_nodes=5, nodes=state.nodes, framework_id="fw-1")
    document = json.loads(json.dumps(state_to_json(state)))
    assert document["schema"] == 3
    back = state_from_json(document, FW)
    assert back == state
    assert back.nodes[3].needs_operator


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(schema=4), "schema"),
        (lambda d: d["nodes"][0].update(attributes={"rack": 1}), "attributes"),
        (lambda d: d.update(volumes=[]), "volumes must be an object"),
        (lambda d: d.update(schema=True), "schema"),
        (lambda d: d.update(bootstrap_masters="elasticsearch1"), "bootstrap_masters"),
        (lambda d: d.update(cluster_uuid=7), "cluster_uuid"),
        (lambda d: d.update(cluster_uuid="u", bootstrap_masters=["elasticsearch1"]), "still be bootstrapping"),
        (lambda d: d["nodes"][0].update(version=8), "version"),
        (lambda d: d.update(desired_nodes=-1), "below 0"),
        (lambda d: d.update(desired_nodes=True), "desired_nodes"),
        (lambda d: d["nodes"][0].update(task_id=tid(2)), "does not name node 1"),
        (lambda d: d["nodes"].append(dict(d["nodes"][0])), "appears twice"),
        (lambda d: d["nodes"][0].update(state="TASK_SLEEPING"), "unknown state"),
        (lambda d: d["nodes"][0].update(volumes=["x", "y"]), "are not node 1's"),
        (lambda d: d["nodes"][0].update(node_id=True), "node_id"),
        (lambda d: d.update(framework_id=5), "framework_id"),
    ],
)
def test_corrupt_state_is_refused(mutate: Any, message: str) -> None:
    document = state_to_json(running(1))
    mutate(document)
    with pytest.raises(NodeStateError, match=message):
        state_from_json(document, FW)


def test_state_of_another_framework_is_refused() -> None:
    with pytest.raises(NodeStateError, match="does not name node 1 of 'logs'"):
        state_from_json(state_to_json(running(1)), "logs")


def test_reconcile_list_carries_agent_ids() -> None:
    assert running(2, 1).reconcile_tasks() == [
        {"task_id": {"value": tid(1)}, "agent_id": {"value": "agent-1"}},
        {"task_id": {"value": tid(2)}, "agent_id": {"value": "agent-2"}},
    ]


def test_view_and_progress_line() -> None:
    state, _ = apply(running(1, 2), update(2, TaskState.KILLING))
    state = record_launch(state, launching(4))
    view = state.view()
    # Node 4 is above the desired count: it is being scaled away and does not count; node 3 is missing.
    assert view.present_nodes == 2 and view.desired_nodes == 3 and view.missing_nodes == 1
    assert state.missing_nodes == 1
    assert view.seed_hosts == ("host1:31001", "host2:31001")
    assert describe(ClusterState(desired_nodes=3, nodes=state.nodes)) == (
        "1/3 nodes running; node 2 stopping; node 4 launching; scaling down: node(s) 4 to be drained and stopped; "
        "1 node(s) waiting for an offer"
    )
    assert describe(ClusterState(desired_nodes=4, nodes=state.nodes)) == (
        "1/4 nodes running; node 2 stopping; node 4 launching; 1 node(s) waiting for an offer"
    )
    assert describe(cluster(1, desired=3)) == "0/3 nodes running; node 1 launching; 2 node(s) waiting for an offer"


def test_the_progress_line_counts_nodes_past_ten_instead_of_naming_each() -> None:
    state, _ = apply(running(*range(1, 31)), *(update(n, TaskState.KILLING) for n in range(20, 31)))
    state = ClusterState(desired_nodes=25, nodes=state.nodes)
    assert describe(state) == (
        "19/25 nodes running; 11 node(s) stopping: 20, 21, 22, 23, 24, 25, 26, 27, 28, 29 … (+1 more); "
        "scaling down: node(s) 26, 27, 28, 29, 30 to be drained and stopped"
    )
    big = describe(ClusterState(desired_nodes=10_000, nodes=cluster(*range(1, 5001)).nodes))
    assert big.startswith("0/10000 nodes running; 5000 node(s) launching: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 … (+4990 more)")
    assert len(big) < 200, big


# --- properties over random update sequences ------------------------------------------------------

ALL_STATES = [s for s in TaskState if s is not TaskState.LAUNCHING]
updates = st.lists(
    st.tuples(st.integers(1, 3), st.integers(0, 2), st.sampled_from(ALL_STATES)),
    max_size=40,
)


@settings(max_examples=400, deadline=None)
@given(sequence=updates)
def test_identity_invariants_hold_for_any_update_sequence(sequence: list[tuple[int, int, TaskState]]) -> None:
    state = cluster(1, 2, 3)
    for node_id, launch, new in sequence:
        holder_before = state.nodes.get(node_id)
        state, decision = apply_status(state, update(node_id, new, launch=launch), FW)
        holder_after = state.nodes.get(node_id)
        # Every record is held by a task whose id names it.
        assert all(r.task_id == tid(n, int(r.task_id[-32:], 16)) for n, r in state.nodes.items())
        if decision.action is Action.FREE:
            # Only the holder's own death, or UNKNOWN for a task that never ran, frees an id.
            assert holder_before is not None and holder_before.task_id == tid(node_id, launch)
            assert new in FREEING_STATES or (
                new is TaskState.UNKNOWN
                and not holder_before.seen_running
                and holder_before.state is not TaskState.UNREACHABLE
            )
            assert holder_after is None
        elif holder_before is not None and holder_before.task_id != tid(node_id, launch):
            # Another task's update never touches the holder.
            assert holder_after == holder_before
            assert decision.action in (Action.KILL, Action.IGNORE)
        if holder_after is not None:
            # Applying the same update again is harmless.
            again, second = apply_status(state, update(node_id, new, launch=launch), FW)
            if holder_after.task_id == tid(node_id, launch):
                assert second.action in (Action.IGNORE, Action.UPDATE)
                assert again.nodes.get(node_id) is not None
        # An unreachable node keeps its id until Mesos says its task is gone (or otherwise dead).
        if holder_before is not None and holder_before.state is TaskState.UNREACHABLE and holder_after is None:
            assert new in FREEING_STATES
        assert state.view().present_nodes == len(state.nodes)
