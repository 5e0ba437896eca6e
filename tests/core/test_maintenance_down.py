"""A machine DOWN for maintenance frees the node ids of tasks Mesos no longer knows
(es_framework/core/maintenance.py, core/engine_maintenance.py).

The chaos runner's seed 941 (issue 14): the leader is killed; START_MAINTENANCE takes node 3's machine
DOWN before the standby subscribes, so the master's TASK_LOST (no uuid, never re-sent) goes nowhere;
the new leader's reconciliation hears TASK_UNKNOWN and kept node 3 reserved "until an operator frees
it", the cluster staying at 2 of 3. The master's ``GET_MAINTENANCE_STATUS`` shows the machine DOWN,
which means its agent was shut down with its tasks: the id is free for a relaunch with its volumes."""

from __future__ import annotations

import pytest

from es_framework.core.engine import Engine
from es_framework.core.maintenance import (
    Machine,
    MaintenanceError,
    on_down_machine,
    parse_down_machines,
    unknown_on_down_machines,
)
from es_framework.core.mesos_calls import Accept
from es_framework.core.node_state import TaskState
from tests.core.test_engine import MemoryStore, make, status
from tests.harness.builders import offer

#: GET_MAINTENANCE_STATUS while 127.0.0.7 is DOWN and 127.0.0.8 DRAINING, as a Mesos 1.12 master answers
#: (shared/notes/mesos-maintenance-domains-reservations.md §2.4, §2.7).
STATUS = {
    "type": "GET_MAINTENANCE_STATUS",
    "get_maintenance_status": {
        "status": {
            "draining_machines": [{"id": {"hostname": "127.0.0.8", "ip": "127.0.0.8"}}],
            "down_machines": [{"hostname": "127.0.0.7", "ip": "127.0.0.7"}],
        }
    },
}
DOWN_3 = (Machine("agent3.example.com", "10.0.0.3"),)


def test_parse_down_machines_reads_only_the_down_list() -> None:
    assert parse_down_machines(STATUS) == (Machine("127.0.0.7", "127.0.0.7"),)
    # No key at all when no machine is DOWN (§2.4), nor when nothing is scheduled (§2.8).
    assert parse_down_machines({"get_maintenance_status": {"status": {}}}) == ()
    malformed: object
    for malformed in ({}, {"get_maintenance_status": {"status": {"down_machines": [{}]}}}, []):
        with pytest.raises(MaintenanceError):
            parse_down_machines(malformed)


def test_an_agent_is_on_a_machine_by_its_hostname_without_case() -> None:
    assert on_down_machine("Agent3.Example.com", DOWN_3)
    assert not on_down_machine("agent30.example.com", DOWN_3)
    assert not on_down_machine("", (Machine("", "10.0.0.3"),))
    # A machine named by IP alone holds no agent in Mesos (operator==(MachineID) compares both fields).
    assert not on_down_machine("10.0.0.3", (Machine("", "10.0.0.3"),))


def three_running_then_failover(**flags: str) -> tuple[Engine, MemoryStore, dict[int, str]]:
    """Nodes 1-3 RUNNING on agents 1-3 under one leader; a new leader with the stored state."""
    flags = {"elasticsearchNodes": "3", **flags}
    leader, store, _ = make(None, **flags)
    accepted = [c for c in leader.on_offers([offer(1), offer(2), offer(3)]) if isinstance(c, Accept)]
    tasks = {n: a.task_infos[0]["task_id"]["value"] for n, a in enumerate(accepted, start=1)}
    leader.on_updates([status(tasks[n], "TASK_RUNNING", f"agent-{n}-S0") for n in tasks])
    new_leader, _, clock = make(store, **flags)
    clock.now += 60  # the nodes ran a minute: a long run per their records, so no crash-loop back-off
    return new_leader, store, tasks


def reconciled_unknown(engine: Engine, task_id: str) -> None:
    # Master::reconcile (src/master/master.cpp), case (6): task and agent unknown: TASK_UNKNOWN, no uuid.
    engine.on_update({"task_id": {"value": task_id}, "state": "TASK_UNKNOWN", "reason": "REASON_RECONCILIATION"})


def test_an_unknown_task_on_a_down_machine_is_freed_and_relaunched_with_its_volumes() -> None:
    engine, _, tasks = three_running_then_failover(externalVolumeDriver="rexray")
    volumes = engine.state.nodes[3].volumes
    reconciled_unknown(engine, tasks[3])
    assert engine.state.nodes[3].needs_operator  # as before: UNKNOWN alone keeps the id
    assert engine.down_machines_wanted() == (True, [])
    assert engine.machines_down(()) == ((), [])
    assert engine.machines_down((Machine("agent9.example.com", "10.0.0.9"),)) == ((), [])
    assert 3 in engine.state.nodes

    freed, _ = engine.machines_down(DOWN_3)
    assert freed == (3,)
    assert 3 not in engine.state.nodes
    assert engine.state.missing_nodes == 1
    assert engine.down_machines_wanted() == (False, [])
    launches = [c for c in engine.on_offers([offer(4)]) if isinstance(c, Accept)]
    assert [a.offer_id for a in launches] == ["offer-4"]
    assert engine.state.nodes[3].volumes == volumes and volumes is not None


@pytest.mark.parametrize("state", ["TASK_RUNNING", "TASK_UNREACHABLE"])
def test_a_task_mesos_still_knows_is_never_freed_by_a_down_machine(state: str) -> None:
    """An UNREACHABLE task's agent was partitioned when its machine went DOWN: START_MAINTENANCE did not
    remove it, and it may run its task until it reconnects and is told to shut down."""
    engine, _, tasks = three_running_then_failover()
    engine.on_update(status(tasks[3], state, "agent-3-S0", uuid=None))
    assert engine.machines_down(DOWN_3) == ((), [])
    assert engine.state.nodes[3].state is TaskState(state)


def test_nothing_is_freed_while_the_engine_may_not_act() -> None:
    engine, _, tasks = three_running_then_failover()
    reconciled_unknown(engine, tasks[3])
    engine.may_act = False
    assert engine.down_machines_wanted() == (False, [])
    assert engine.machines_down(DOWN_3) == ((), [])
    assert unknown_on_down_machines(engine.state, DOWN_3) == (3,)
