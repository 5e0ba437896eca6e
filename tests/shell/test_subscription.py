"""A Mesos subscription only while leading (es_framework/shell/subscription.py): the rules on their own,
then the shell keeping a subscription through a ZooKeeper blip and taking a stolen one back. The shell's
answer to "Framework failed over" and to a lost lock is in ``test_scheduler_shell.py``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from es_framework.core.leader_check import StateRefusedError
from es_framework.core.mesos_calls import Accept, Acknowledge, Decline, Kill, Message, Reconcile, Revive, Suppress
from es_framework.core.node_state import ClusterState
from es_framework.core.operations import OperatorError
from es_framework.core.state_document import state_to_json
from es_framework.shell import subscription as subscription_module
from es_framework.shell.state_store import Leadership
from es_framework.shell.subscription import ERROR_BACKOFF_MAX_S, MesosSubscription, SubscriptionGate, may_send
from tests.core.test_engine import MemoryStore
from tests.harness.builders import offer
from tests.shell.test_scheduler_shell import (
    FakeLock,
    PymesosLikeDriver,
    RecordingDriver,
    launched_task,
    running,
    start_shell,
    wait_for,
)

CALLS = (
    Accept("o", (), 5.0),
    Decline(("o",), 5.0),
    Kill("t", None),
    Acknowledge("a", "t", "u"),
    Reconcile(()),
    Suppress(),
    Revive(),
    Message("a", "e", b""),
)


def test_only_the_leader_sends_and_a_suspended_one_only_gives_offers_back() -> None:
    assert all(may_send(Leadership.LEADER, call) for call in CALLS)
    assert [type(c) for c in CALLS if may_send(Leadership.SUSPENDED, c)] == [Decline]
    for status in (Leadership.LOST, Leadership.NOT_LEADER):
        assert not any(may_send(status, call) for call in CALLS)


def test_the_gate_lets_go_on_a_lost_lock_at_once_and_on_a_suspension_after_the_session_timeout() -> None:
    gate = SubscriptionGate(session_timeout_s=4.0)
    for status in (Leadership.LOST, Leadership.NOT_LEADER):
        gate.observe(status, 0.0)
        assert (gate.why_let_go(status, 0.0) or "").startswith("lost the leader lock")
    gate.observe(Leadership.LEADER, 1.0)
    assert gate.why_let_go(Leadership.LEADER, 1.0) is None
    gate.observe(Leadership.SUSPENDED, 10.0)
    gate.observe(Leadership.SUSPENDED, 13.0)
    assert gate.why_let_go(Leadership.SUSPENDED, 13.0) is None
    assert "longer than the session timeout" in (gate.why_let_go(Leadership.SUSPENDED, 14.5) or "")
    gate.observe(Leadership.LEADER, 15.0)  # reconnected: the clock starts over at the next suspension
    gate.observe(Leadership.SUSPENDED, 16.0)
    assert gate.why_let_go(Leadership.SUSPENDED, 19.0) is None


def test_the_back_off_after_errors_doubles_up_to_a_cap_and_ends_with_a_subscription() -> None:
    gate = SubscriptionGate(session_timeout_s=4.0)
    delays = [gate.note_error(100.0) for _ in range(8)]
    assert delays[:3] == [1.0, 2.0, 4.0] and delays[-1] == ERROR_BACKOFF_MAX_S
    assert not gate.may_try(100.0 + ERROR_BACKOFF_MAX_S - 1) and gate.may_try(100.0 + ERROR_BACKOFF_MAX_S)
    gate.note_subscribed()
    assert gate.note_error(200.0) == 1.0


def test_framework_failed_over_while_still_leading_takes_the_framework_back_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    shell, stop, thread, drivers = start_shell(FakeLock(), PymesosLikeDriver)
    launched_task(shell, drivers[0])
    shell.error(drivers[0], "Framework failed over")  # a scheduler without the lock subscribed in a race
    wait_for(lambda: len(drivers) == 2)  # after the back-off, the state re-read: the lock is ours
    assert drivers[1].framework["id"] == {"value": "fw-1"} and drivers[1].calls == [("start", None)]
    assert "re-reading state before acting" in caplog.text
    time.sleep(1.2)
    assert len(drivers) == 2
    stop.set()
    thread.join(5)


def test_while_suspended_the_subscription_stays_open_and_only_declines_until_the_session_timeout() -> None:
    lock = FakeLock()
    shell, stop, thread, drivers = start_shell(lock, zookeeperMesosTimeout="1500")
    driver = drivers[0]
    task_id = launched_task(shell, driver)
    lock.status = Leadership.SUSPENDED
    shell.resourceOffers(driver, [offer(2)])  # given back through the open subscription
    wait_for(lambda: any(kind == "decline" for kind, _ in driver.calls))
    shell.statusUpdate(driver, running(task_id))
    time.sleep(0.3)
    assert not any(kind in ("ack", "stop") for kind, _ in driver.calls)
    wait_for(lambda: ("stop", True) in driver.calls)  # suspended longer than the session: presumed lost
    assert len(drivers) == 1
    lock.status = Leadership.LEADER  # the same session came back
    wait_for(lambda: len(drivers) == 2)
    stop.set()
    thread.join(5)


def test_a_stream_that_closes_while_the_lock_is_in_doubt_is_not_subscribed_again() -> None:
    lock = FakeLock()
    shell, stop, thread, drivers = start_shell(lock, PymesosLikeDriver)
    driver = drivers[0]
    assert isinstance(driver, PymesosLikeDriver)
    shell.registered(driver, {"value": "fw-1"}, {})
    lock.status = Leadership.SUSPENDED
    driver.close_stream()
    assert ("stop", True) in driver.calls and ("subscribe", None) not in driver.calls
    stop.set()
    thread.join(5)


def test_a_subscription_answered_while_the_lock_is_in_doubt_reconciles_once_it_is_held() -> None:
    lock = FakeLock()
    shell, stop, thread, drivers = start_shell(lock)
    driver = drivers[0]
    lock.status = Leadership.SUSPENDED
    shell.registered(driver, {"value": "fw-1"}, {})
    time.sleep(0.3)
    assert not any(kind == "send" for kind, _ in driver.calls)
    lock.status = Leadership.LEADER
    shell.resourceOffers(driver, [])  # any event: the engine sees the lock held again
    wait_for(lambda: any(kind == "send" for kind, _ in driver.calls))
    assert shell.engine.state.framework_id == "fw-1" and shell.published.registered
    stop.set()
    thread.join(5)


def test_a_state_torn_down_while_not_leading_is_never_subscribed_again() -> None:
    lock = FakeLock()
    shell, stop, thread, drivers = start_shell(lock)
    shell.registered(drivers[0], {"value": "fw-1"}, {})
    wait_for(lambda: shell.engine.state.framework_id == "fw-1")
    lock.status = Leadership.LOST
    wait_for(lambda: ("stop", True) in drivers[0].calls)
    store = shell.engine._store
    assert isinstance(store, MemoryStore)
    store.document = state_to_json(replace(shell.engine.state, torn_down_at=1.0))  # es-framework teardown ran
    lock.available = True
    thread.join(5)
    assert not thread.is_alive() and len(drivers) == 1
    stop.set()


def subscription(
    lock: FakeLock, rereads: list[bool], during_read: Callable[[], None] = lambda: None
) -> MesosSubscription:
    """The rules alone: ``rereads`` records each ``prepare``'s ``reread``; ``during_read`` runs while it reads."""

    def prepare(reread: bool) -> ClusterState:
        rereads.append(reread)
        during_read()
        return ClusterState(desired_nodes=3)

    def new_driver(framework_id: str | None) -> Any:
        return RecordingDriver(None, {}, "127.0.0.1:5050")

    return MesosSubscription(lock, 10.0, new_driver=new_driver, prepare=prepare, let_go_done=lambda: None)


