"""A re-sent copy of a status update still waiting in the driver shell's queue is dropped; once the
engine took the original, a copy is queued again (its acknowledgement may have been lost)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from es_framework.core.engine import Engine
from es_framework.core.node_state import NodeStateError
from es_framework.core.status_updates import READ_FIELDS, parse_status
from es_framework.shell.driver import SchedulerShell
from es_framework.shell.queued_updates import QueuedUpdates, slim, update_key
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


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
STATES = st.sampled_from(["TASK_RUNNING", "TASK_FAILED", "TASK_LOST", "TASK_LAUNCHING", "bogus"])


@given(
    base=st.fixed_dictionaries(
        {"task_id": st.just({"value": "elasticsearch-node3-abc"}), "state": STATES},
        optional={
            key: JSON
            for key in (*READ_FIELDS, "container_status", "executor_id", "labels", "check_status")
            if key not in ("task_id", "state")
        },
    )
)
def test_a_queued_update_keeps_everything_the_engine_reads(base: dict[str, Any]) -> None:
    slimmed = slim(base)
    assert set(slimmed) <= set(READ_FIELDS) and all(slimmed[key] == base[key] for key in slimmed)
    try:
        want: object = parse_status(base)
    except NodeStateError as error:
        want = str(error)
    try:
        got: object = parse_status(slimmed)
    except NodeStateError as error:
        got = str(error)
    assert got == want


def test_the_shell_queues_only_what_the_engine_reads_of_an_update() -> None:
    cfg = config(mesosMaster="127.0.0.1:5050")
    engine = Engine(cfg, MemoryStore(), clock=Clock(), strategy=strategy_for(cfg))
    shell = SchedulerShell(engine.config, engine)
    status = {
        **update(),
        "container_status": {"network_infos": [{"ip_addresses": [{"ip_address": "10.0.0.7"}]}], "executor_pid": 7},
        "executor_id": {"value": "e1"},
        "message": "Elasticsearch answers",
    }
    shell.statusUpdate(None, status)
    queued = shell._events.get_nowait().payload
    assert queued == {key: status[key] for key in ("task_id", "state", "agent_id", "uuid", "message")}
    assert slim("not a dict") == "not a dict"
