"""The security mode in the framework state: a field of the small cluster part (never per node), read
back as written, absent in earlier releases' documents (read as not recorded), refused when malformed;
recorded once at leadership through the engine's fenced write (es_framework/core/engine_security.py),
before anything registers or launches, and kept by every later leader."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from es_framework.core.engine_security import settle_security_mode
from es_framework.core.node_state import ClusterState, NodeStateError
from es_framework.core.state_document import cluster_to_json, state_from_json, state_to_json
from es_framework.core.state_layout import split_document
from tests.config.support import no_db
from tests.core.test_engine import MemoryStore, make

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FW = "elasticsearch"
ZK = "zk://zk1:2181/mesos"


@no_db
@given(mode=st.sampled_from((None, "auto", "off")))
def test_the_mode_round_trips_in_the_cluster_part(mode: str | None) -> None:
    state = ClusterState(desired_nodes=3, security_mode=mode)
    document = state_to_json(state)
    assert cluster_to_json(state)["security_mode"] == mode
    assert split_document(document).cluster["security_mode"] == mode  # the small cluster part, not per node
    assert state_from_json(json.loads(json.dumps(document)), FW) == state


@pytest.mark.parametrize(
    "fixture", ["v0.1.0/state-formed.json", "v0.1.0/state-bootstrapping.json", "schema3/state.json"]
)
def test_earlier_documents_load_without_a_mode_and_write_it_back_once_recorded(fixture: str) -> None:
    document = json.loads((FIXTURES / fixture).read_text())
    assert "security_mode" not in document
    state = state_from_json(document, FW)
    assert state.security_mode is None
    written = state_to_json(replace(state, security_mode="off"))
    assert state_from_json(written, FW) == replace(state, security_mode="off")


@pytest.mark.parametrize("bad", ["on", "", 1, True, ["auto"], {"mode": "auto"}])
def test_a_malformed_mode_is_refused_naming_the_field(bad: Any) -> None:
    document = state_to_json(ClusterState(desired_nodes=3))
    document["security_mode"] = bad
    with pytest.raises(NodeStateError, match="security_mode must be 'auto', 'off' or null"):
        state_from_json(document, FW)


def test_a_new_cluster_records_auto_once_and_the_engine_runs_with_it() -> None:
    engine, store, _ = make(mesosMaster=ZK)
    assert engine.config.elasticsearch_security is None  # the flag not given
    decision = settle_security_mode(engine)
    assert decision.mode == "auto" and store.writes[-1]["security_mode"] == "auto" and len(store.writes) == 1
    assert engine.config.creates_ca and engine.flags_config.creates_ca
    engine.reload()  # leading again: the overrides are applied to the flags again, the mode stays
    assert engine.config.creates_ca
    # A later leader keeps it, whatever its flag says, and writes nothing.
    later, later_store, _ = make(MemoryStore(store.document), mesosMaster=ZK, elasticsearchSecurity="off")
    kept = settle_security_mode(later)
    assert kept.mode == "auto" and later.config.creates_ca and later_store.writes == []
    assert "--elasticsearchSecurity off is ignored" in kept.warnings[0]


def test_a_recorded_off_stays_off_for_an_explicit_auto() -> None:
    engine, store, _ = make(mesosMaster=ZK, elasticsearchSecurity="off")
    assert settle_security_mode(engine).mode == "off"
    assert store.document is not None and store.document["security_mode"] == "off"
    later, later_store, _ = make(MemoryStore(store.document), mesosMaster=ZK, elasticsearchSecurity="auto")
    decision = settle_security_mode(later)
    assert decision.mode == "off" and not later.config.creates_ca and later_store.writes == []
    assert any("full cluster restart" in w for w in decision.warnings)
    assert later.config.security_warning is not None


def test_an_earlier_release_cluster_is_recorded_by_what_its_state_holds() -> None:
    document = json.loads((FIXTURES / "v0.1.0" / "state-bootstrapping.json").read_text())
    engine, store, _ = make(MemoryStore(document), mesosMaster=ZK)
    assert settle_security_mode(engine).mode == "off"
    assert store.document is not None and store.document["security_mode"] == "off"
    assert not engine.config.creates_ca


def test_a_failed_write_keeps_the_mode_for_the_next_write_which_precedes_any_launch() -> None:
    engine, store, _ = make(mesosMaster=ZK)
    store.fail_next = OSError("ZooKeeper connection lost")
    decision = settle_security_mode(engine)
    assert decision.mode == "auto" and store.writes == []
    assert engine.state.security_mode == "auto"  # carried by the next state write
    engine.on_registered("fw-1")
    assert store.writes[-1]["security_mode"] == "auto" and store.writes[-1]["framework_id"] == "fw-1"


def test_local_mode_records_nothing() -> None:
    engine, store, _ = make(mesosMaster="local")
    assert settle_security_mode(engine).mode == "off" and store.writes == []
