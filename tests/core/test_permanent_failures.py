"""Automatic replacement after permanent failure (pure): which node, how, and when — over times
(hypothesis); the release; the unreachable-since time from status updates and through the stored
document (older documents too)."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from es_framework.core.node_state import ClusterState, NodeRecord, Pin, Replacement, TaskState
from es_framework.core.permanent_failures import (
    FENCE_RETRY_S,
    Choice,
    Settings,
    Step,
    decide,
    in_flight,
    release_replaced,
    replacement_from_json,
)
from es_framework.core.state_document import state_from_json, state_to_json
from es_framework.core.status_updates import StatusUpdate, apply_status, parse_status
from identity.task_ids import task_id_for

FW = "elasticsearch"
ON = Settings(timeout_s=600.0, interval_s=300.0, mark_gone=True)


def tid(node_id: int, launch: str = "a") -> str:
    return task_id_for(FW, node_id, launch * 32)


def record(node_id: int, state: TaskState = TaskState.RUNNING, since: float | None = None, **kw: object) -> NodeRecord:
    return NodeRecord(
        node_id=node_id,
        task_id=tid(node_id),
        agent_id=f"agent-{node_id}",
        hostname=f"host{node_id}",
        http_port=9200,
        transport_port=9300,
        state=state,
        seen_running=True,
        unreachable_since=since,
        **kw,  # type: ignore[arg-type]
    )


def cluster(*records: NodeRecord, desired: int = 3, last: Replacement | None = None) -> ClusterState:
    return ClusterState(
        desired_nodes=desired, nodes=MappingProxyType({r.node_id: r for r in records}), last_replacement=last
    )


times = st.floats(min_value=0, max_value=1e6, allow_nan=False)


# --- the decision, over times ------------------------------------------------------------------------


@given(since=times, elapsed=st.floats(min_value=0, max_value=1e5), timeout=st.floats(min_value=1, max_value=1e4))
def test_a_node_is_acted_on_only_once_it_has_been_out_of_reach_for_the_timeout(
    since: float, elapsed: float, timeout: float
) -> None:
    state = cluster(record(1), record(2, TaskState.UNREACHABLE, since), record(3))
    now = since + elapsed
    choice = decide(state, now, replace(ON, timeout_s=timeout))
    if now - since >= timeout:
        assert (choice.step, choice.node_id, choice.agent_id) == (Step.MARK_GONE, 2, "agent-2")
        assert choice.since == since and choice.out_for_s == now - since
    else:
        assert choice.step is Step.NONE and choice.node_id is None


@given(since=times, elapsed=st.floats(min_value=600, max_value=1e5))
def test_without_the_opt_in_no_agent_is_ever_marked_gone(since: float, elapsed: float) -> None:
    state = cluster(record(1, TaskState.UNREACHABLE, since))
    choice = decide(state, since + elapsed, replace(ON, mark_gone=False))
    assert choice.step is Step.NONE
    assert choice.node_id == 1 and "NOT replaced" in choice.reason and "POST /v1/nodes/1/gone" in choice.reason


@given(since=times, elapsed=st.floats(min_value=0, max_value=1e5))
def test_off_means_never(since: float, elapsed: float) -> None:
    state = cluster(record(1, TaskState.UNREACHABLE, since))
    assert decide(state, since + elapsed, replace(ON, timeout_s=0)).step is Step.NONE


@given(last_at=times, gap=st.floats(min_value=0, max_value=1e4))
def test_two_automatic_replacements_are_at_least_the_interval_apart(last_at: float, gap: float) -> None:
    # The last replacement (node 3) has run again since; node 2 has been unreachable for long.
    last = Replacement(3, tid(3, "e"), "agent-9", last_at)
    state = cluster(record(1), record(2, TaskState.UNREACHABLE, last_at - 10_000), record(3), last=last)
    now = last_at + gap
    choice = decide(state, now, ON)
    assert choice.step is (Step.MARK_GONE if now - last_at >= ON.interval_s else Step.NONE)
    if now - last_at < ON.interval_s:
        assert "--replacementInterval" in choice.reason


def test_one_replacement_in_flight_at_a_time() -> None:
    last = Replacement(3, tid(3), "agent-3", 0.0)
    unreachable = record(2, TaskState.UNREACHABLE, 0.0)
    # Node 3 not relaunched yet, then launching, then its new task RUNNING.
    for node3, busy in (
        (None, True),
        (replace(record(3, TaskState.LAUNCHING), task_id=tid(3, "b"), seen_running=False), True),
        (replace(record(3), task_id=tid(3, "b")), False),
    ):
        state = cluster(*(r for r in (record(1), unreachable, node3) if r is not None), last=last)
        assert (in_flight(state) is not None) is busy
        choice = decide(state, 1e6, ON)
        assert choice.step is (Step.NONE if busy else Step.MARK_GONE)
    # A replacement whose id is no longer wanted (scaled away) does not hold the others back.
    assert in_flight(cluster(record(1), unreachable, desired=2, last=last)) is None


@given(
    sinces=st.lists(st.floats(min_value=0, max_value=1e5), min_size=1, max_size=6),
    states=st.lists(st.sampled_from([TaskState.UNREACHABLE, TaskState.UNKNOWN, TaskState.RUNNING]), min_size=6),
)
def test_the_node_out_of_reach_longest_goes_first_and_only_one(sinces: list[float], states: list[TaskState]) -> None:
    records = [
        record(i + 1, states[i], since, needs_operator=states[i] is TaskState.UNKNOWN) for i, since in enumerate(sinces)
    ]
    state = cluster(*records, desired=len(records))
    now = 2e5
    choice = decide(state, now, ON)
    due = [r for r in records if r.state is not TaskState.RUNNING]
    if not due:
        assert choice.step is Step.NONE
        return
    oldest = min(due, key=lambda r: (r.unreachable_since, r.node_id))
    assert (choice.step, choice.node_id) == (Step.MARK_GONE, oldest.node_id)


def test_what_is_not_out_of_reach_or_not_wanted_is_never_chosen() -> None:
    old = 0.0
    state = cluster(
        record(1, TaskState.RUNNING, None),
        record(2, TaskState.STAGING, None),
        record(3, TaskState.UNKNOWN, old),  # UNKNOWN of a task that never ran: no operator flag, freed elsewhere
        record(4, TaskState.UNREACHABLE, old),  # above the desired count: being scaled away
        record(5, TaskState.UNREACHABLE, None),  # since when unknown: fail closed
        desired=3,
    )
    assert decide(state, 1e6, ON).step is Step.NONE
    flagged = cluster(record(3, TaskState.UNKNOWN, old, needs_operator=True))
    assert decide(flagged, 1e6, ON).node_id == 3


def test_a_fenced_agent_releases_and_a_failed_fence_waits_before_trying_again() -> None:
    state = cluster(record(1, TaskState.UNREACHABLE, 0.0), record(2, TaskState.UNREACHABLE, 5.0))
    assert decide(state, 1e4, ON, fenced_agents=frozenset({"agent-1"})).step is Step.RELEASE
    # Agent 1's fence failed just now: agent 2's node is tried meanwhile, then agent 1's again.
    failed = MappingProxyType({"agent-1": 1e4})
    assert decide(state, 1e4 + 1, ON, failed_fences=failed).node_id == 2
    assert decide(state, 1e4 + FENCE_RETRY_S, ON, failed_fences=failed).node_id == 1
    both = MappingProxyType({"agent-1": 1e4, "agent-2": 1e4})
    assert decide(state, 1e4 + 1, ON, failed_fences=both).step is Step.NONE


# --- the release ---------------------------------------------------------------------------------------


def test_the_release_frees_the_id_drops_its_pin_and_records_the_replacement() -> None:
    state = replace(
        cluster(record(1), record(2, TaskState.UNREACHABLE, 100.0)),
        pins=MappingProxyType({2: Pin("agent-2", 9e9), 1: Pin("agent-1", 9e9)}),
    )
    choice = Choice(Step.MARK_GONE, "why", 2, tid(2), "agent-2", 100.0, 700.0)
    after = release_replaced(state, choice, 800.0)
    assert set(after.nodes) == {1} and set(after.pins) == {1}
    assert after.last_replacement == Replacement(2, tid(2), "agent-2", 800.0, 100.0)
    assert after.missing_nodes == state.missing_nodes + 1  # the id is launched again
    # Already freed by TASK_GONE_BY_OPERATOR, or held by a newer task: left alone, still recorded.
    newer = cluster(record(1), replace(record(2), task_id=tid(2, "b")))
    again = release_replaced(newer, choice, 800.0)
    assert again.nodes == newer.nodes and again.last_replacement is not None


# --- since when, from status updates ------------------------------------------------------------------


def unreachable(node_id: int, nanos: int | None = None, state: str = "TASK_UNREACHABLE") -> StatusUpdate:
    raw: dict[str, object] = {"task_id": {"value": tid(node_id)}, "state": state, "agent_id": {"value": "agent-1"}}
    if nanos is not None:
        raw["unreachable_time"] = {"nanoseconds": nanos}
    return parse_status(raw)


def test_since_is_mesos_unreachable_time_never_later_than_now_and_kept_until_back() -> None:
    state = cluster(record(1))
    state, _ = apply_status(state, unreachable(1, 900 * 10**9), FW, now=1000.0)
    assert state.nodes[1].unreachable_since == 900.0
    # Without Mesos' time: the scheduler's clock; a master clock ahead of ours is capped at now.
    assert apply_status(cluster(record(1)), unreachable(1), FW, now=1000.0)[0].nodes[1].unreachable_since == 1000.0
    assert (
        apply_status(cluster(record(1)), unreachable(1, 5000 * 10**9), FW, now=1000.0)[0].nodes[1].unreachable_since
        == 1000.0
    )
    # UNKNOWN afterwards, or a reconciliation answer with a later time, keeps the first start.
    state, _ = apply_status(state, unreachable(1, state="TASK_UNKNOWN"), FW, now=2000.0)
    assert (state.nodes[1].state, state.nodes[1].unreachable_since) == (TaskState.UNKNOWN, 900.0)
    state, _ = apply_status(state, unreachable(1, 1500 * 10**9), FW, now=2100.0)
    assert state.nodes[1].unreachable_since == 900.0
    # Back RUNNING: the clock is cleared.
    back = parse_status({"task_id": {"value": tid(1)}, "state": "TASK_RUNNING", "agent_id": {"value": "agent-1"}})
    state, _ = apply_status(state, back, FW, now=2200.0)
    assert state.nodes[1].unreachable_since is None


def test_an_adopted_unreachable_task_starts_its_clock_from_mesos() -> None:
    state, _ = apply_status(cluster(), unreachable(2, 700 * 10**9), FW, now=1000.0)
    assert state.nodes[2].unreachable_since == 700.0


# --- the stored document ---------------------------------------------------------------------------------


@given(since=st.one_of(st.none(), times), at=times, last_since=st.one_of(st.none(), times))
def test_since_and_the_last_replacement_survive_the_document(
    since: float | None, at: float, last_since: float | None
) -> None:
    state = cluster(record(1, TaskState.UNREACHABLE, since), last=Replacement(2, tid(2), "agent-2", at, last_since))
    back = state_from_json(state_to_json(state), FW)
    assert back.nodes[1].unreachable_since == since
    assert back.last_replacement == state.last_replacement


def test_an_older_document_still_reads() -> None:
    document = state_to_json(cluster(record(1, TaskState.UNREACHABLE, 5.0), record(2)))
    del document["last_replacement"]
    for node in document["nodes"]:
        del node["unreachable_since"]
        node["updated_at"] = 42.0
    back = state_from_json(document, FW)
    assert back.last_replacement is None
    # An out-of-reach record counts from its last update (the UNREACHABLE: repeats are not written).
    assert back.nodes[1].unreachable_since == 42.0 and back.nodes[2].unreachable_since is None


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {"node_id": "1", "task_id": tid(1), "agent_id": "a", "at": 1.0},
        {"node_id": 1, "task_id": tid(1), "agent_id": "a", "at": True},
        {"node_id": 1, "task_id": tid(1), "agent_id": "a", "at": 1.0, "since": "x"},
    ],
)
def test_a_malformed_last_replacement_is_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        replacement_from_json(bad)


def test_a_last_replacement_naming_another_nodes_task_is_corruption() -> None:
    document = state_to_json(cluster(last=Replacement(2, tid(3), "agent-2", 1.0)))
    with pytest.raises(ValueError, match="another node"):
        state_from_json(document, FW)
