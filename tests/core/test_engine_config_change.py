"""The engine's half of ``PUT /v1/cluster/configuration`` (es_framework/core/engine_configuration.py)
over a MemoryStore: the change is persisted (overrides, recorded configuration, rollout) before the
engine runs with it, its rollout restarts every node into the new task definition, a refusal or a
failed write changes nothing, and a new leader started with the original flags applies the stored
overrides (no roll back, no new rollout) while one started with another value of the flag drops the
override. The stored overrides in the state document: round trip, older documents, corrupt ones."""

from __future__ import annotations

from dataclasses import replace

import pytest

from es_framework.core.config_change import Proposal, propose, requested_texts
from es_framework.core.config_overrides import NO_OVERRIDES, ConfigOverrides, Override
from es_framework.core.engine import Engine
from es_framework.core.node_state import NodeStateError
from es_framework.core.operations import OperatorError
from es_framework.core.rollouts import RolloutReason
from es_framework.core.state_document import state_from_json, state_to_json
from tests.core.test_engine import FW
from tests.core.test_engine_config_rollouts import IDS, drive_to_the_end, restarted_with, running, the_rollout
from tests.core.test_engine_rollouts import seen
from tests.core.test_version_upgrade import versions


def proposal_for(engine: Engine, body: dict[str, object], now: float = 100.0) -> Proposal:
    (flags, current, stored), _ = engine.configuration_basis()
    return propose(flags, current, stored, requested_texts(body), now=now)


def change(engine: Engine, body: dict[str, object]) -> object:
    decision, calls = engine.change_configuration(proposal_for(engine, body), engine.config)
    assert calls == []
    return decision


def test_a_change_is_persisted_then_applied_and_rolls_every_node_into_it() -> None:
    engine, store, tasks = running()
    writes = len(store.writes)
    change(engine, {"elasticsearchRam": 4096})
    assert len(store.writes) == writes + 1
    stored = state_from_json(store.document, FW)
    rollout = the_rollout(engine)
    assert stored.rollout == rollout and rollout.reason is RolloutReason.CONFIGURATION
    assert dict(stored.config_overrides.flags) == {"elasticsearchRam": Override("4096", 2048.0, 100.0)}
    assert engine.config.mem_mb == 4096 and engine.flags_config.mem_mb == 2048
    assert all(r.outdated for r in engine.state.nodes.values())
    restarted, infos = drive_to_the_end(engine, tasks)
    assert sorted(restarted) == list(IDS)
    assert {sum(r["scalar"]["value"] for r in i["resources"] if r["name"] == "mem") for i in infos.values()} == {4096}
    assert not any(r.outdated for r in engine.state.nodes.values())


def test_the_rollout_is_the_one_a_restart_with_the_flag_creates() -> None:
    engine, _, _ = running()
    change(engine, {"elasticsearchRam": 4096})
    by_api = the_rollout(engine)
    _, other_store, _ = running()
    by_restart = the_rollout(restarted_with(other_store, elasticsearchRam="4096"))
    assert by_api.target == by_restart.target and by_api.order == by_restart.order
    assert sorted(by_api.steps) == sorted(by_restart.steps)


def test_a_refused_or_unwritten_change_changes_nothing() -> None:
    engine, store, _ = running()
    change(engine, {"elasticsearchRam": 4096})
    before, config, writes = engine.state, engine.config, len(store.writes)
    with pytest.raises(OperatorError) as busy:
        change(engine, {"elasticsearchCpu": 2})
    assert busy.value.status == 409 and "abort it first" in busy.value.message
    assert (engine.state, engine.config, len(store.writes)) == (before, config, writes)
    fresh, fresh_store, _ = running()
    state, config = fresh.state, fresh.config
    fresh_store.fail_next = RuntimeError("ZooKeeper is away")
    with pytest.raises(OperatorError) as unwritten:
        change(fresh, {"elasticsearchRam": 4096})
    assert unwritten.value.status == 503
    assert fresh.config is config and fresh.state.config_overrides == state.config_overrides
    assert fresh.state.rollout is None


def test_a_stale_basis_is_refused() -> None:
    engine, _, _ = running()
    proposal = proposal_for(engine, {"elasticsearchRam": 4096})
    change(engine, {"elasticsearchCpu": 2})
    with pytest.raises(OperatorError) as stale:
        engine.change_configuration(proposal, engine.flags_config)
    assert stale.value.status == 409 and "send it again" in stale.value.message


