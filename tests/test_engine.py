from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest

from es_framework.engine import (
    Accept,
    Acknowledge,
    Call,
    Decline,
    Engine,
    Kill,
    Reconcile,
    Revive,
    StoreConflictError,
    Suppress,
)
from es_framework.node_state import TaskState, state_from_json
from es_framework.plan import LONG_REFUSE_S, SHORT_REFUSE_S
from identity import node_id_from_task_id
from tests.builders import config, offer

FW = "elasticsearch"


class MemoryStore:
    """A store that records every write and can be told to fail."""

    def __init__(self, document: dict[str, Any] | None = None) -> None:
        self.document = copy.deepcopy(document)
        self.version = 0
        self.writes: list[dict[str, Any]] = []
        self.fail_next: Exception | None = None

    def load(self) -> tuple[dict[str, Any] | None, int]:
        return copy.deepcopy(self.document), self.version

    def save(self, document: dict[str, Any], version: int) -> int:
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        if version != self.version:
            raise StoreConflictError(f"version {version} != {self.version}")
        self.document = copy.deepcopy(document)
        self.version += 1
        self.writes.append(copy.deepcopy(document))
        return self.version


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(store: MemoryStore | None = None, **flags: str) -> tuple[Engine, MemoryStore, Clock]:
    store = store or MemoryStore()
    clock = Clock()
    numbers = itertools.count(1)
    engine = Engine(config(**flags), store, clock=clock, new_launch_id=lambda: f"{next(numbers):032x}")
    return engine, store, clock


def accepts(calls: list[Call]) -> list[Accept]:
    return [c for c in calls if isinstance(c, Accept)]


def status(task_id: str, state: str, agent: str, *, uuid: str | None = "dXVpZA==", **extra: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"task_id": {"value": task_id}, "state": state, "agent_id": {"value": agent}, **extra}
    if uuid is not None:
        raw["uuid"] = uuid
    return raw


def launched(engine: Engine, *agents: int) -> dict[int, str]:
    """Launch one node per agent number; return node id -> task id."""
    task_ids = [a.task_infos[0]["task_id"]["value"] for a in accepts(engine.on_offers([offer(n) for n in agents]))]
    return {node_id_from_task_id(t, FW): t for t in task_ids}


def test_launch_is_persisted_before_it_is_returned() -> None:
    engine, store, _ = make(externalVolumeDriver="rexray")
    calls = engine.on_offers([offer(1), offer(2), offer(3), offer(4)])
    assert [a.offer_id for a in accepts(calls)] == ["offer-1", "offer-2", "offer-3"]
    assert len(store.writes) == 1
    stored = state_from_json(store.writes[0], FW)
    assert sorted(stored.nodes) == [1, 2, 3]
    assert all(r.state is TaskState.LAUNCHING for r in stored.nodes.values())
    stored_task_ids = {r.task_id for r in stored.nodes.values()}
    assert {a.task_infos[0]["task_id"]["value"] for a in accepts(calls)} == stored_task_ids
    assert Decline(("offer-4",), LONG_REFUSE_S) in calls
    assert calls[-1] == Suppress()


def test_a_failed_write_launches_nothing() -> None:
    engine, store, _ = make()
    store.fail_next = OSError("zookeeper connection loss")
    calls = engine.on_offers([offer(1), offer(2)])
    assert accepts(calls) == []
    assert calls == [Decline(("offer-1", "offer-2"), SHORT_REFUSE_S)]
    assert not engine.state.nodes
    # Next time it works.
    assert len(accepts(engine.on_offers([offer(1)]))) == 1


def test_a_conflicting_write_launches_nothing_and_rereads() -> None:
    engine, store, _ = make()
    # Another scheduler wrote node 1 meanwhile.
    other, _, _ = make(store)
    other.on_offers([offer(9)])
    calls = engine.on_offers([offer(1)])
    assert accepts(calls) == []
    assert sorted(engine.state.nodes) == [1]  # re-read
    retry = engine.on_offers([offer(1)])
    assert [a.task_infos[0]["name"] for a in accepts(retry)] == ["elasticsearch2"]


def test_status_is_persisted_before_it_is_acknowledged() -> None:
    engine, store, _ = make()
    tasks = launched(engine, 1)
    writes = len(store.writes)
    calls = engine.on_update(status(tasks[1], "TASK_RUNNING", "agent-1-S0"))
    assert Acknowledge("agent-1-S0", tasks[1], "dXVpZA==") in calls
    assert len(store.writes) == writes + 1
    assert state_from_json(store.document, FW).nodes[1].state is TaskState.RUNNING


def test_an_update_whose_write_fails_is_not_acknowledged() -> None:
    engine, store, _ = make()
    tasks = launched(engine, 1)
    store.fail_next = OSError("connection loss")
    assert engine.on_update(status(tasks[1], "TASK_RUNNING", "agent-1-S0")) == []
    assert engine.state.nodes[1].state is TaskState.LAUNCHING
    # Mesos resends it; now it goes through.
    assert any(isinstance(c, Acknowledge) for c in engine.on_update(status(tasks[1], "TASK_RUNNING", "agent-1-S0")))


def test_updates_without_uuid_are_not_acknowledged() -> None:
    engine, _, _ = make()
    tasks = launched(engine, 1)
    calls = engine.on_update(status(tasks[1], "TASK_UNREACHABLE", "agent-1-S0", uuid=None))
    assert not any(isinstance(c, Acknowledge) for c in calls)