def test_only_the_first_subscription_after_the_initial_load_skips_reading_the_state_again() -> None:
    lock, rereads = FakeLock(), list[bool]()  # held since the engine's initial load
    opened = subscription(lock, rereads)
    opened.open_if_leading()
    assert rereads == [False] and opened.driver is not None
    # The lock lost while no driver was held, then taken back: another scheduler may have led meanwhile.
    lock, rereads = FakeLock(), list[bool]()
    lock.status, lock.available = Leadership.LOST, True
    retaken = subscription(lock, rereads)
    retaken.open_if_leading()
    assert rereads == [True] and retaken.driver is not None


def test_a_lock_in_doubt_right_after_the_read_makes_the_next_attempt_read_again() -> None:
    lock, rereads = FakeLock(), list[bool]()

    def doubt_once() -> None:
        if len(rereads) == 1:
            lock.status = Leadership.SUSPENDED

    opened = subscription(lock, rereads, doubt_once)
    opened.open_if_leading()
    assert opened.driver is None
    lock.status = Leadership.LEADER
    opened.open_if_leading()
    assert rereads == [False, True] and opened.driver is not None


def test_an_exception_raised_into_let_go_still_stops_the_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    opened = subscription(FakeLock(), [])
    opened.open_if_leading()
    driver = opened.driver

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt  # what pymesos' interrupt_main delivers into the main thread, at any point

    monkeypatch.setattr(subscription_module.log, "log", interrupted)
    with pytest.raises(KeyboardInterrupt):
        opened.let_go(driver, "lost the leader lock")
    assert opened.driver is None and driver.calls[-1] == ("stop", True)


