"""The state document cut per node id and put back together (es_framework/core/state_layout.py):
round trips over any document, the difference between two documents, and the id fingerprint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from es_framework.core.state_layout import (
    PER_NODE_FIELDS,
    Layout,
    check_layout,
    diff_documents,
    diff_layouts,
    ids_digest,
    merge_document,
    split_document,
    update_digest,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

json_leaf = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=8)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
node_ids = st.integers(0, 60)


@st.composite
def node_list(draw: st.DrawFn) -> list[dict[str, Any]]:
    ids = sorted(draw(st.sets(node_ids, max_size=6)))
    return [{**draw(st.dictionaries(st.text(max_size=4), json_value, max_size=3)), "node_id": i} for i in ids]


def id_map() -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(node_ids.map(str), json_value, max_size=6)


# A field that cannot be cut exactly (wrong type, unsorted list, a key "03", an id that is a bool):
# it must stay whole in the cluster part, and the round trip must still be exact.
odd_value = (
    json_value
    | st.just([{"node_id": 2}, {"node_id": 1}])
    | st.just([{"node_id": True}])
    | st.just([{"node_id": 1}, {"node_id": 1}])
    | st.just({"03": 1, "3": 2})
    | st.just({"-1": 0})
)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    document = draw(st.dictionaries(st.text(max_size=6), json_value, max_size=4))
    for field in PER_NODE_FIELDS:
        kind = draw(st.sampled_from(["absent", "good", "odd"]))
        if kind == "good":
            good: st.SearchStrategy[Any] = node_list() if field.shape.value == "list" else id_map()
            document[field.name] = draw(good)
        elif kind == "odd":
            document[field.name] = draw(odd_value)
        else:
            document.pop(field.name, None)
    return document


@given(documents())
@settings(max_examples=150)
def test_merge_of_split_is_the_document(document: dict[str, Any]) -> None:
    layout = split_document(document)
    check_layout(layout)
    assert merge_document(layout) == document
    # What a store keeps is JSON: the round trip holds through it too.
    stored = json.loads(json.dumps({"cluster": layout.cluster, "entries": layout.entries}))
    again = Layout(stored["cluster"], layout.split_fields, stored["entries"])
    assert merge_document(again) == document


@given(documents())
def test_no_entry_is_empty_and_nothing_cut_stays_in_the_cluster_part(document: dict[str, Any]) -> None:
    layout = split_document(document)
    assert all(layout.entries.values())
    assert not set(layout.split_fields) & set(layout.cluster)
    assert set(layout.cluster) | set(layout.split_fields) == set(document)


@given(documents(), documents())
@settings(max_examples=150)
def test_the_difference_is_exactly_what_changed(old: dict[str, Any], new: dict[str, Any]) -> None:
    before, after = split_document(old), split_document(new)
    diff = diff_layouts(before, after)
    # Writing only the difference over the old pieces gives the new document.
    entries = {k: v for k, v in before.entries.items() if k not in diff.removed}
    entries.update({k: after.entries[k] for k in diff.appeared | diff.changed})
    cluster = after if diff.cluster_changed else before
    assert merge_document(Layout(cluster.cluster, cluster.split_fields, entries)) == new
    assert diff.appeared == set(after.entries) - set(before.entries)
    assert diff.removed == set(before.entries) - set(after.entries)
    assert all(before.entries[k] != after.entries[k] for k in diff.changed)
    assert diff.empty == (old == new)


@given(documents())
def test_a_document_does_not_differ_from_itself(document: dict[str, Any]) -> None:
    assert diff_documents(document, json.loads(json.dumps(document))).empty


def test_a_status_update_changes_one_entry_of_a_real_document() -> None:
    document = json.loads((FIXTURES / "v0.1.0" / "state-formed.json").read_text())
    layout = split_document(document)
    assert layout.split_fields == ("nodes", "pins")  # 0.1.0 wrote no volumes
    assert sorted(layout.entries) == ["1", "2", "3"]
    assert set(layout.entries["3"]) == {"nodes", "pins"}
    assert "nodes" not in layout.cluster and layout.cluster["framework_id"] == "fw-0.1.0"
    updated = json.loads(json.dumps(document))
    updated["nodes"][1]["state"] = "TASK_KILLED"
    diff = diff_documents(document, updated)
    assert not diff.cluster_changed and not diff.appeared and not diff.removed and diff.changed == {"2"}
    updated["desired_nodes"] = 4
    del updated["pins"]["3"]
    diff = diff_documents(document, updated)
    assert diff.cluster_changed and diff.changed == {"2", "3"}


def test_a_node_in_volumes_only_keeps_its_volumes_when_its_record_goes() -> None:
    document = {"nodes": [{"node_id": 1}, {"node_id": 2}], "volumes": {"2": {"driver": "x"}}, "pins": {}}
    after = {"nodes": [{"node_id": 1}], "volumes": {"2": {"driver": "x"}}, "pins": {}}
    diff = diff_documents(document, after)
    assert diff.changed == {"2"} and not diff.removed and not diff.cluster_changed
    assert merge_document(split_document(after)) == after


@pytest.mark.parametrize(
    "layout",
    [
        Layout({}, ("nodes",), {"01": {"nodes": {"node_id": 1}}}),
        Layout({}, ("nodes",), {"1": {"nodes": {"node_id": 2}}}),
        Layout({}, ("nodes",), {"1": {"nodes": {"node_id": True}}}),
        Layout({}, ("nodes",), {"1": {"pins": {}}}),
        Layout({}, ("nodes",), {"1": {}}),
        Layout({"nodes": []}, ("nodes",), {}),
        Layout({}, ("weather",), {}),
    ],
)
def test_a_layout_no_split_could_give_is_refused(layout: Layout) -> None:
    with pytest.raises(ValueError):
        check_layout(layout)


@given(st.sets(node_ids.map(str)), st.sets(node_ids.map(str)))
def test_the_id_digest_follows_additions_and_removals(before: set[str], after: set[str]) -> None:
    digest = update_digest(ids_digest(before), after - before, before - after)
    assert digest == ids_digest(after)
    assert ids_digest(sorted(after)) == ids_digest(reversed(sorted(after)))
    if before != after:
        assert ids_digest(before) != ids_digest(after)
