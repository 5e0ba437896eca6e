"""Operator commands (scale, restart, replace, gone) as pure functions, and through the engine."""

from __future__ import annotations

from dataclasses import replace

import pytest

from es_framework.core import operations
from es_framework.core.engine import Engine
from es_framework.core.mesos_calls import Kill, Revive
from es_framework.core.node_state import ClusterState, Pin, TaskState
from es_framework.core.offers import parse_offer
from es_framework.core.operations import OperatorError
from es_framework.core.plan import plan_offer_cycle
from es_framework.core.state_document import state_from_json
from strategies import strategy_for
from tests.core.test_engine import FW, Clock, MemoryStore, accepts, launched, make, status
from tests.core.test_node_state import apply, running, update
from tests.harness.builders import config, offer


def test_desired_count_must_be_a_positive_whole_number() -> None:
    state = running(1, 2, 3)
    for bad, message in ((0, "at least 1"), (-1, "at least 1"), (True, "whole number"), ("3", "whole number")):
        with pytest.raises(OperatorError, match=message) as error:
            operations.set_desired_nodes(state, bad, copies_needed=None)  # type: ignore[arg-type]
        assert error.value.status == 400
    with pytest.raises(OperatorError, match="at most"):
        operations.set_desired_nodes(state, operations.MAX_NODES + 1, copies_needed=None)


def test_scaling_up_and_down_changes_only_the_count() -> None:
    state = running(1, 2, 3)
    up = operations.set_desired_nodes(state, 5, copies_needed=None)
    assert up.state.desired_nodes == 5 and up.kills == () and "scaling up from 3 to 5" in up.message
    down = operations.set_desired_nodes(up.state, 2, copies_needed=2)
    assert down.state.desired_nodes == 2 and down.kills == ()  # drained first, stopped later
    assert "node(s) 3 will be drained" in down.message
    same = operations.set_desired_nodes(state, 3, copies_needed=None)
    assert same.state is state


def test_scale_down_below_the_copies_the_data_needs_is_refused() -> None:
    with pytest.raises(OperatorError, match="needs at least 2 nodes") as error:
        operations.set_desired_nodes(running(1, 2, 3), 1, copies_needed=2)
    assert error.value.status == 409


def test_restart_pins_the_node_to_its_agent_and_kills_it() -> None:
    state = running(1, 2, 3)
    outcome = operations.restart_node(state, 2, now=100.0)
    assert outcome.kills == ((2, state.nodes[2].task_id, "agent-2"),)
    assert outcome.state.nodes[2].stopping == "restart"
    assert outcome.state.pins[2].agent_id == "agent-2" and outcome.state.pins[2].until == 100.0 + operations.PIN_SECONDS
    with pytest.raises(OperatorError, match="already being stopped"):
        operations.restart_node(outcome.state, 2, now=101.0)


@pytest.mark.parametrize("verb", ["restart", "replace"])
def test_restart_and_replace_need_a_live_node(verb: str) -> None:
    state, _ = apply(running(1, 2), update(2, TaskState.UNREACHABLE))

    def call(s: ClusterState, node_id: int) -> operations.Outcome:
        if verb == "restart":
            return operations.restart_node(s, node_id, now=0.0)
        return operations.replace_node(s, node_id)

    with pytest.raises(OperatorError, match="no task holds node 7") as missing:
        call(state, 7)
    assert missing.value.status == 404
    with pytest.raises(OperatorError, match="TASK_UNREACHABLE, not running") as conflict:
        call(state, 2)
    assert conflict.value.status == 409


def test_gone_only_for_an_unreachable_node() -> None:
    state, _ = apply(running(1, 2), update(2, TaskState.UNREACHABLE))
    with pytest.raises(OperatorError, match="not unreachable") as error:
        operations.check_gone(state, 1)
    assert error.value.status == 409
    record = operations.check_gone(state, 2)
    outcome = operations.release_gone(state, 2, record.task_id)
    assert 2 not in outcome.state.nodes and outcome.kills == ()
    with pytest.raises(OperatorError, match="now held by task"):
        operations.release_gone(state, 2, "elasticsearch-node2-" + "f" * 32)


def test_stop_drained_only_above_the_desired_count() -> None:
    state = replace(running(1, 2, 3), desired_nodes=2)
    with pytest.raises(OperatorError, match="wanted again"):
        operations.stop_drained(state, 2)
    outcome = operations.stop_drained(state, 3)
    assert outcome.state.nodes[3].stopping == "scale-down" and len(outcome.kills) == 1
    assert operations.stop_drained(outcome.state, 3).kills == ()  # idempotent


# --- planning honours pins and the desired count --------------------------------------------------


def _pinned(state: ClusterState, node_id: int, agent: str, until: float = 1e9) -> ClusterState:
    nodes = {i: r for i, r in state.nodes.items() if i != node_id}
    return replace(state, nodes=nodes, pins={node_id: Pin(agent, until)})


def test_a_restarted_node_relaunches_only_on_its_agent() -> None:
    state = _pinned(running(1, 2, 3), 2, "agent-5-S0")
    cfg = config(externalVolumeDriver="rexray")
    other = plan_offer_cycle(state, [parse_offer(offer(6))], cfg, now=0.0, strategy=strategy_for(cfg))
    assert other.launches == () and other.declines[0].rule == "pinned"
    assert "node 2 restarts in place on agent agent-5-S0" in other.declines[0].reason
    own = plan_offer_cycle(
        state, [parse_offer(offer(6)), parse_offer(offer(5))], cfg, now=0.0, strategy=strategy_for(cfg)
    )
    assert [launch.record.node_id for launch in own.launches] == [2]
    assert own.launches[0].offer.agent_id == "agent-5-S0" and 2 not in own.state.pins


