"""A re-sent copy of a status update still waiting in the driver shell's queue is dropped; once the
engine took the original, a copy is queued again (its acknowledgement may have been lost)."""

from __future__ import annotations

from typing import Any

from es_framework.core.engine import Engine
from es_framework.shell.driver import SchedulerShell
from es_framework.shell.queued_updates import QueuedUpdates, update_key
from strategies import strategy_for
from tests.core.test_engine import Clock, MemoryStore
from tests.harness.builders import config


def update(task: str = "t1", uuid: str | None = "eA==", state: str = "TASK_RUNNING") -> dict[str, Any]:
    status: dict[str, Any] = {"task_id": {"value": task}, "state": state, "agent_id": {"value": "a1"}}
    if uuid is not None:
        status["uuid"] = uuid
    return status


def test_a_copy_is_refused_while_the_original_waits_and_admitted_after_it_was_taken() -> None:
    queued = QueuedUpdates()
    assert queued.admit(update()) and not queued.admit(update())
    assert queued.admit(update(uuid="eQ==")) and queued.admit(update(task="t2"))
    assert len(queued) == 3
    queued.taken(update())
    assert queued.admit(update())


def test_updates_without_a_uuid_or_unreadable_are_always_queued() -> None:
    queued = QueuedUpdates()
    assert queued.admit(update(uuid=None)) and queued.admit(update(uuid=None))
    assert queued.admit({"nonsense": 1}) and queued.admit("not a dict")
    assert len(queued) == 0
    assert update_key(update()) == ("t1", "eA==") and update_key(update(uuid="")) is None


def test_the_shell_queues_one_of_several_copies_mesos_resends() -> None:
    cfg = config(mesosMaster="127.0.0.1:5050")
    engine = Engine(cfg, MemoryStore(), clock=Clock(), strategy=strategy_for(cfg))
    shell = SchedulerShell(engine.config, engine)  # its engine thread is not started: the queue only fills
    for _ in range(5):
        shell.statusUpdate(None, update())
    shell.statusUpdate(None, update(uuid="eQ=="))
    shell.statusUpdate(None, update(uuid=None))
    shell.statusUpdate(None, update(uuid=None))
    assert shell._events.qsize() == 4
