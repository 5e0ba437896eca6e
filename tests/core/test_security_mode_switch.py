"""Switching a cluster recorded ``off`` to ``auto`` with a full cluster restart
(``--elasticsearchSecurity auto --elasticsearchSecuritySwitch fullRestart``): the flag's rule
(es_framework/config/flags_security.py), the decision (es_framework/core/security_mode.py), the
state's entry (es_framework/core/security_switch.py), stop all and the gate
(es_framework/core/engine_security_switch.py), and the engine running it end to end in memory."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from es_framework.core.engine_security import settle_security_mode
from es_framework.core.engine_security_switch import holding_ids, start_switch, switch_gate, switch_kills
from es_framework.core.mesos_calls import Decline, Kill
from es_framework.core.node_state import LIVE_STATES, ClusterState, NodeRecord, NodeStateError, TaskState
from es_framework.core.node_tls import is_auto
from es_framework.core.rollout_model import Rollout, RolloutReason
from es_framework.core.security_mode import SWITCH_WARNING, Mode, decide_security_mode
from es_framework.core.security_switch import SWITCH_RULE, SWITCH_STOPPING, SecuritySwitch
from es_framework.core.state_document import cluster_to_json, state_from_json, state_to_json
from es_framework.core.status_updates import StatusUpdate
from identity import node_id_from_task_id
from tests.config.support import cfg, no_db, only_problem
from tests.core.test_engine import MemoryStore, accepts, launched, make, status
from tests.harness.builders import offer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FW = "elasticsearch"
ZK = "zk://zk1:2181/mesos"
SWITCH = {"elasticsearchSecurity": "auto", "elasticsearchSecuritySwitch": "fullRestart"}

# --- the flag ---------------------------------------------------------------------------------------


def test_the_switch_needs_an_explicit_auto() -> None:
    assert cfg(**SWITCH).elasticsearch_security_switch == "fullRestart"
    assert cfg(elasticsearchSecurity="auto", elasticsearchSecuritySwitch="FULLRESTART").elasticsearch_security_switch
    for other in ({}, {"elasticsearchSecurity": "off"}):
        problem = only_problem(elasticsearchSecuritySwitch="fullRestart", **other)
        assert (
            "--elasticsearchSecuritySwitch fullRestart needs --elasticsearchSecurity auto given explicitly" in problem
        )
    assert "--elasticsearchSecuritySwitch" in only_problem(
        elasticsearchSecurity="auto", elasticsearchSecuritySwitch="rolling"
    )
    assert cfg().elasticsearch_security_switch is None


# --- the decision -----------------------------------------------------------------------------------


@no_db
@given(
    flag=st.sampled_from((None, "auto", "off")),
    recorded=st.sampled_from((None, "auto", "off")),
    new=st.booleans(),
    has_ca=st.booleans(),
    user_security=st.booleans(),
    switch=st.booleans(),
    rollout=st.booleans(),
)
def test_the_switch_happens_only_when_asked_for_on_a_cluster_running_off(
    *,
    flag: Mode | None,
    recorded: Mode | None,
    new: bool,
    has_ca: bool,
    user_security: bool,
    switch: bool,
    rollout: bool,
) -> None:
    decision = decide_security_mode(
        flag,
        local_mode=False,
        recorded=recorded,
        new=new and recorded is None,
        has_ca=has_ca,
        user_security=user_security,
        switch=switch,
        rollout=rollout,
    )
    without = decide_security_mode(
        flag,
        local_mode=False,
        recorded=recorded,
        new=new and recorded is None,
        has_ca=has_ca,
        user_security=user_security,
    )
    runs_off = recorded == "off" or (recorded is None and not new and not has_ca)
    asked = switch and flag == "auto"
    assert decision.switch == (asked and runs_off and not rollout)
    if decision.switch:
        assert (decision.mode, decision.record) == ("auto", "auto") and decision.warnings == (SWITCH_WARNING,)
        assert "FULL CLUSTER RESTART" in SWITCH_WARNING
        return
    # Otherwise the cluster runs as it would without the flag, and says why nothing switched.
    assert (decision.mode, decision.record) == (without.mode, without.record)
    if asked and runs_off:
        assert any("refused while a rollout is under way" in w for w in decision.warnings)
    elif asked:
        assert any("--elasticsearchSecuritySwitch fullRestart does nothing" in n for n in decision.notes)


def test_local_mode_never_switches() -> None:
    decision = decide_security_mode("auto", local_mode=True, recorded="off", new=False, has_ca=False, switch=True)
    assert not decision.switch and decision.record is None


# --- the state's entry ------------------------------------------------------------------------------


@no_db
@given(
    switch=st.none()
    | st.builds(
        SecuritySwitch,
        st.floats(min_value=0, max_value=4e9, allow_nan=False),
        st.lists(st.integers(1, 10_000), max_size=20, unique=True).map(lambda ids: tuple(sorted(ids))),
    )
)
def test_the_entry_round_trips_in_the_cluster_part(switch: SecuritySwitch | None) -> None:
    state = ClusterState(desired_nodes=3, security_mode="auto" if switch else None, security_switch=switch)
    document = json.loads(json.dumps(state_to_json(state)))
    assert cluster_to_json(state)["security_switch"] == document["security_switch"]
    assert state_from_json(document, FW) == state


@pytest.mark.parametrize("fixture", ["v0.1.0/state-formed.json", "schema3/state.json"])
def test_earlier_documents_load_without_a_switch(fixture: str) -> None:
    document = json.loads((FIXTURES / fixture).read_text())
    assert "security_switch" not in document
    assert state_from_json(document, FW).security_switch is None


@pytest.mark.parametrize(
    "bad",
    [
        "yes",
        [1, 2],
        {"started_at": "now", "node_ids": [1]},
        {"started_at": 1.0, "node_ids": [0]},
        {"started_at": 1.0, "node_ids": ["1"]},
        {"started_at": 1.0},
        {"started_at": True, "node_ids": []},
    ],
)
def test_a_malformed_entry_is_refused_naming_the_field(bad: Any) -> None:
    document = state_to_json(ClusterState(desired_nodes=3))
    document["security_switch"] = bad
    with pytest.raises(NodeStateError, match="stored state: security_switch"):
        state_from_json(document, FW)


# --- stop all, the gate -----------------------------------------------------------------------------


def record(node_id: int, state: TaskState, stopping: str | None = None) -> NodeRecord:
    return NodeRecord(
        node_id, f"{FW}{node_id}.t", f"agent-{node_id}", f"h{node_id}", 31000, 31001, state, stopping=stopping
    )


records = st.dictionaries(
    st.integers(1, 12),
    st.tuples(st.sampled_from(list(TaskState)), st.sampled_from((None, "restart", "replace", "scale-down"))),
    max_size=12,
)


@no_db
@given(nodes=records, desired=st.integers(1, 12), gone=st.sets(st.integers(1, 12)))
def test_stop_all_then_no_launch_while_one_from_before_holds_its_id(
    nodes: dict[int, tuple[TaskState, str | None]], desired: int, gone: set[int]
) -> None:
    before = ClusterState(
        desired_nodes=desired,
        security_mode="off",
        nodes=MappingProxyType({i: record(i, s, why) for i, (s, why) in nodes.items()}),
    )
    state = start_switch(before, now=100.0)
    assert state.security_mode == "auto" and state.security_switch == SecuritySwitch(100.0, tuple(sorted(nodes)))
    for node_id, held in state.nodes.items():
        assert held.stopping == (nodes[node_id][1] or SWITCH_STOPPING)  # a stop already on purpose keeps its reason
        pinned = nodes[node_id][1] is None and held.state in LIVE_STATES and held.volumes is None and node_id <= desired
        assert (node_id in state.pins) == pinned or nodes[node_id][1] == "restart"
    # Ids end one by one (freed records); the gate holds while any of them is still held.
    left = state.with_nodes({i: r for i, r in state.nodes.items() if i not in gone})
    gated, reason = switch_gate(left, now=500.0)
    if set(nodes) - gone:
        assert reason is not None and gated is left and holding_ids(left) == tuple(sorted(set(nodes) - gone))
        assert f"node(s) {min(set(nodes) - gone)}" in reason
    else:
        assert reason is None and gated.security_switch is None
        assert all(p.until == 500.0 + 600.0 for i, p in gated.pins.items() if i in nodes and nodes[i][1] is None)


def test_an_unreachable_node_holds_the_switch_and_is_killed_when_it_comes_back() -> None:
    state = start_switch(
        ClusterState(desired_nodes=2, nodes=MappingProxyType({1: record(1, TaskState.UNREACHABLE)})), 1.0
    )
    held = state.nodes[1]
    assert switch_gate(state, 2.0)[1] is not None
    back = StatusUpdate(held.task_id, TaskState.RUNNING, agent_id=held.agent_id)
    assert switch_kills(held, back) == [Kill(held.task_id, held.agent_id)]
    # A live task's repeated updates are not killed again; nor a node stopped for another reason.
    assert switch_kills(replace(held, state=TaskState.RUNNING), back) == []
    assert switch_kills(replace(held, stopping="restart"), back) == []


# --- the engine ---------------------------------------------------------------------------------------


def running_off_cluster() -> dict[str, Any]:
    """The stored document of a 3-node cluster recorded off, every node RUNNING on agents 1-3."""
    engine, store, _ = make(mesosMaster=ZK, elasticsearchSecurity="off")
    settle_security_mode(engine)
    engine.on_registered("fw-1")
    for node_id, task_id in launched(engine, 1, 2, 3).items():
        engine.on_updates([status(task_id, "TASK_RUNNING", f"agent-{node_id}-S0")])
    assert store.document is not None and store.document["security_mode"] == "off"
    return store.document


def test_the_engine_stops_all_launches_none_while_one_lives_then_all_with_tls() -> None:
    engine, store, clock = make(MemoryStore(running_off_cluster()), mesosMaster=ZK, **SWITCH)
    tasks = {i: r.task_id for i, r in engine.state.nodes.items()}
    decision = settle_security_mode(engine)
    assert decision.switch and decision.mode == "auto" and engine.config.creates_ca
    (write,) = store.writes  # one fenced write: the mode, the switch and every node stopping
    assert write["security_mode"] == "auto" and write["security_switch"]["node_ids"] == [1, 2, 3]
    assert {r["stopping"] for r in write["nodes"]} == {SWITCH_STOPPING}
    calls = engine.on_registered("fw-1")
    assert sorted(c.task_id for c in calls if isinstance(c, Kill)) == sorted(tasks.values())

    clock.now += 10
    for node_id in (1, 2):
        engine.on_updates([status(tasks[node_id], "TASK_KILLED", f"agent-{node_id}-S0")])
    calls = engine.on_offers([offer(n) for n in (1, 2, 4)])
    assert accepts(calls) == [] and all(isinstance(c, Decline) for c in calls if not isinstance(c, Kill))
    assert engine.declines.by_rule[SWITCH_RULE] == 3  # counted, and shown with the waiting nodes
    assert engine.declines.waiting is not None and SWITCH_RULE in engine.declines.waiting.reasons
    assert 1 not in engine.state.nodes and engine.state.security_switch is not None

    engine.on_updates([status(tasks[3], "TASK_KILLED", "agent-3-S0")])
    assert not engine.backoff.failures, "an intended stop is no failure"
    launches = accepts(engine.on_offers([offer(n) for n in (1, 2, 3, 4)]))
    by_node = {node_id_from_task_id(a.task_infos[0]["task_id"]["value"], FW): a for a in launches}
    assert sorted(by_node) == [1, 2, 3]
    assert all(is_auto(a.task_infos[0]) for a in launches)
    # Each node back on its own agent (pinned: its local data is there), the switch over, nothing bootstraps.
    assert {n: a.offer_id for n, a in by_node.items()} == {n: f"offer-{n}" for n in (1, 2, 3)}
    assert store.document is not None and store.document["security_switch"] is None
    assert store.document["security_mode"] == "auto"


def test_the_switch_is_refused_while_a_rollout_is_under_way() -> None:
    document = running_off_cluster()
    engine, store, _ = make(MemoryStore(document), mesosMaster=ZK, **SWITCH)
    engine.state = replace(engine.state, rollout=_a_rollout(engine.state))
    decision = settle_security_mode(engine)
    assert not decision.switch and decision.mode == "off" and store.writes == []
    assert not engine.config.creates_ca
    assert any("refused while a rollout is under way" in w for w in decision.warnings)


def _a_rollout(state: ClusterState) -> Rollout:
    return Rollout("r-1", RolloutReason.CONFIGURATION, 1.0, "abc", MappingProxyType({}))


def test_a_failed_switch_write_switches_nothing_and_says_to_start_again() -> None:
    engine, store, _ = make(MemoryStore(running_off_cluster()), mesosMaster=ZK, **SWITCH)
    store.fail_next = OSError("ZooKeeper connection lost")
    decision = settle_security_mode(engine)
    assert not decision.switch and decision.mode == "off" and store.writes == []
    assert engine.state.security_switch is None and not any(r.stopping for r in engine.state.nodes.values())
    assert "was not started (the state could not be written)" in decision.warnings[0]
    assert engine.on_registered("fw-1") and not [c for c in engine.on_registered("fw-1") if isinstance(c, Kill)]


def test_a_new_leader_finishes_a_switch_an_earlier_one_began() -> None:
    engine, store, _ = make(MemoryStore(running_off_cluster()), mesosMaster=ZK, **SWITCH)
    settle_security_mode(engine)
    # The leader is gone before any kill went out; the next one runs with plain auto.
    later, _, _ = make(MemoryStore(store.document), mesosMaster=ZK, elasticsearchSecurity="auto")
    decision = settle_security_mode(later)
    assert decision.mode == "auto" and not decision.switch and later.state.security_switch is not None
    assert len([c for c in later.on_registered("fw-1") if isinstance(c, Kill)]) == 3
    assert accepts(later.on_offers([offer(4)])) == []