def test_while_the_store_is_unavailable_nothing_is_launched_freed_or_acknowledged() -> None:
    engine, store, _ = make()
    tasks = launched(engine, 1)
    engine.may_act = False
    writes = len(store.writes)
    assert engine.on_offers([offer(2)]) == [Decline(("offer-2",), SHORT_REFUSE_S)]
    assert engine.on_update(status(tasks[1], "TASK_FAILED", "agent-1-S0")) == []
    assert len(store.writes) == writes
    assert 1 in engine.state.nodes


def test_registration_reconciles_known_tasks_with_agent_ids_then_all() -> None:
    engine, store, _ = make()
    tasks = launched(engine, 1, 2)
    calls = engine.on_registered("fw-42")
    assert state_from_json(store.document, FW).framework_id == "fw-42"
    explicit, implicit = calls[0], calls[1]
    assert explicit == Reconcile(
        (
            {"task_id": {"value": tasks[1]}, "agent_id": {"value": "agent-1-S0"}},
            {"task_id": {"value": tasks[2]}, "agent_id": {"value": "agent-2-S0"}},
        )
    )
    assert implicit == Reconcile(())
    assert calls[2] == Revive()  # one node still missing


def test_registration_with_nothing_known_reconciles_implicitly_only() -> None:
    engine, _, _ = make()
    assert engine.on_registered("fw-1")[:1] == [Reconcile(())]


def test_restart_recovers_state_and_stored_count_wins(caplog: pytest.LogCaptureFixture) -> None:
    engine, store, _ = make(elasticsearchNodes="3")
    tasks = launched(engine, 1, 2, 3)
    restarted, _, _ = make(store, elasticsearchNodes="5")
    assert sorted(restarted.state.nodes) == [1, 2, 3]
    assert restarted.state.desired_nodes == 3
    assert "stored desired node count 3 wins over --elasticsearchNodes 5" in caplog.text
    # The ids recovered from state are never handed out again.
    assert accepts(restarted.on_offers([offer(7)])) == []
    assert {r.task_id for r in restarted.state.nodes.values()} == set(tasks.values())


def test_replacement_reuses_the_id_after_failure_with_backoff() -> None:
    engine, _, clock = make(externalVolumeDriver="rexray")
    tasks = launched(engine, 1, 2, 3)
    for node_id, task_id in tasks.items():
        engine.on_update(status(task_id, "TASK_RUNNING", f"agent-{node_id}-S0"))
    calls = engine.on_update(
        status(tasks[2], "TASK_FAILED", "agent-2-S0", message="VolumeDriver.Mount: 503 Service Unavailable")
    )
    assert Revive() in calls
    assert 2 not in engine.state.nodes
    # Too soon: backing off.
    early = engine.on_offers([offer(5)])
    assert accepts(early) == [] and engine.declines.by_rule["backoff"] == 1
    clock.now += 6
    (accept,) = accepts(engine.on_offers([offer(5)]))
    task = accept.task_infos[0]
    assert task["name"] == "elasticsearch2"
    assert task["task_id"]["value"] != tasks[2]
    params = [p["value"] for p in task["executor"]["container"]["docker"]["parameters"] if p["key"] == "mount"]
    assert any("source=elasticsearch2data" in p for p in params)


def test_unreachable_node_is_not_replaced() -> None:
    engine, _, _ = make()
    tasks = launched(engine, 1, 2, 3)
    for node_id, task_id in tasks.items():
        engine.on_update(status(task_id, "TASK_RUNNING", f"agent-{node_id}-S0"))
    engine.on_update(status(tasks[2], "TASK_UNREACHABLE", "agent-2-S0", uuid=None))
    assert accepts(engine.on_offers([offer(5)])) == []
    assert engine.declines.by_rule == {"cluster_full": 1}
    assert engine.state.view().present_nodes == 3


def test_a_second_live_task_for_a_node_id_is_killed_and_acknowledged() -> None:
    engine, _, _ = make()
    tasks = launched(engine, 1)
    engine.on_update(status(tasks[1], "TASK_RUNNING", "agent-1-S0"))
    stray = tasks[1][:-1] + ("0" if tasks[1][-1] != "0" else "1")
    calls = engine.on_update(status(stray, "TASK_RUNNING", "agent-9-S0"))
    assert Kill(stray, "agent-9-S0") in calls
    assert Acknowledge("agent-9-S0", stray, "dXVpZA==") in calls
    assert engine.state.nodes[1].task_id == tasks[1]


def test_malformed_input_changes_nothing() -> None:
    engine, store, _ = make()
    writes = len(store.writes)
    assert engine.on_update({"state": "TASK_RUNNING"}) == []
    assert engine.on_offers([{"id": {"value": "bad-offer"}}]) == [Decline(("bad-offer",), SHORT_REFUSE_S)]
    assert engine.on_offers([{"no": "id"}]) == []
    assert len(store.writes) == writes and not engine.state.nodes
    assert engine.declines.by_rule["malformed"] == 2


def test_suppress_and_revive_only_on_change() -> None:
    engine, _, _ = make(elasticsearchNodes="1")
    first = engine.on_offers([offer(1)])
    assert first[-1] == Suppress()
    task_id = accepts(first)[0].task_infos[0]["task_id"]["value"]
    assert not any(
        isinstance(c, (Suppress, Revive)) for c in engine.on_update(status(task_id, "TASK_RUNNING", "agent-1-S0"))
    )
    assert Revive() in engine.on_update(status(task_id, "TASK_KILLED", "agent-1-S0"))
