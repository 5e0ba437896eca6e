"""The CA as the state keeps it (es_framework/core/cluster_ca.py): a top-level field of the state
document, read back as written, refused when malformed, never shown by repr."""

from __future__ import annotations

from typing import Any

import pytest

from es_framework.core.cluster_ca import StoredCa, ca_from_json, ca_to_json
from es_framework.core.node_state import ClusterState, NodeStateError
from es_framework.core.state_document import state_from_json, state_to_json

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
STORED = StoredCa(PEM, "gAAAAAB-sealed-token", True, 1_800_000_000.0)


def test_the_state_document_keeps_the_ca_at_its_top_level() -> None:
    state = ClusterState(desired_nodes=3, certificate_authority=STORED)
    document = state_to_json(state)
    assert document["certificate_authority"] == {
        "certificate": PEM,
        "key": "gAAAAAB-sealed-token",
        "sealed": True,
        "created_at": 1_800_000_000.0,
    }
    assert state_from_json(document, "elasticsearch").certificate_authority == STORED


def test_a_state_without_a_ca_reads_as_none() -> None:
    document = state_to_json(ClusterState(desired_nodes=3))
    assert document["certificate_authority"] is None
    del document["certificate_authority"]  # a document written before the field existed
    assert state_from_json(document, "elasticsearch").certificate_authority is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"certificate": "not a pem"}, "PEM certificate"),
        ({"key": ""}, "its key"),
        ({"sealed": "yes"}, "sealed"),
        ({"created_at": True}, "created_at"),
    ],
)
def test_a_malformed_ca_entry_is_refused_naming_the_state(change: dict[str, Any], message: str) -> None:
    document = state_to_json(ClusterState(desired_nodes=3, certificate_authority=STORED))
    document["certificate_authority"] = {**document["certificate_authority"], **change}
    with pytest.raises(NodeStateError, match=f"stored state: .*{message}"):
        state_from_json(document, "elasticsearch")
    with pytest.raises(ValueError, match="must be an object"):
        ca_from_json(["a list"])


def test_repr_never_shows_the_key() -> None:
    plain = StoredCa(PEM, "-----BEGIN PRIVATE KEY-----\nsecret\n", False, 1.0)
    assert "secret" not in repr(plain) and "PRIVATE" not in repr(plain)
    assert ca_to_json(None) is None
