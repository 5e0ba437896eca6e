"""The views a status update keeps incrementally (issue 13, O(1) per update) always equal the views
recomputed from the records, and an unchanged status update looks at no other node.

- ``ClusterState.with_node`` carries ``kept_nodes`` and ``summary`` (the progress line's counts and
  id sets) over from the state it was called on, adjusted for the one id; every other way to a new
  state recounts them.
- ``seed_host_updates`` (only the changed records) answers what ``seed_host_messages`` (every
  record) answers.
- The engine, which uses both, sends exactly what an engine that recomputes everything sends.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from es_framework.core import engine as engine_module
from es_framework.core.describe import describe
from es_framework.core.engine import Engine
from es_framework.core.mesos_calls import Call, Message
from es_framework.core.node_state import ClusterState, NodeRecord, NodeSummary, TaskState
from es_framework.core.seed_hosts import SeedHostsSent, seed_host_messages, seed_host_updates
from es_framework.core.state_document import state_to_json
from identity.task_ids import task_id_for
from strategies import strategy_for
from tests.core.test_engine import FW, Clock, MemoryStore, status
from tests.harness.builders import config

FUZZ = settings(
    max_examples=150, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
MAX_ID = 9


def record(node_id: int, launch: int, state: TaskState, **fields: Any) -> NodeRecord:
    return NodeRecord(
        node_id=node_id,
        task_id=task_id_for(FW, node_id, f"{launch:032x}"),
        agent_id=f"agent-{node_id}",
        http_port=9200,
        **{"hostname": f"host{node_id}", "transport_port": 9300, **fields},
        state=state,
    )


RECORDS = st.builds(
    record,
    node_id=st.integers(1, MAX_ID),
    launch=st.integers(1, 3),
    state=st.sampled_from(TaskState),
    hostname=st.sampled_from(["", "h1", "h2"]),
    transport_port=st.sampled_from([0, 9300, 9301]),
    outdated=st.booleans(),
    needs_operator=st.booleans(),
    cluster_uuid=st.sampled_from([None, "uuid-a", "uuid-b"]),
)


@st.composite
def states(draw: st.DrawFn) -> ClusterState:
    records = draw(st.lists(RECORDS, max_size=MAX_ID, unique_by=lambda r: r.node_id))
    return ClusterState(
        desired_nodes=draw(st.integers(0, MAX_ID + 1)),
        nodes={r.node_id: r for r in records},
        cluster_uuid=draw(st.sampled_from([None, "uuid-a"])),
    )


#: One change to a state: a node id (re)held by a record, freed, or a field the views depend on.
CHANGES = st.one_of(
    st.tuples(st.just("hold"), RECORDS),
    st.tuples(st.just("free"), st.integers(1, MAX_ID)),
    st.tuples(st.just("desired"), st.integers(0, MAX_ID + 1)),
    st.tuples(st.just("uuid"), st.sampled_from([None, "uuid-a", "uuid-b"])),
)


def changed(state: ClusterState, change: tuple[str, Any]) -> ClusterState:
    kind, value = change
    if kind == "hold":
        return state.with_node(value.node_id, value)
    if kind == "free":
        return state.with_node(value, None)
    if kind == "desired":
        return replace(state, desired_nodes=value)
    return replace(state, cluster_uuid=value)


def recounted(state: ClusterState) -> ClusterState:
    """The same fields in a new instance: nothing carried over, every view counted afresh."""
    return replace(state)


@FUZZ
@given(states(), st.lists(CHANGES, max_size=12))
def test_the_carried_counts_are_the_recounted_ones(state: ClusterState, changes: list[tuple[str, Any]]) -> None:
    for change in changes:
        # Asked for (so carried by the next with_node) in most steps, not in all.
        if change[0] != "free":
            assert state.kept_nodes == sum(1 for i in state.nodes if i <= state.desired_nodes)
            assert state.summary == NodeSummary.of(recounted(state))
        state = changed(state, change)
        fresh = recounted(state)
        assert state.kept_nodes == fresh.kept_nodes
        assert state.missing_nodes == fresh.missing_nodes
        assert state.summary == NodeSummary.of(fresh)
        assert describe(state) == describe(fresh)


def test_with_node_refuses_a_record_of_another_id() -> None:
    state = ClusterState(desired_nodes=2, nodes={1: record(1, 1, TaskState.RUNNING)})
    with pytest.raises(ValueError, match="node 2"):
        state.with_node(1, record(2, 1, TaskState.RUNNING))
    assert state.with_node(3, None).nodes == state.nodes


def test_describe_from_the_summary_says_what_it_said() -> None:
    state = ClusterState(
        desired_nodes=3,
        nodes={
            1: record(1, 1, TaskState.RUNNING, outdated=True),
            2: record(2, 1, TaskState.UNKNOWN, needs_operator=True),
            4: record(4, 1, TaskState.RUNNING, cluster_uuid="uuid-b"),
        },
        cluster_uuid="uuid-a",
    )
    assert describe(state) == (
        "2/3 nodes running; node 2 unknown to Mesos (id kept) (operator action needed); "
        "node 4 is in another cluster (uuid uuid-b, not uuid-a); outdated configuration: node(s) 1; "
        "scaling down: node(s) 4 to be drained and stopped; 1 node(s) waiting for an offer"
    )


# --- seed hosts -----------------------------------------------------------------------------------


@FUZZ
@given(
    st.lists(states(), min_size=1, max_size=2),
    st.lists(
        st.lists(
            st.one_of(st.tuples(st.just("hold"), RECORDS), st.tuples(st.just("free"), st.integers(1, MAX_ID))),
            max_size=4,
        ),
        max_size=6,
    ),
    st.integers(1, 4),
)
def test_seed_updates_answer_what_the_whole_walk_answers(
    history: list[ClusterState], batches: list[list[tuple[str, Any]]], masters: int
) -> None:
    conf = config(elasticsearchMasterNodes=str(masters))
    sent = SeedHostsSent()
    now = 1000.0
    for state in history:  # what was sent before: any earlier state's answer
        sent, _ = seed_host_messages(sent, state, conf, now=now)
        now += 1
    before = history[-1]
    for batch in batches:
        state = before
        for change in batch:
            state = changed(state, change)
        ids = {change[1].node_id if change[0] == "hold" else change[1] for change in batch}
        expected = seed_host_messages(sent, state, conf, now=now)
        assert seed_host_updates(sent, before, state, ids, conf, now=now) == expected
        sent, before, now = expected[0], state, now + 1


def test_a_node_back_from_unreachable_is_told_again_and_a_dead_task_forgotten() -> None:
    conf = config()
    running = ClusterState(desired_nodes=4, nodes={i: record(i, 1, TaskState.RUNNING) for i in range(1, 5)})
    sent, messages = seed_host_messages(SeedHostsSent(), running, conf, now=1.0)
    assert len(messages) == 4
    away = running.with_node(4, replace(running.nodes[4], state=TaskState.UNREACHABLE))
    sent, messages = seed_host_updates(sent, running, away, {4}, conf, now=2.0)
    assert messages == [] and running.nodes[4].task_id not in sent.by_task
    back = away.with_node(4, running.nodes[4])
    sent, messages = seed_host_updates(sent, away, back, {4}, conf, now=3.0)
    assert [m.agent_id for m in messages] == ["agent-4"] and sent.by_task[running.nodes[4].task_id] == sent.version
    same, messages = seed_host_updates(sent, back, back, {1, 2, 3, 4}, conf, now=4.0)
    assert (same, messages) == (sent, [])


# --- the engine -----------------------------------------------------------------------------------


class RecountingEngine(Engine):
    """The reference: seed messages worked out over every record, every time."""

    def seed_host_messages(self, *, resend: bool = False, changed: Any = None) -> list[Call]:
        self._seeded_for = None
        return super().seed_host_messages(resend=resend)


def cluster(nodes: int, *, desired: int | None = None) -> dict[str, Any]:
    records = {i: record(i, 1, TaskState.RUNNING, seen_running=True) for i in range(1, nodes + 1)}
    return state_to_json(ClusterState(desired_nodes=desired or nodes, nodes=records, framework_id="fw"))


def engine(kind: type[Engine], document: dict[str, Any], **flags: str) -> Engine:
    numbers = itertools.count(1)
    return kind(
        config(**flags),
        MemoryStore(document),
        clock=Clock(),
        new_launch_id=lambda: f"{next(numbers):032x}",
        strategy=strategy_for(config(**flags)),
    )


UPDATE = st.tuples(
    st.integers(1, 7),
    st.integers(1, 2),
    st.sampled_from(
        [
            "TASK_RUNNING",
            "TASK_RUNNING",
            "TASK_UNREACHABLE",
            "TASK_FAILED",
            "TASK_STAGING",
            "TASK_KILLED",
            "TASK_UNKNOWN",
        ]
    ),
    st.sampled_from([None, True, False]),
)


@FUZZ
@given(st.lists(st.lists(UPDATE, min_size=1, max_size=4), max_size=10), st.integers(1, 4))
def test_the_engine_sends_what_a_recounting_engine_sends(
    batches: list[list[tuple[int, int, str, bool | None]]], masters: int
) -> None:
    document = cluster(5, desired=6)
    ours = engine(Engine, document, elasticsearchMasterNodes=str(masters))
    reference = engine(RecountingEngine, document, elasticsearchMasterNodes=str(masters))
    assert ours.on_registered("fw") == reference.on_registered("fw")
    for batch in batches:
        raw = [
            status(
                task_id_for(FW, node_id, f"{launch:032x}"),
                state,
                f"agent-{node_id}",
                **({} if healthy is None else {"healthy": healthy}),  # type: ignore[arg-type]
            )
            for node_id, launch, state, healthy in batch
        ]
        assert ours.on_updates(raw) == reference.on_updates(raw)
        assert ours.state == reference.state
        assert describe(ours.state) == describe(recounted(reference.state))
        assert ours.state.missing_nodes == recounted(ours.state).missing_nodes
        assert ours.seed_host_messages(resend=True) == reference.seed_host_messages(resend=True)


class NoScan(Mapping[int, NodeRecord]):
    """Node records that refuse to be walked once armed: a lookup by id is all an update may do."""

    def __init__(self, records: Mapping[int, NodeRecord]) -> None:
        self._records = dict(records)
        self.armed = False

    def __getitem__(self, node_id: int) -> NodeRecord:
        return self._records[node_id]

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[int]:
        if self.armed:
            raise AssertionError("the update walked every node record")
        return iter(self._records)


def test_an_unchanged_update_walks_no_record() -> None:
    subject = engine(Engine, cluster(2000))
    subject.on_registered("fw")
    nodes = NoScan(subject.state.nodes)
    subject.state = replace(subject.state, nodes=nodes)
    subject.seed_host_messages(resend=True)
    _ = (subject.state.kept_nodes, subject.state.summary)
    nodes.armed = True
    task = subject.state.nodes[1500].task_id
    calls = subject.on_updates([status(task, "TASK_RUNNING", "agent-1500", reason="REASON_RECONCILIATION")])
    assert [type(c).__name__ for c in calls] == ["Acknowledge"]


def test_a_changed_update_recounts_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    subject = engine(Engine, cluster(2000))
    subject.on_registered("fw")
    subject.on_updates([status(subject.state.nodes[7].task_id, "TASK_RUNNING", "agent-7", healthy=True)])
    walks: list[str] = []

    def forbidden(name: str) -> Any:
        def walk(*args: Any, **kwargs: Any) -> Any:
            walks.append(name)
            raise AssertionError(f"{name} walked every record")

        return walk

    monkeypatch.setattr(NodeSummary, "of", classmethod(forbidden("NodeSummary.of")))
    monkeypatch.setattr(ClusterState, "view", forbidden("ClusterState.view"))
    monkeypatch.setattr(engine_module, "seed_host_messages", forbidden("seed_host_messages"))
    unhealthy = subject.on_updates(
        [status(subject.state.nodes[1500].task_id, "TASK_RUNNING", "agent-1500", healthy=False)]
    )
    assert walks == [] and subject.state.nodes[1500].healthy is False
    assert "kept_nodes" in subject.state.__dict__ and "summary" in subject.state.__dict__
    # A task that stops running is forgotten, one back is told the seed hosts again: still no walk.
    subject.on_updates([status(subject.state.nodes[3].task_id, "TASK_UNREACHABLE", "agent-3")])
    back = subject.on_updates([status(subject.state.nodes[3].task_id, "TASK_RUNNING", "agent-3")])
    assert [m.agent_id for m in back if isinstance(m, Message)] == ["agent-3"]
    assert walks == [] and len([c for c in unhealthy if isinstance(c, Message)]) == 0
