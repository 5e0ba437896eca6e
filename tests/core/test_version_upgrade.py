"""Version upgrades through rollouts (issue 12): the scheduler refuses to start with a target the
running nodes cannot take; a configuration rollout into a newer version is marked as an upgrade
(persisted); during it, and only then, a yellow cluster lets rollout steps start and finish, with
every primary assigned and nothing initialising or relocating (unknown: no)."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

import pytest

from es_framework.app.startup import RefusedError, check_state_startable
from es_framework.config.versions import EsVersion, TargetVersion
from es_framework.contract import CONTRACT_VERSION
from es_framework.core import config_record as config_record_module
from es_framework.core.config_record import (
    UNRECORDED,
    config_record,
    config_values,
    executor_record,
    record_configuration,
)
from es_framework.core.disruption import Kind, Settings, plan_disruption, request, step_settled, yellow_refusal
from es_framework.core.disruption_seen import Seen, observe
from es_framework.core.engine_rollouts import configuration_rollout
from es_framework.core.node_state import ClusterState
from es_framework.core.rollout_json import RolloutStateError, header_to_json, rollout_from_json, steps_to_json
from es_framework.core.rollouts import RolloutReason, advance, plan_rollout, start_step
from es_framework.core.version_change import distribution_changed, start_refusal, upgrade_of
from tests.core.test_engine_config_rollouts import restarted_with
from tests.core.test_engine_config_rollouts import running as running_engine
from tests.core.test_node_state import FW, running
from tests.harness.builders import config

S = Settings(max_unavailable=1, framework_name=FW, master_nodes=3, external_volumes=True)
IDS = (1, 2, 3, 4, 5)
UPGRADE = ("7.17.24", "8.15.1")


def versions(state: ClusterState, **by_node: str | None) -> ClusterState:
    """``state`` whose node ``n<i>`` reports version ``v`` (given as ``n1="7.17.24"``)."""
    nodes = dict(state.nodes)
    for key, version in by_node.items():
        node_id = int(key[1:])
        nodes[node_id] = replace(nodes[node_id], version=version)
    return replace(state, nodes=MappingProxyType(nodes))


def on(*version: str | None, uuid: str | None = "uuid-1") -> ClusterState:
    """Nodes 1.. running ``version[i-1]``, in a formed cluster."""
    state = running(*range(1, len(version) + 1))
    state = versions(state, **{f"n{i}": v for i, v in enumerate(version, 1)})
    return replace(state, cluster_uuid=uuid)


def seen(status: str = "green", *, primaries: int | None = 0, **counts: int) -> Seen:
    return Seen(
        status=status,
        joined=frozenset(f"{FW}{i}" for i in IDS),
        elected_master=f"{FW}1",
        unassigned_shards=counts.get("unassigned", 0),
        relocating_shards=counts.get("relocating", 0),
        initializing_shards=counts.get("initializing", 0),
        unassigned_primaries=primaries,
    )


def target(text: str | None, source: str = "--elasticsearchVersion") -> TargetVersion:
    if text is None:
        return TargetVersion(None, source)
    major, minor, patch = (int(p) for p in text.split("."))
    return TargetVersion(EsVersion(major, minor, patch), source)


# --- starting: the target against the running versions -----------------------------------------


def test_a_downgrade_refuses_to_start_naming_the_flag_and_the_versions() -> None:
    state = on("8.15.1", "8.15.1", "7.17.24")
    refusal = start_refusal(state, target("7.17.24"), distribution_changed=False)
    assert refusal is not None
    assert "7.17.24 from --elasticsearchVersion" in refusal and "node 1 runs Elasticsearch 8.15.1" in refusal
    assert "Nothing was changed" in refusal
    with pytest.raises(RefusedError, match="downgrade"):
        check_state_startable(config(elasticsearchVersion="7.17.24"), state)


def test_the_image_tag_is_the_target_when_the_flag_is_absent() -> None:
    state = on("7.16.3")
    cfg = config(elasticsearchDockerImage="example/elasticsearch:8.15.1")
    with pytest.raises(RefusedError, match=r"8\.15\.1 from the tag of --elasticsearchDockerImage.*7\.17 first"):
        check_state_startable(cfg, state)
    check_state_startable(config(elasticsearchDockerImage="example/elasticsearch:8.15.1"), on("7.17.24"))


def test_an_unknown_target_starts_unless_the_image_changed_under_running_nodes() -> None:
    custom = config(elasticsearchDockerImage="example/elasticsearch:custom")  # a tag that names no version
    assert custom.target_version.version is None
    check_state_startable(custom, ClusterState(desired_nodes=3))  # nothing ran yet
    running_custom = record_configuration(on(None, "8.15.1"), custom, now=1.0)
    check_state_startable(custom, running_custom)  # the same image: the nodes keep their version
    other = config(elasticsearchDockerImage="example/elasticsearch:other")
    assert distribution_changed(running_custom, config_values(other))
    with pytest.raises(RefusedError, match=r"unknown.*node 2 runs Elasticsearch 8\.15\.1.*--elasticsearchVersion"):
        check_state_startable(other, running_custom)
    # Another image on a cluster that never ran (launched, nothing reported): the first node confirms it.
    check_state_startable(other, record_configuration(on(None, None, uuid=None), custom, now=1.0))


def test_upgrades_and_resumed_upgrades_start() -> None:
    check_state_startable(config(elasticsearchVersion="8.15.1"), on("7.17.24", "7.17.24"))
    check_state_startable(config(elasticsearchVersion="8.15.1"), on("8.15.1", "7.17.24"))  # resumed
    check_state_startable(config(elasticsearchVersion="7.17.24"), on("7.17.24"))  # unchanged


def test_the_declared_version_is_part_of_the_configuration_only_when_given() -> None:
    assert "elasticsearchVersion" not in config_values(config())  # older records keep their fingerprint
    assert config_values(config(elasticsearchVersion="8.15.1"))["elasticsearchVersion"] == "8.15.1"
    assert (
        config_record(config(elasticsearchVersion="8.15.1"))["fingerprint"]
        != config_record(config(elasticsearchVersion="8.15.2"))["fingerprint"]
    )


# --- the rollout: an upgrade, recorded and persisted ---------------------------------------------


def test_a_configuration_rollout_into_a_newer_version_is_an_upgrade() -> None:
    before = record_configuration(on("7.17.24", "7.17.24", "7.17.24"), config(), now=1.0)
    after = record_configuration(before, config(elasticsearchVersion="8.15.1"), now=2.0)
    state, lines = configuration_rollout(
        before, after, now=2.0, elected_master=1, master_nodes=3, target_version=target("8.15.1")
    )
    assert state.rollout is not None and state.rollout.upgrade == UPGRADE
    assert any("upgrades Elasticsearch 7.17.24 → 8.15.1 (yellow allowed)" in line for line in lines), lines
    # Without a target version (or one the nodes already run) it is no upgrade.
    plain, _ = configuration_rollout(before, after, now=2.0, elected_master=1, master_nodes=3)
    assert plain.rollout is not None and plain.rollout.upgrade is None
    assert upgrade_of(on("8.15.1", "8.15.1"), target("8.15.1")) is None
    assert upgrade_of(on("8.15.1", "7.17.24", None), target("8.15.1")) == UPGRADE
    assert upgrade_of(on("7.17.0", "7.17.24"), target("8.15.1")) == ("7.17.0, 7.17.24", "8.15.1")
    assert upgrade_of(on("7.17.24"), target(None)) is None


def test_the_upgrade_is_persisted_and_older_documents_still_load() -> None:
    rollout = replace(
        plan_rollout(on("7.17.24", "7.17.24"), RolloutReason.CONFIGURATION, 1.0, 1, master_nodes=3, target="f"),
        upgrade=UPGRADE,
    )
    header = header_to_json(rollout)
    assert header["upgrade"] == {"from": "7.17.24", "to": "8.15.1"}
    assert rollout_from_json(header, steps_to_json(rollout)) == rollout
    older = {k: v for k, v in header.items() if k != "upgrade"}  # written before upgrades were told apart
    assert rollout_from_json(older, steps_to_json(rollout)) == replace(rollout, upgrade=None)
    assert "upgrade" not in header_to_json(replace(rollout, upgrade=None))
    for bad in ({"from": "7.17.24"}, {"from": 7, "to": "8.15.1"}, "7.17.24 -> 8.15.1"):
        with pytest.raises(RolloutStateError, match="upgrade"):
            rollout_from_json({**header, "upgrade": bad}, steps_to_json(rollout))


# --- the planner: yellow during an upgrade only, with every primary assigned ---------------------


def with_rollout(upgrade: tuple[str, str] | None, nodes: tuple[int, ...] = (4,)) -> ClusterState:
    state = replace(running(*IDS), desired_nodes=5)
    rollout = plan_rollout(state, RolloutReason.CONFIGURATION, 1.0, 1, master_nodes=3, target="f", nodes=nodes)
    return replace(state, rollout=replace(rollout, upgrade=upgrade))


def plan(state: ClusterState, observed: Seen) -> tuple[str | None, str]:
    """(the predicate blocking the rollout step, its message), or (None, "") when it starts."""
    d = plan_disruption(state, ledger={}, rollout=state.rollout, seen=observed, now=10.0, settings=S)
    if d.start is not None:
        return None, ""
    return d.blocked[0].predicate, d.blocked[0].message


def test_yellow_lets_an_upgrade_step_start_with_every_primary_assigned_and_nothing_moving() -> None:
    state = with_rollout(UPGRADE)
    assert plan(state, seen("yellow", unassigned=3)) == (None, "")
    assert plan(state, seen("green")) == (None, "")
    predicate, message = plan(state, seen("yellow", unassigned=3, primaries=1))
    assert predicate == "cluster_green"
    assert message == (
        "cluster is yellow: yellow is allowed during the version upgrade 7.17.24 → 8.15.1 only with every primary "
        "assigned and nothing initialising or relocating (1 primary shard(s) unassigned)"
    )
    predicate, message = plan(state, seen("yellow", unassigned=3, primaries=None))
    assert predicate == "cluster_green" and "whether every primary is assigned is unknown" in message
    predicate, message = plan(state, seen("yellow", unassigned=3, initializing=2))
    assert predicate == "cluster_green" and "(2 initializing and 0 relocating shard(s))" in message
    predicate, message = plan(state, seen("red", unassigned=3, primaries=1))
    assert (predicate, message) == ("cluster_green", "cluster is red")


def test_yellow_blocks_a_rollout_that_is_no_upgrade_and_every_other_intent() -> None:
    predicate, message = plan(with_rollout(None), seen("yellow", unassigned=3))
    assert (predicate, message) == (
        "cluster_green",
        "cluster is yellow: yellow is allowed during a version upgrade only",
    )
    # During an upgrade an operator's restart still needs green: only the rollout's own steps may go on.
    state = with_rollout(UPGRADE, nodes=())
    ledger = request({}, state, Kind.RESTART, 5, now=1.0, external_volumes=True)
    d = plan_disruption(
        state, ledger=ledger, rollout=state.rollout, seen=seen("yellow", unassigned=3), now=10.0, settings=S
    )
    assert d.start is None and d.blocked[0].predicate == "cluster_green" and d.blocked[0].message == "cluster is yellow"


def test_an_upgrade_step_settles_yellow_with_the_same_conditions() -> None:
    state = with_rollout(UPGRADE)
    assert state.rollout is not None
    rollout, _ = start_step(state.rollout, 4, 2.0)
    rollout, _ = advance(rollout, 4, 3.0)
    rollout, _ = advance(rollout, 4, 4.0)
    state = replace(state, rollout=rollout)
    assert step_settled(4, state, seen("yellow", unassigned=2), S)
    assert not step_settled(4, state, seen("yellow", unassigned=2, primaries=1), S)
    assert not step_settled(4, state, seen("yellow", unassigned=2, primaries=None), S)
    assert not step_settled(4, state, seen("yellow", unassigned=2, relocating=1), S)
    assert not step_settled(4, replace(state, rollout=replace(rollout, upgrade=None)), seen("yellow", unassigned=2), S)
    assert yellow_refusal(state, seen("green"), S) is None


# --- what the monitor sees: unassigned primaries from the shard rows -----------------------------


HEALTH = {"status": "yellow", "unassigned_shards": 2, "relocating_shards": 0, "initializing_shards": 0}
NODES = [{"name": f"{FW}1", "master": "*"}]


def row(state: str, prirep: object, shard: str = "0") -> dict[str, object]:
    return {
        "index": "books",
        "shard": shard,
        "prirep": prirep,
        "state": state,
        "node": None if state == "UNASSIGNED" else f"{FW}1",
    }


def test_the_monitor_counts_unassigned_primaries_and_says_when_it_cannot_tell() -> None:
    replicas = [row("STARTED", "p"), row("UNASSIGNED", "r"), row("UNASSIGNED", "r", "1")]
    observed = observe(HEALTH, replicas, NODES)
    assert isinstance(observed, Seen) and observed.unassigned_primaries == 0
    observed = observe(HEALTH, [*replicas, row("UNASSIGNED", "p", "2")], NODES)
    assert isinstance(observed, Seen) and observed.unassigned_primaries == 1
    for unclear in (None, "x", 1):
        observed = observe(HEALTH, [row("UNASSIGNED", unclear), row("UNASSIGNED", "p", "1")], NODES)
        assert isinstance(observed, Seen) and observed.unassigned_primaries is None, unclear
    observed = observe(HEALTH, [row("STARTED", None)], NODES)  # only unassigned copies need saying
    assert isinstance(observed, Seen) and observed.unassigned_primaries == 0


# --- a new executor (framework release, contract) rolls the nodes --------------------------------


NEWER = {"release": "9.9.9", "contract": CONTRACT_VERSION + 1}


def test_a_new_executor_is_recorded_and_rolls_every_node_as_an_executor_rollout() -> None:
    cfg = config()
    before = record_configuration(on("8.15.1", "8.15.1", "8.15.1"), cfg, now=1.0)
    assert before.config is not None and before.config["executor"] == executor_record()
    assert record_configuration(before, cfg, now=2.0) is before  # the same release: nothing
    after = record_configuration(before, cfg, now=2.0, executor=NEWER)
    assert after.config is not None and after.config["fingerprint"] == before.config["fingerprint"]
    assert all(r.outdated for r in after.nodes.values())
    assert after.config_changes[-1]["changed"] == {"executor": [executor_record(), NEWER]}
    state, lines = configuration_rollout(before, after, now=2.0, elected_master=1, master_nodes=3)
    rollout = state.rollout
    assert rollout is not None and rollout.reason is RolloutReason.EXECUTOR and rollout.order == (2, 3, 1)
    old = executor_record()
    assert lines == (
        f"executor changed (release {old['release']} contract {old['contract']} → release 9.9.9 contract "
        f"{CONTRACT_VERSION + 1}): rollout {rollout.id} restarts nodes [2, 3, 1] one at a time",
    )
    # A failover under the new release keeps the rollout; a configuration change replaces it.
    again = record_configuration(state, cfg, now=3.0, executor=NEWER)
    assert configuration_rollout(state, again, now=3.0, elected_master=1, master_nodes=3) == (again, ())
    changed = record_configuration(state, config(elasticsearchRam="3072"), now=4.0, executor=NEWER)
    replaced, _ = configuration_rollout(state, changed, now=4.0, elected_master=1, master_nodes=3)
    assert replaced.rollout is not None and replaced.rollout.reason is RolloutReason.CONFIGURATION
    assert replaced.rollout_history[-1]["outcome"] == "aborted"


def test_nodes_launched_before_executors_were_recorded_are_rolled_as_an_executor_rollout() -> None:
    # Release 0.1.0 recorded the configuration but not its executor (contract 1): its nodes are rolled.
    cfg = config()
    recorded = record_configuration(on("8.15.1", "8.15.1"), cfg, now=1.0)
    assert recorded.config is not None
    legacy = replace(recorded, config={k: v for k, v in recorded.config.items() if k != "executor"})
    after = record_configuration(legacy, cfg, now=2.0)
    assert after.config is not None and after.config["executor"] == executor_record()
    assert all(r.outdated for r in after.nodes.values())
    assert after.config_changes[-1]["changed"] == {"executor": [UNRECORDED, executor_record()]}
    state, lines = configuration_rollout(legacy, after, now=2.0, elected_master=1, master_nodes=3)
    assert state.rollout is not None and state.rollout.reason is RolloutReason.EXECUTOR
    assert sorted(state.rollout.order) == [1, 2] and lines[0].startswith(f"executor changed (executor {UNRECORDED} →")
    # No node yet: nothing to roll, the executor is only recorded.
    empty = replace(legacy, nodes=MappingProxyType({}))
    fresh = record_configuration(empty, cfg, now=2.0)
    assert fresh.config is not None and fresh.config["executor"] == executor_record() and not fresh.config_changes[1:]
    assert configuration_rollout(empty, fresh, now=2.0, elected_master=1, master_nodes=3) == (fresh, ())


def test_the_engine_rolls_the_nodes_when_started_by_a_new_release(monkeypatch: pytest.MonkeyPatch) -> None:
    _, store, _ = running_engine(3)
    monkeypatch.setattr(config_record_module, "__version__", "9.9.9")
    engine = restarted_with(store, 3)
    rollout = engine.state.rollout
    assert rollout is not None and rollout.reason is RolloutReason.EXECUTOR and sorted(rollout.order) == [1, 2, 3]
    assert engine.state.config is not None and engine.state.config["executor"]["release"] == "9.9.9"
    again = restarted_with(store, 3)  # a failover: the same rollout goes on
    assert again.state.rollout == rollout