def test_an_expired_pin_lets_any_agent_take_the_node() -> None:
    state = _pinned(running(1, 2, 3), 2, "agent-5-S0", until=10.0)
    plan = plan_offer_cycle(state, [parse_offer(offer(6))], cfg := config(), now=11.0, strategy=strategy_for(cfg))
    assert [launch.record.node_id for launch in plan.launches] == [2]


def test_a_pin_does_not_block_other_missing_ids() -> None:
    state = _pinned(running(1, 2), 2, "agent-5-S0")
    state = replace(state, desired_nodes=3)
    plan = plan_offer_cycle(state, [parse_offer(offer(6))], cfg := config(), now=0.0, strategy=strategy_for(cfg))
    assert [launch.record.node_id for launch in plan.launches] == [3]


def test_nodes_above_the_desired_count_do_not_fill_it() -> None:
    # Scaling 4 -> 3 while node 3 had died: node 4 drains away, node 3 is launched again.
    state = replace(running(1, 2, 4), desired_nodes=3)
    plan = plan_offer_cycle(state, [parse_offer(offer(7))], cfg := config(), now=0.0, strategy=strategy_for(cfg))
    assert [launch.record.node_id for launch in plan.launches] == [3]


# --- through the engine ---------------------------------------------------------------------------


def _running_engine(nodes: int = 3) -> tuple[tuple[Engine, MemoryStore, Clock], dict[int, str]]:
    engine, store, clock = make(externalVolumeDriver="rexray")
    tasks = launched(engine, *range(1, nodes + 1))
    engine.on_updates([status(t, "TASK_RUNNING", f"agent-{n}-S0") for n, t in tasks.items()])
    return (engine, store, clock), tasks


def test_engine_restart_persists_then_kills_then_relaunches_without_backoff() -> None:
    (engine, store, clock), tasks = _running_engine()
    message, calls = engine.restart_node(2)
    assert "started again on agent agent-2-S0" in message
    assert Kill(tasks[2], "agent-2-S0") in calls
    stored = state_from_json(store.document, FW)
    assert stored.nodes[2].stopping == "restart" and stored.pins[2].agent_id == "agent-2-S0"
    # The kill is re-sent after a re-registration if the task still runs.
    assert Kill(tasks[2], "agent-2-S0") in engine.on_registered(engine.state.framework_id or "fw")
    calls = engine.on_updates([status(tasks[2], "TASK_KILLED", "agent-2-S0")])
    assert 2 not in engine.state.nodes and Revive() in calls
    assert engine.backoff.wait(2, clock.now) == 0  # no failure recorded
    # Another agent's offer is declined; the own agent's relaunches node 2 with its volumes.
    assert accepts(engine.on_offers([offer(9)])) == []
    relaunch = accepts(engine.on_offers([offer(2)]))
    assert len(relaunch) == 1 and relaunch[0].task_infos[0]["name"] == "elasticsearch2"
    assert relaunch[0].task_infos[0]["task_id"]["value"] != tasks[2]


def test_engine_scale_up_revives_and_scale_down_keeps_nodes_until_drained() -> None:
    (engine, store, _), tasks = _running_engine()
    _, calls = engine.set_desired_nodes(5, copies_needed=None)
    assert Revive() in calls and state_from_json(store.document, FW).desired_nodes == 5
    new = launched(engine, 4, 5)
    assert sorted(new) == [4, 5]
    _, calls = engine.set_desired_nodes(2, copies_needed=2)
    assert not any(isinstance(c, Kill) for c in calls)
    assert sorted(engine.state.nodes) == [1, 2, 3, 4, 5]
    _, calls = engine.stop_drained(3)
    assert calls[0] == Kill(tasks[3], "agent-3-S0")
    with pytest.raises(OperatorError):
        engine.set_desired_nodes(0, copies_needed=None)
    assert state_from_json(store.document, FW).desired_nodes == 2


def test_engine_refuses_commands_while_the_store_is_in_doubt() -> None:
    (engine, _, _), _ = _running_engine()
    engine.may_act = False
    with pytest.raises(OperatorError) as error:
        engine.set_desired_nodes(4, copies_needed=None)
    assert error.value.status == 503


def test_engine_refuses_when_the_write_fails_and_changes_nothing() -> None:
    (engine, store, _), _ = _running_engine()
    store.fail_next = OSError("connection loss")
    with pytest.raises(OperatorError, match="could not be written"):
        engine.replace_node(1)
    assert engine.state.nodes[1].stopping is None


def test_a_command_on_a_node_is_in_that_nodes_history() -> None:
    (engine, _, _), _ = _running_engine()
    engine.replace_node(3)
    mine = [e for e in engine.events if e.node_id == 3]
    assert mine and "stopped gracefully and launched again" in mine[-1].message
    assert mine[-1].state == "TASK_RUNNING"
    engine.set_desired_nodes(4, copies_needed=None)
    assert engine.events[-1].node_id is None and "scaling up from 3 to 4" in engine.events[-1].message
