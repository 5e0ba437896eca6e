"""An executor rollout for release 0.1.0's nodes (es_framework/core/config_record.py,
engine_rollouts.configuration_rollout): its state document records the configuration but no
executor (its executors speak contract 1), so a scheduler of this release started over it restarts
them one at a time, as for a configuration change, and records the executor so that the next leader
resumes the same rollout instead of starting another."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from es_framework.core.config_record import UNRECORDED, config_record, executor_record
from es_framework.core.rollouts import RolloutReason
from es_framework.core.state_document import state_from_json
from tests.core.test_engine import FW, MemoryStore, make

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "v0.1.0"


def v010_state(**flags: str) -> tuple[dict[str, Any], dict[str, str]]:
    """0.1.0's formed-cluster document with its configuration as these flags make it (so that only
    the executor differs), and the flags."""
    flags = {"elasticsearchNodes": "3", **flags}
    document = json.loads((FIXTURES / "state-formed.json").read_text(encoding="utf-8"))
    engine, _, _ = make(None, **flags)
    recorded = config_record(engine.config)
    assert "executor" not in document["config"]  # what 0.1.0 wrote
    document["config"] = {"fingerprint": recorded["fingerprint"], "values": recorded["values"]}
    return document, flags


def test_a_v010_cluster_is_rolled_onto_this_releases_executor_and_a_failover_resumes_it() -> None:
    document, flags = v010_state()
    store = MemoryStore(document)
    engine, _, _ = make(store, **flags)
    engine.on_registered(document["framework_id"])
    rollout = engine.state.rollout
    assert rollout is not None and rollout.reason is RolloutReason.EXECUTOR
    # Node 2 is already being restarted by 0.1.0 (its next task is this release's); 3 never ran yet.
    assert sorted(rollout.order) == [1, 3]
    stored = state_from_json(store.document, FW)
    assert stored.rollout == rollout and stored.config is not None and stored.config["executor"] == executor_record()
    assert stored.config_changes[-1]["changed"] == {"executor": [UNRECORDED, executor_record()]}
    assert all(stored.nodes[i].outdated for i in (1, 2, 3))
    # A failover: the next leader of the same release resumes it, it does not start another.
    again, _, _ = make(store, **flags)
    again.on_registered(document["framework_id"])
    assert again.state.rollout == rollout


def test_a_v010_cluster_whose_flags_changed_too_is_rolled_once_as_a_configuration_change() -> None:
    document, _ = v010_state()
    store = MemoryStore(document)
    engine, _, _ = make(store, elasticsearchNodes="3", elasticsearchRam="3072")
    engine.on_registered(document["framework_id"])
    rollout = engine.state.rollout
    assert rollout is not None and rollout.reason is RolloutReason.CONFIGURATION and sorted(rollout.order) == [1, 3]
    assert engine.state.config is not None and engine.state.config["executor"] == executor_record()
