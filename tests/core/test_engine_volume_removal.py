"""The engine removes a scaled-away node's volumes through a volume task (``--volumeRetention delete``):
only after the drained node's task was stopped as asked, persisted before the ACCEPT, settled by the
task's status update; a failed node, ``keep`` retention or an id wanted again keep the volumes."""

from __future__ import annotations

from es_framework.core.engine import Engine
from es_framework.core.mesos_calls import Accept, Revive
from es_framework.core.state_document import state_from_json
from identity.task_ids import TaskKind, parse_task_id
from tests.core.test_engine import FW, Clock, MemoryStore, accepts, launched, make, status
from tests.harness.builders import offer

DELETE = {"externalVolumeDriver": "rexray", "volumeRetention": "delete", "elasticsearchNodes": "4"}


def _scaled_down_and_stopped(retention: str = "delete") -> tuple[Engine, MemoryStore, Clock, dict[int, str]]:
    engine, store, clock = make(None, **{**DELETE, "volumeRetention": retention})
    tasks = launched(engine, 1, 2, 3, 4)
    for node_id, task_id in tasks.items():
        engine.on_updates([status(task_id, "TASK_RUNNING", f"agent-{node_id}-S0")])
    engine.set_desired_nodes(3, copies_needed=None)
    engine.stop_drained(4)  # the drain finished: the monitor asks to stop it
    clock.now += 5
    return engine, store, clock, tasks


def test_a_drained_node_stopped_by_scale_down_gets_its_volumes_removed() -> None:
    engine, store, clock, tasks = _scaled_down_and_stopped()
    assert 4 not in engine.state.volume_removals
    calls = engine.on_updates([status(tasks[4], "TASK_KILLED", "agent-4-S0")])
    removal = engine.state.volume_removals[4]
    assert removal.status() == "released" and removal.volumes == ("elasticsearch4config", "elasticsearch4data")
    assert Revive() in calls  # suppressed while all nodes ran: a removal needs an offer
    # Not at once: the executor's container may still be exiting. Offers come back in time.
    calls = engine.on_offers([offer(9)])
    assert accepts(calls) == [] and calls[-1].refuse_seconds == 10.0  # type: ignore[union-attr]
    clock.now += 10
    # The next offer carries the removal task; the state says so before the ACCEPT leaves.
    writes = len(store.writes)
    calls = engine.on_offers([offer(5)])
    (accept,) = accepts(calls)
    task = accept.task_infos[0]
    assert parse_task_id(task["task_id"]["value"], FW).kind is TaskKind.VOLUMES
    assert task["command"]["arguments"] == ["docker", "volume", "rm", "elasticsearch4config", "elasticsearch4data"]
    assert "executor" not in task
    assert len(store.writes) == writes + 1
    stored = state_from_json(store.writes[-1], FW)
    assert stored.volume_removals[4].in_flight and stored.volume_removals[4].task_id == task["task_id"]["value"]
    # While the removal is in flight, node id 4 is not launched even if it is wanted again.
    engine.set_desired_nodes(4, copies_needed=None)
    assert accepts(engine.on_offers([offer(6)])) == []
    engine.set_desired_nodes(3, copies_needed=None)
    # The task's end settles it.
    clock.now += 1
    calls = engine.on_updates([status(task["task_id"]["value"], "TASK_FINISHED", "agent-5-S0")])
    assert not any(c for c in calls if type(c).__name__ == "Kill")
    assert engine.state.volume_removals[4].status() == "removed"
    assert engine.state.volumes[4].removed_at == clock.now
    assert state_from_json(store.writes[-1], FW).volumes[4].removed_at == clock.now
    # Nothing more to remove: no further task on the next offer.
    assert accepts(engine.on_offers([offer(7)])) == []


def test_a_failed_removal_is_retried_after_its_back_off() -> None:
    engine, _, clock, tasks = _scaled_down_and_stopped()
    engine.on_updates([status(tasks[4], "TASK_KILLED", "agent-4-S0")])
    clock.now += 10
    (accept,) = accepts(engine.on_offers([offer(5)]))
    task_id = accept.task_infos[0]["task_id"]["value"]
    engine.on_updates([status(task_id, "TASK_FAILED", "agent-5-S0", message="Command exited with status 1")])
    removal = engine.state.volume_removals[4]
    assert removal.status() == "failed" and "Command exited with status 1" in (removal.last_error or "")
    assert accepts(engine.on_offers([offer(6)])) == []  # within the back-off
    clock.now += 31
    (again,) = accepts(engine.on_offers([offer(7)]))
    assert again.task_infos[0]["task_id"]["value"] != task_id
    assert engine.state.volume_removals[4].attempts == 2


def test_a_node_that_failed_instead_of_being_stopped_keeps_its_volumes() -> None:
    engine, _, _, tasks = _scaled_down_and_stopped()
    # Node 3 (kept) fails: its volumes are its replacement's.
    engine.on_updates([status(tasks[3], "TASK_FAILED", "agent-3-S0")])
    assert 3 not in engine.state.nodes
    assert 3 not in engine.state.volume_removals


def test_keep_retention_never_releases() -> None:
    engine, _, _, tasks = _scaled_down_and_stopped("keep")
    engine.on_updates([status(tasks[4], "TASK_KILLED", "agent-4-S0")])
    assert not engine.state.volume_removals
    assert not [a for a in accepts(engine.on_offers([offer(5)]))]


def test_a_live_volume_task_no_removal_holds_is_killed() -> None:
    engine, _, _ = make(None, **DELETE)
    stray = f"{FW}-volumes7-{'a' * 32}"
    calls = engine.on_updates([status(stray, "TASK_RUNNING", "agent-1-S0")])
    assert [type(c).__name__ for c in calls if type(c).__name__ == "Kill"] == ["Kill"]
    assert 7 not in engine.state.nodes


def test_an_in_flight_removal_is_reconciled_with_the_nodes() -> None:
    engine, _, clock, tasks = _scaled_down_and_stopped()
    engine.on_updates([status(tasks[4], "TASK_KILLED", "agent-4-S0")])
    clock.now += 10
    (accept,) = accepts(engine.on_offers([offer(5)]))
    task_id = accept.task_infos[0]["task_id"]["value"]
    explicit = engine.state.reconcile_tasks()
    assert {"task_id": {"value": task_id}, "agent_id": {"value": "agent-5-S0"}} in explicit
    assert isinstance(accept, Accept)