def test_a_new_leader_with_the_original_flags_does_not_roll_back(caplog: pytest.LogCaptureFixture) -> None:
    engine, store, tasks = running()
    change(engine, {"elasticsearchRam": 4096})
    drive_to_the_end(engine, tasks)
    (done,) = engine.state.rollout_history
    caplog.set_level("INFO")
    caplog.clear()
    again = restarted_with(store)  # the flags it was started with: --elasticsearchRam 2048 (default)
    assert again.config.mem_mb == 4096 and again.state.rollout is None
    assert again.state.rollout_history == (done,)
    assert "configuration changed" not in caplog.text
    assert "running with '4096', set through the API" in caplog.text


def test_a_new_leader_started_with_another_value_of_the_flag_drops_the_override(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine, store, tasks = running()
    change(engine, {"elasticsearchRam": 4096, "elasticsearchCpu": 2})
    drive_to_the_end(engine, tasks)
    caplog.set_level("WARNING")
    again = restarted_with(store, elasticsearchRam="3072")
    assert (again.config.mem_mb, again.config.cpus) == (3072, 2.0)
    assert set(again.state.config_overrides.flags) == {"elasticsearchCpu"}
    assert set(state_from_json(store.document, FW).config_overrides.flags) == {"elasticsearchCpu"}
    assert the_rollout(again).reason is RolloutReason.CONFIGURATION  # to the operator's new flag
    (line,) = [r for r in caplog.records if "given at start differs" in r.getMessage()]
    assert line.levelname == "WARNING" and "--elasticsearchRam '3072.0'" in line.getMessage()


def test_a_reread_state_brings_another_leaders_change() -> None:
    engine, store, _ = running()
    standby = restarted_with(store)
    change(engine, {"elasticsearchCpu": 2})
    assert standby.config.cpus == 1.0
    standby.reload()
    assert standby.config.cpus == 2.0 and standby.flags_config.cpus == 1.0


def test_the_overrides_round_trip_through_the_state_document() -> None:
    engine, _, _ = running()
    change(engine, {"elasticsearchRam": 4096})
    state = engine.state
    snapshot = ConfigOverrides(
        state.config_overrides.flags, {"indices.memory.index_buffer_size": "20%", "node.attr.x": ["a", "b"]}
    )
    for overrides in (state.config_overrides, snapshot, NO_OVERRIDES):
        document = state_to_json(replace(state, config_overrides=overrides))
        assert state_from_json(document, FW).config_overrides == overrides


def test_a_document_without_overrides_loads_and_corrupt_ones_are_refused() -> None:
    engine, _, _ = running()
    document = state_to_json(engine.state)
    del document["config_overrides"]  # written before runtime changes existed (schema 3 still)
    assert state_from_json(document, FW).config_overrides == NO_OVERRIDES
    bad: object
    for bad in (
        [],
        {"flags": ["elasticsearchRam"]},
        {"flags": {"elasticsearchRam": {"value": 4096, "at": 1.0}}},
        {"flags": {"elasticsearchRam": {"value": "4096", "at": True}}},
        {"flags": {}, "user_settings": {"a": 1}},
    ):
        with pytest.raises(NodeStateError, match="config_overrides"):
            state_from_json({**document, "config_overrides": bad}, FW)


def test_a_failover_mid_rollout_with_the_original_flags_resumes_it() -> None:
    engine, store, _ = running()
    change(engine, {"elasticsearchRam": 4096})
    round_, _ = engine.plan_disruptions(seen(*IDS))
    assert round_.decision.start is not None
    kept = the_rollout(engine)
    again = restarted_with(store)  # the original flags
    assert again.state.rollout == kept and again.state.rollout_history == ()
    assert again.config.mem_mb == 4096


def test_a_version_change_through_the_api_is_an_upgrade_rollout_and_a_downgrade_is_refused() -> None:
    engine, store, _ = running()
    engine.state = versions(engine.state, n1="7.17.24", n2="7.17.24", n3="7.17.24")
    change(engine, {"elasticsearchVersion": "8.15.1"})
    upgrade = the_rollout(engine).upgrade
    assert upgrade is not None and (str(upgrade[0]), str(upgrade[1])) == ("7.17.24", "8.15.1"), upgrade

    engine, store, _ = running()
    engine.state = versions(engine.state, n1="8.15.1", n2="8.15.1", n3="8.15.1")
    writes = len(store.writes)
    with pytest.raises(OperatorError) as refused:
        change(engine, {"elasticsearchVersion": "7.17.24"})
    assert refused.value.status == 409 and "7.17.24" in str(refused.value), refused.value
    assert len(store.writes) == writes and engine.state.rollout is None
