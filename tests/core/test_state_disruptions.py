"""The disruption ledger in the stored state: round trip, an earlier document reads as empty, a bad
entry is refused, and each entry is stored with its node id (a per-node field)."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

import pytest

from es_framework.core.disruption import Disruption, Kind, ShutdownType
from es_framework.core.node_state import NodeStateError
from es_framework.core.state_document import SCHEMA_VERSION, state_from_json, state_to_json
from es_framework.core.state_layout import merge_document, split_document
from tests.core.test_node_state import FW, running


def with_ledger() -> tuple[dict[str, object], Disruption]:
    state = replace(running(1, 2, 3, 4), desired_nodes=3)
    entry = Disruption(4, Kind.SCALE_DOWN, ShutdownType.REMOVE, 10.0, 11.0, state.nodes[4].task_id, "")
    return state_to_json(replace(state, disruptions=MappingProxyType({4: entry}))), entry


def test_the_ledger_round_trips_in_schema_3() -> None:
    document, entry = with_ledger()
    assert document["schema"] == SCHEMA_VERSION == 3
    assert state_from_json(document, FW).disruptions == {4: entry}


def test_a_document_without_a_ledger_reads_as_empty() -> None:
    document, _ = with_ledger()
    del document["disruptions"]
    assert state_from_json(document, FW).disruptions == {}
    document["disruptions"] = None
    assert state_from_json(document, FW).disruptions == {}


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ([], "disruptions must be an object"),
        ({"04": {}}, "not a node id"),
        ({"4": {"schema": 1, "kind": "nap", "shutdown": "remove", "requested_at": 1}}, "disruption '4'"),
        (
            {"4": {"schema": 1, "kind": "scale-down", "shutdown": "remove", "requested_at": 1, "task_id": "x.1"}},
            "names task",
        ),
    ],
)
def test_a_bad_ledger_is_refused(value: object, match: str) -> None:
    document, _ = with_ledger()
    document["disruptions"] = value
    with pytest.raises(NodeStateError, match=match):
        state_from_json(document, FW)


def test_each_entry_is_stored_with_its_node() -> None:
    document, _ = with_ledger()
    layout = split_document(document)
    assert "disruptions" in layout.split_fields and "disruptions" not in layout.cluster
    assert set(layout.entries["4"]) == {"nodes", "disruptions"}
    assert merge_document(layout) == document
