"""state_changes: only the node ids that changed are serialised, and applying them to the stored
layout gives exactly the layout of the whole new document."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from hypothesis import given, settings
from hypothesis import strategies as st

from es_framework.core.node_state import ClusterState, NodeRecord, Pin, TaskState
from es_framework.core.state_changes import changed_node_ids, state_changes
from es_framework.core.state_document import state_to_json
from es_framework.core.state_layout import apply_changes, merge_document, split_document
from identity import task_id_for

FW = "elasticsearch"


def record(node_id: int, launch: int = 0, state: TaskState = TaskState.LAUNCHING) -> NodeRecord:
    return NodeRecord(
        node_id=node_id,
        task_id=task_id_for(FW, node_id, f"{launch:032x}"),
        agent_id=f"agent-{node_id}",
        hostname=f"host{node_id}",
        http_port=31000,
        transport_port=31001,
        state=state,
    )


def base(n: int = 5) -> ClusterState:
    state = ClusterState(desired_nodes=n)
    for node_id in range(1, n + 1):
        state = state.with_node(node_id, record(node_id))
    return replace(state, pins=MappingProxyType({2: Pin("agent-2", 5000.0)}))


def applied(old: ClusterState, new: ClusterState) -> dict[str, object]:
    changes = state_changes(old, new)
    layout, _ = apply_changes(split_document(state_to_json(old)), changes.cluster, changes.entries)
    assert layout.split_fields == changes.split_fields == split_document(state_to_json(new)).split_fields
    return merge_document(layout)


def test_an_unchanged_state_has_no_changed_node() -> None:
    state = base()
    changes = state_changes(state, state)
    assert changes.entries == {}
    _, diff = apply_changes(split_document(state_to_json(state)), changes.cluster, changes.entries)
    assert diff.empty


def test_one_status_update_changes_one_entry_only() -> None:
    old = base()
    new = old.with_node(3, replace(old.nodes[3], state=TaskState.RUNNING, seen_running=True))
    changes = state_changes(old, new)
    assert list(changes.entries) == ["3"]
    assert changes.entries["3"] is not None and changes.entries["3"]["nodes"]["state"] == "TASK_RUNNING"
    _, diff = apply_changes(split_document(state_to_json(old)), changes.cluster, changes.entries)
    assert diff.changed == {"3"} and not diff.cluster_changed and not diff.appeared and not diff.removed


def test_a_freed_id_is_a_removed_entry_and_a_pinned_one_keeps_its_pin() -> None:
    old = base()
    new = old.with_node(4, None).with_node(2, None)
    changes = state_changes(old, new)
    assert changes.entries["4"] is None
    assert changes.entries["2"] == {"pins": {"agent_id": "agent-2", "until": 5000.0}}
    assert applied(old, new) == state_to_json(new)


def test_an_equal_but_new_record_is_offered_and_dropped_by_the_comparison() -> None:
    old = base()
    new = old.with_node(1, replace(old.nodes[1]))
    assert changed_node_ids(old, new) == {1}
    changes = state_changes(old, new)
    _, diff = apply_changes(split_document(state_to_json(old)), changes.cluster, changes.entries)
    assert diff.empty


_ops = st.lists(
    st.tuples(
        st.sampled_from(["launch", "run", "free", "pin", "unpin", "desired"]),
        st.integers(min_value=1, max_value=8),
    ),
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(first=_ops, second=_ops)
def test_applying_the_changes_gives_the_whole_new_document(
    first: list[tuple[str, int]], second: list[tuple[str, int]]
) -> None:
    def run(state: ClusterState, ops: list[tuple[str, int]]) -> ClusterState:
        for op, node_id in ops:
            if op == "launch":
                state = state.with_node(node_id, record(node_id, launch=node_id + len(state.nodes)))
            elif op == "run" and node_id in state.nodes:
                state = state.with_node(node_id, replace(state.nodes[node_id], state=TaskState.RUNNING))
            elif op == "free":
                state = state.with_node(node_id, None)
            elif op == "pin":
                state = replace(state, pins=MappingProxyType({**state.pins, node_id: Pin(f"a{node_id}", 1.0)}))
            elif op == "unpin":
                state = replace(state, pins=MappingProxyType({k: v for k, v in state.pins.items() if k != node_id}))
            elif op == "desired":
                state = replace(state, desired_nodes=node_id)
        return state

    old = run(base(), first)
    new = run(old, second)
    assert applied(old, new) == state_to_json(new)
    touched = {node_id for _, node_id in second}
    assert changed_node_ids(old, new) <= touched