def test_a_state_that_cannot_be_read_again_still_declines_offers_and_answers_commands(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = FakeLock()
    shell, stop, thread, drivers = start_shell(lock)
    driver = drivers[0]
    launched_task(shell, driver)
    lock.status = Leadership.SUSPENDED
    shell.resourceOffers(driver, [offer(2)])
    wait_for(lambda: [kind for kind, _ in driver.calls].count("decline") == 1)
    store = shell.engine._store
    assert isinstance(store, MemoryStore)

    def unreadable() -> tuple[dict[str, Any] | None, int]:
        raise ConnectionError("ZooKeeper answers nothing")

    monkeypatch.setattr(store, "load", unreadable)
    lock.status = Leadership.LEADER  # held again, but the state cannot be read: act on nothing
    for n in (3, 4):
        shell.resourceOffers(driver, [offer(n)])
    wait_for(lambda: [kind for kind, _ in driver.calls].count("decline") == 3)
    with pytest.raises(OperatorError) as refused:
        shell.call(lambda: shell.engine.set_desired_nodes(5, copies_needed=None), timeout=3)
    assert refused.value.status == 503 and not any(kind == "launch" for kind, _ in driver.calls[-3:])
    assert caplog.text.count("could not re-read the state") == 1
    stop.set()
    thread.join(5)


def test_a_state_refused_at_re_leadership_stops_the_scheduler_instead_of_holding_the_lock(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lock, rereads = FakeLock(), list[bool]()

    def refused(reread: bool) -> ClusterState:
        rereads.append(reread)
        raise StateRefusedError("node 1 runs Elasticsearch 8.15.1, and the target 7.17.24 is older")

    drivers: list[Any] = []

    def new_driver(framework_id: str | None) -> Any:
        drivers.append(RecordingDriver(None, {}, "x"))
        return drivers[-1]

    sub = MesosSubscription(
        lock,
        10.0,
        new_driver=new_driver,
        prepare=refused,
        let_go_done=lambda: None,
    )
    with caplog.at_level(logging.ERROR, logger=subscription_module.__name__):
        sub.open_if_leading()
    assert sub.finished and drivers == [] and rereads == [False]
    assert "8.15.1" in caplog.text and "this scheduler stops" in caplog.text
    sub.open_if_leading()  # finished: never tries again
    assert rereads == [False]
