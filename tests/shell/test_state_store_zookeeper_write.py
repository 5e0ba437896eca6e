"""Cutting a layout-2 write into multis (es_framework/shell/state_store/zookeeper_write.py) and the rule
of which node changes may go ahead of the cluster part (es_framework/core/state_layout.py), without
ZooKeeper; tests/shell/test_zookeeper_layout.py runs them against a real one."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from es_framework.core.state_layout import RECORD_FIELDS_AHEAD, diff_layouts, keys_ahead, may_go_ahead, split_document
from es_framework.shell.state_store.zookeeper_write import Op, StateTooLargeError, plan_write, size_of

RECORD: dict[str, Any] = {"node_id": 3, "task_id": "es3.a", "agent_id": "S3", "state": "TASK_RUNNING"}
ENTRY: dict[str, Any] = {"nodes": RECORD, "volumes": {"driver": "rexray"}}


def changed(**fields: Any) -> dict[str, Any]:
    return {**ENTRY, "nodes": {**RECORD, **fields}}


@pytest.mark.parametrize(
    "fields", [{"state": "TASK_KILLING"}, {"outdated": True}, {"healthy": False, "version": "8.1"}, {"updated_at": 2.0}]
)
def test_a_held_records_own_news_may_go_ahead(fields: dict[str, Any]) -> None:
    assert set(fields) <= RECORD_FIELDS_AHEAD
    assert may_go_ahead(ENTRY, changed(**fields))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (None, ENTRY),  # an id appears
        (ENTRY, None),  # an id's znode goes
        (ENTRY, {"volumes": ENTRY["volumes"]}),  # the record goes (the id is freed), its volume set stays
        ({"volumes": {"driver": "rexray"}}, ENTRY),  # a record appears for an id with a volume set
        ({"volumes": {"driver": "a"}}, {"volumes": {"driver": "b"}}),  # no record: a free id's volume set
        (ENTRY, changed(task_id="es3.b")),
        (ENTRY, changed(agent_id="S4")),
        (ENTRY, changed(stopping="scale-down")),
        (ENTRY, changed(cluster_uuid="u")),
        (ENTRY, changed(zone_of_a_later_schema="z")),  # a field nobody named may not go ahead
        (ENTRY, {**changed(outdated=True), "volumes": {"driver": "other"}}),
        (ENTRY, {**changed(outdated=True), "pins": {"agent_id": "S3", "until": 1.0}}),
    ],
)
def test_changes_tied_to_the_cluster_part_may_not_go_ahead(old: Any, new: Any) -> None:
    assert not may_go_ahead(old, new)


def test_nothing_goes_ahead_when_the_cut_fields_change() -> None:
    old = split_document({"nodes": [RECORD], "volumes": {"3": ENTRY["volumes"]}})
    new = split_document({"nodes": [{**RECORD, "outdated": True}], "volumes": {"3": ENTRY["volumes"]}})
    assert keys_ahead(old, new, diff_layouts(old, new)) == {"3"}
    bare = split_document({"nodes": [{**RECORD, "outdated": True}], "volumes": []})  # volumes not cut
    assert keys_ahead(old, bare, diff_layouts(old, bare)) == frozenset()


FENCE = [Op("check", "/r/leader/l-1", "fence")]
CLUSTER = Op("set", "/r/cluster", "cluster", b"c" * 100, 7)


def node_op(key: int, size: int) -> Op:
    return Op("set", f"/r/nodes/{key}", "node", b"x" * size, 1, str(key))


def test_a_write_that_fits_is_one_multi_checking_the_nodes_znode() -> None:
    ops = [node_op(k, 10) for k in range(3)]
    plan = plan_write(
        fence=FENCE, cluster=CLUSTER, nodes_path="/r/nodes", nodes_version=4, node_ops=ops, ahead=frozenset(),
        limit=10_000, what="/r",
    )  # fmt: skip
    assert plan.steps == ((*FENCE, Op("check", "/r/nodes", "nodes", version=4), CLUSTER, *ops),)
    assert plan.nodes_version == 4 and plan.ahead == 0


def test_without_a_known_nodes_version_nothing_goes_ahead() -> None:
    ops = [node_op(k, 400) for k in range(10)]
    with pytest.raises(StateTooLargeError, match="10 of them"):
        plan_write(
            fence=FENCE, cluster=CLUSTER, nodes_path="/r/nodes", nodes_version=None, node_ops=ops,
            ahead=frozenset(op.key for op in ops if op.key), limit=2_000, what="/r",
        )  # fmt: skip


@given(
    sizes=st.lists(st.integers(0, 900), max_size=40),
    ahead_mask=st.lists(st.booleans(), min_size=40, max_size=40),
    limit=st.integers(1_000, 6_000),
    nodes_version=st.integers(0, 5),
    fenced=st.booleans(),
)
def test_the_steps_of_a_write(
    sizes: list[int], ahead_mask: list[bool], limit: int, nodes_version: int, fenced: bool
) -> None:
    ops = [node_op(k, size) for k, size in enumerate(sizes)]
    ahead = frozenset(str(k) for k in range(len(sizes)) if ahead_mask[k])
    fence = FENCE if fenced else []
    atomic = [op for op in ops if op.key not in ahead]
    try:
        plan = plan_write(
            fence=fence, cluster=CLUSTER, nodes_path="/r/nodes", nodes_version=nodes_version, node_ops=ops,
            ahead=ahead, limit=limit, what="/r",
        )  # fmt: skip
    except StateTooLargeError:
        # Refused only when the changes that must go with the cluster znode do not fit with it.
        assert size_of([*fence, CLUSTER, *atomic]) + size_of([Op("check", "/r/nodes", "nodes")]) > limit
        return
    *early, last = plan.steps
    # Every node op is sent exactly once, in order within each kind; the cluster znode is set last, once.
    sent = [op for step in plan.steps for op in step if op.role == "node"]
    assert sorted(sent, key=lambda op: int(op.key or 0)) == ops
    assert [op for op in plan.steps[-1] if op.role == "cluster"] == [CLUSTER]
    assert all(op.key in ahead for step in early for op in step if op.role == "node")
    assert all(op in last for op in atomic)
    for number, step in enumerate(early):
        # Each earlier step: fenced, void unless the cluster znode is still at the expected version,
        # and it bumps the ``nodes`` znode from the version the previous step left.
        assert list(step[: len(fence)]) == fence
        assert step[len(fence)] == Op("check", "/r/cluster", "cluster", version=CLUSTER.version)
        assert step[len(fence) + 1] == Op("set", "/r/nodes", "nodes", version=nodes_version + number)
        assert size_of(step) <= limit or len(step) == len(fence) + 3  # an op larger than a step goes alone
    assert list(last[: len(fence)]) == fence
    assert Op("check", "/r/nodes", "nodes", version=nodes_version + len(early)) in last
    assert size_of(last) <= limit
    assert plan.nodes_version == nodes_version + len(early)
    if size_of([*fence, Op("check", "/r/nodes", "nodes"), CLUSTER, *ops]) <= limit:
        assert not early
