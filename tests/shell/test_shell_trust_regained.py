"""The leader lock held again after ZooKeeper was in doubt: the engine re-reads the state and reconciles
within a watch interval, not at whatever event comes next.

Chaos seed 503 (fault 456): ZooKeeper restarted (the leader's session kept, the lock ``SUSPENDED``),
then START_MAINTENANCE took node 1's machine DOWN. Its ``TASK_LOST`` carries no uuid and is never
re-sent (``Master::Http::_startMaintenance``, ``src/master/http.cpp``); the suspended engine left it
unacknowledged, and on a quiet cluster (offers suppressed, no update) nothing reached the engine thread
until the seed hosts' re-send 60 s later: node 1 stayed reserved on the machine that was down."""

from __future__ import annotations

import pytest

from es_framework.shell import driver as driver_module
from es_framework.shell.state_store import Leadership
from tests.harness.builders import offer
from tests.shell.test_scheduler_shell import FakeLock, start_shell, wait_for


def test_a_lock_held_again_rereads_and_reconciles_without_waiting_for_an_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(driver_module, "WATCH_INTERVAL_S", 0.05)
    lock = FakeLock()
    shell, stop, thread, drivers = start_shell(lock)
    try:
        driver = drivers[0]
        shell.registered(driver, {"value": "fw-1"}, {})
        shell.resourceOffers(driver, [offer(1)])
        wait_for(lambda: any(kind == "launch" for kind, _ in driver.calls))
        task_id = shell.engine.state.nodes[1].task_id
        running = {"task_id": {"value": task_id}, "state": "TASK_RUNNING", "agent_id": {"value": "agent-1-S0"}}
        shell.statusUpdate(driver, {**running, "uuid": "eA=="})
        wait_for(lambda: any(kind == "ack" for kind, _ in driver.calls))
        sends = sum(1 for kind, _ in driver.calls if kind == "send")

        lock.status = Leadership.SUSPENDED
        # The master's TASK_LOST of a machine DOWN (no uuid: never re-sent) while the lock is in doubt.
        lost = {**running, "state": "TASK_LOST", "reason": "REASON_AGENT_REMOVED", "source": "SOURCE_MASTER"}
        shell.statusUpdate(driver, lost)
        wait_for(lambda: not shell.engine.may_act)
        lock.status = Leadership.LEADER  # ZooKeeper back within the session; Mesos sends nothing more

        wait_for(lambda: shell.engine.may_act, timeout=3.0)
        wait_for(lambda: sum(1 for kind, _ in driver.calls if kind == "send") >= sends + 2, timeout=3.0)
        reconciles = [body["reconcile"]["tasks"] for kind, body in driver.calls if kind == "send"][sends:]
        assert reconciles[0] == [{"task_id": {"value": task_id}, "agent_id": {"value": "agent-1-S0"}}]
        assert reconciles[1] == []  # then every task (implicit)
    finally:
        stop.set()
        thread.join(5)
