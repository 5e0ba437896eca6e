"""Volume task ids and telling node tasks, volume tasks and foreign tasks apart (identity/task_ids.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from identity.task_ids import (
    ParsedTaskId,
    TaskIdError,
    TaskKind,
    new_launch_id,
    node_id_from_task_id,
    parse_task_id,
    task_id_for,
    try_node_id_from_task_id,
    volume_task_id_for,
)

framework_names = st.from_regex(r"\A[a-z](?:[a-z0-9-]{0,20}[a-z])?\Z")
# Framework names built to look like our own task ids from the inside.
tricky_names = st.sampled_from(
    ["es", "es-node", "es-volumes", "es-node-x", "es-volumes3x", "node", "volumes", "es-node-volumes", "x-volumes-a"]
)
node_ids = st.integers(min_value=1, max_value=10**9)
launches = st.from_regex(r"\A[0-9a-f]{32}\Z")
LAUNCH = "0123456789abcdef" * 2


def test_volume_task_id_as_in_the_design() -> None:
    assert volume_task_id_for("elasticsearch", 4, LAUNCH) == f"elasticsearch-volumes4-{LAUNCH}"
    assert parse_task_id(f"elasticsearch-volumes4-{LAUNCH}", "elasticsearch") == ParsedTaskId(TaskKind.VOLUMES, 4)
    assert parse_task_id(f"elasticsearch-node4-{LAUNCH}", "elasticsearch") == ParsedTaskId(TaskKind.NODE, 4)


@given(name=framework_names | tricky_names, node_id=node_ids, launch=launches)
def test_round_trips_and_kinds_never_mix(name: str, node_id: int, launch: str) -> None:
    node_task = task_id_for(name, node_id, launch)
    volume_task = volume_task_id_for(name, node_id, launch)
    assert parse_task_id(node_task, name) == ParsedTaskId(TaskKind.NODE, node_id)
    assert parse_task_id(volume_task, name) == ParsedTaskId(TaskKind.VOLUMES, node_id)
    # The node-identity functions never take a volume task for a node's task.
    assert try_node_id_from_task_id(volume_task, name) is None
    with pytest.raises(TaskIdError):
        node_id_from_task_id(volume_task, name)


@given(ours=framework_names | tricky_names, other=framework_names | tricky_names, node_id=node_ids, launch=launches)
def test_another_frameworks_tasks_are_foreign(ours: str, other: str, node_id: int, launch: str) -> None:
    if ours == other:
        return
    for task_id in (task_id_for(other, node_id, launch), volume_task_id_for(other, node_id, launch)):
        parsed = parse_task_id(task_id, ours)
        assert parsed.kind is TaskKind.FOREIGN and parsed.node_id is None
        assert parsed.reason is not None and repr(other) in parsed.reason


@given(text=st.text(max_size=80))
def test_random_text_is_foreign_unless_it_has_our_exact_shape(text: str) -> None:
    parsed = parse_task_id(text, "elasticsearch")
    if parsed.kind is TaskKind.FOREIGN:
        assert parsed.node_id is None and parsed.reason
    else:
        rebuilt = (task_id_for if parsed.kind is TaskKind.NODE else volume_task_id_for)(
            "elasticsearch", parsed.node_id or 0, text[-32:]
        )
        assert rebuilt == text


@pytest.mark.parametrize(
    "task_id",
    [
        "",
        "elasticsearch",
        "elasticsearch-volumes0-" + "a" * 32,
        "elasticsearch-volumes01-" + "a" * 32,
        "elasticsearch-volumes-1-" + "a" * 32,
        "elasticsearch-volume2-" + "a" * 32,
        "elasticsearch-volumes2-" + "A" * 32,
        "elasticsearch-volumes2-" + "a" * 31,
        "elasticsearch-volumes2-" + "a" * 33,
        "elasticsearch-volumes2",
        "elasticsearch-volumes2-" + "a" * 32 + "\n",
        "elasticsearch-volumes2-node3-" + "a" * 32,
        "elasticsearch.volumes2." + "a" * 32,
        "other-volumes2-" + "a" * 32,
        "Elasticsearch-volumes2-" + "a" * 32,
    ],
)
def test_malformed_or_foreign_volume_task_ids(task_id: str) -> None:
    assert parse_task_id(task_id, "elasticsearch").kind is TaskKind.FOREIGN


def test_a_framework_named_like_a_kind_keeps_its_tasks_apart() -> None:
    # Framework "es-node" with a volume task, framework "es" with a node task: no id is both.
    volume_task = volume_task_id_for("es-node", 3, LAUNCH)
    assert parse_task_id(volume_task, "es-node") == ParsedTaskId(TaskKind.VOLUMES, 3)
    assert parse_task_id(volume_task, "es").kind is TaskKind.FOREIGN
    node_task = task_id_for("es-volumes", 3, LAUNCH)
    assert parse_task_id(node_task, "es-volumes") == ParsedTaskId(TaskKind.NODE, 3)
    assert parse_task_id(node_task, "es").kind is TaskKind.FOREIGN


@pytest.mark.parametrize("bad", [0, -1, True, "1"])
def test_volume_task_id_for_refuses_bad_node_ids(bad: object) -> None:
    with pytest.raises(ValueError, match="node id"):
        volume_task_id_for("elasticsearch", bad, LAUNCH)  # type: ignore[arg-type]


def test_volume_task_id_for_refuses_bad_framework_and_launch() -> None:
    with pytest.raises(ValueError, match="framework name"):
        volume_task_id_for("es1", 1, LAUNCH)
    with pytest.raises(ValueError, match="launch id"):
        volume_task_id_for("elasticsearch", 1, "xyz")


def test_volume_task_ids_are_unique_per_launch() -> None:
    ids = {volume_task_id_for("elasticsearch", 2, new_launch_id()) for _ in range(500)}
    assert len(ids) == 500
