"""The pymesos shell with a recording stand-in for the driver (the real driver runs in the devcluster tests)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

from es_framework.core.engine import Engine
from es_framework.core.mesos_calls import Accept
from es_framework.core.operations import OperatorError
from es_framework.dev.scheduler import CRASH_POINTS, TEST_CRASH_STATUS, TestHooks
from es_framework.shell.driver import SchedulerShell, _Event
from es_framework.shell.framework_info import framework_info
from es_framework.shell.hooks import CALLBACKS, Hooks
from es_framework.shell.state_store import Leadership
from strategies import strategy_for
from tests.core.test_engine import Clock, MemoryStore
from tests.harness.builders import config, offer


class RecordingDriver:
    def __init__(self, sched: Any, framework: dict[str, Any], master: str, **kwargs: Any) -> None:
        self.sched, self.framework, self.master_uri, self.kwargs = sched, framework, master, kwargs
        self.calls: list[tuple[str, Any]] = []
        self.connected = True
        self.framework_id = "fw-1"
        self.aborted = False
        self.master = master

    def start(self) -> None:
        self.calls.append(("start", None))

    def stop(self, failover: bool = False) -> None:
        self.calls.append(("stop", failover))

    def launchTasks(self, offer_ids: Any, tasks: Any, filters: Any = None) -> None:
        self.calls.append(("launch", (offer_ids, [t["task_id"]["value"] for t in tasks], filters)))

    def declineOffer(self, offer_ids: Any, filters: Any = None) -> None:
        self.calls.append(("decline", (offer_ids, filters)))

    def acknowledgeStatusUpdate(self, status: Any) -> None:
        self.calls.append(("ack", status))

    def suppressOffers(self) -> None:
        self.calls.append(("suppress", None))

    def reviveOffers(self) -> None:
        self.calls.append(("revive", None))

    def killTask(self, task_id: Any) -> None:
        self.calls.append(("kill", task_id))

    def sendFrameworkMessage(self, executor_id: Any, agent_id: Any, data: Any) -> None:
        self.calls.append(("message", (executor_id, agent_id, data)))

    def _send(self, body: Any) -> None:
        self.calls.append(("send", body))


class FakeLock:
    """The leader lock as the shell sees it; a test moves ``status`` and decides whether it can be taken back."""

    def __init__(self) -> None:
        self.status = Leadership.LEADER
        self.available = False
        self.attempts = 0

    @property
    def leadership(self) -> Leadership:
        return self.status

    def acquire_leadership(self, timeout: float | None = None) -> bool:
        self.attempts += 1
        if self.available:
            self.status = Leadership.LEADER
        return self.status is Leadership.LEADER


class PymesosLikeDriver(RecordingDriver):
    """As pymesos 0.3.15's driver: a closed event stream is reported to ``disconnected`` and then, unless
    the driver was stopped meanwhile, subscribed again at once."""

    def stop(self, failover: bool = False) -> None:
        super().stop(failover)
        self.aborted = True

    def close_stream(self) -> None:
        self.sched.disconnected(self)
        if not self.aborted:
            self.calls.append(("subscribe", None))


def start_shell(
    lock: FakeLock | None = None, driver_class: type[RecordingDriver] = RecordingDriver, **flags: str
) -> tuple[SchedulerShell, threading.Event, threading.Thread, list[RecordingDriver]]:
    drivers: list[RecordingDriver] = []

    def factory(*args: Any, **kwargs: Any) -> RecordingDriver:
        drivers.append(driver_class(*args, **kwargs))
        return drivers[-1]

    engine = Engine(
        config(mesosMaster="127.0.0.1:5050", **flags),
        MemoryStore(),
        clock=Clock(),
        strategy=strategy_for(config(mesosMaster="127.0.0.1:5050", **flags)),
    )
    shell = SchedulerShell(engine.config, engine, driver_factory=factory, lock=lock or FakeLock())
    stop = threading.Event()
    thread = threading.Thread(target=shell.run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not drivers and time.monotonic() < deadline:
        time.sleep(0.01)
    return shell, stop, thread, drivers


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_framework_info_never_leaves_pymesos_defaults_in_charge() -> None:
    info = framework_info(config(frameworkFailoverTimeout="86400", frameworkPrincipal="es"), "fw-9")
    assert info["failover_timeout"] == 86400
    assert info["checkpoint"] is True
    assert {"type": "PARTITION_AWARE"} in info["capabilities"]
    assert info["id"] == {"value": "fw-9"} and info["principal"] == "es" and info["name"] == "elasticsearch"
    role_info = framework_info(config(frameworkRole="search"), None)
    assert role_info["roles"] == ["search"] and "id" not in role_info


def test_driver_runs_with_failover_and_stops_with_failover() -> None:
    _shell, stop, thread, drivers = start_shell()
    driver = drivers[0]
    assert driver.kwargs["failover"] is True and driver.kwargs["implicit_acknowledgements"] is False
    assert driver.master_uri == "127.0.0.1:5050"
    stop.set()
    thread.join(5)
    assert ("stop", True) in driver.calls


def test_callbacks_reach_the_driver_in_order_and_never_raise() -> None:
    shell, stop, thread, drivers = start_shell()
    driver = drivers[0]
    shell.registered(driver, {"value": "fw-1"}, {})
    shell.resourceOffers(driver, [offer(1), {"garbage": True}])
    shell.statusUpdate(driver, {"nonsense": 1})  # malformed: logged, nothing raised
    wait_for(lambda: any(kind == "launch" for kind, _ in driver.calls))
    sends = [body for kind, body in driver.calls if kind == "send"]
    assert sends and sends[0]["type"] == "RECONCILE" and sends[0]["reconcile"]["tasks"] == []
    (launch,) = [payload for kind, payload in driver.calls if kind == "launch"]
    offer_ids, task_ids, filters = launch
    assert offer_ids == [{"value": "offer-1"}] and task_ids[0].startswith("elasticsearch-node1-")
    assert filters == {"refuse_seconds": 5.0}
    task_id = task_ids[0]
    shell.statusUpdate(
        driver,
        {"task_id": {"value": task_id}, "state": "TASK_RUNNING", "agent_id": {"value": "agent-1-S0"}, "uuid": "eA=="},
    )
    wait_for(lambda: any(kind == "ack" for kind, _ in driver.calls))
    (ack,) = [payload for kind, payload in driver.calls if kind == "ack"]
    assert ack == {"agent_id": {"value": "agent-1-S0"}, "task_id": {"value": task_id}, "uuid": "eA=="}
    # Reregistration reconciles the known task explicitly, with its agent id.
    shell.reregistered(driver, {})
    wait_for(lambda: len([b for k, b in driver.calls if k == "send"]) >= 3)
    explicit = [b for k, b in driver.calls if k == "send"][1]
    assert explicit["reconcile"]["tasks"] == [{"task_id": {"value": task_id}, "agent_id": {"value": "agent-1-S0"}}]
    stop.set()
    thread.join(5)


def test_a_dead_driver_is_replaced_with_the_same_framework_id() -> None:
    shell, stop, thread, drivers = start_shell()
    shell.registered(drivers[0], {"value": "fw-1"}, {})
    wait_for(lambda: shell.engine.state.framework_id == "fw-1")
    drivers[0].aborted = True
    wait_for(lambda: len(drivers) == 2)
    assert drivers[1].framework["id"] == {"value": "fw-1"}
    assert ("stop", True) in drivers[0].calls and ("stop", False) not in drivers[0].calls
    stop.set()
    thread.join(5)


# --- hook points (the end-to-end tests' hooks themselves: tests/dev/test_dev_scheduler.py) -----------


class RecordingHooks(Hooks):
    def __init__(self, driver_calls: list[tuple[str, Any]]) -> None:
        self.seen: list[tuple[str, Any]] = []
        self._driver_calls = driver_calls

    def after_launch_write(self, call: Accept) -> None:
        self.seen.append(("after_launch_write", len(self._driver_calls)))

    def after_accept(self, call: Accept) -> None:
        self.seen.append(("after_accept", len(self._driver_calls)))

    def before_callback(self, name: str) -> None:
        self.seen.append(("before", name))

    def after_callback(self, name: str) -> None:
        self.seen.append(("after", name))


def test_every_callback_of_the_shell_has_its_hook_points() -> None:
    assert all(callable(getattr(SchedulerShell, name, None)) for name in CALLBACKS)
    engine = Engine(
        config(mesosMaster="127.0.0.1:5050"),
        MemoryStore(),
        clock=Clock(),
        strategy=strategy_for(config(mesosMaster="127.0.0.1:5050")),
    )
    calls: list[tuple[str, Any]] = []
    hooks = RecordingHooks(calls)
    shell = SchedulerShell(engine.config, engine, hooks=hooks)
    shell.processHeartBeat(None)
    shell.statusUpdate(None, {"nonsense": 1})
    assert hooks.seen == [
        ("before", "processHeartBeat"),
        ("after", "processHeartBeat"),
        ("before", "statusUpdate"),
        ("after", "statusUpdate"),
    ]


def test_the_launch_hooks_come_before_and_after_the_accept() -> None:
    engine = Engine(
        config(mesosMaster="127.0.0.1:5050"),
        MemoryStore(),
        clock=Clock(),
        strategy=strategy_for(config(mesosMaster="127.0.0.1:5050")),
    )
    driver = RecordingDriver(None, {}, "m")
    hooks = RecordingHooks(driver.calls)
    shell = SchedulerShell(engine.config, engine, hooks=hooks)
    shell._subscription._driver = driver
    (accept,) = [c for c in engine.on_offers([offer(1)]) if isinstance(c, Accept)]
    assert engine.state.nodes[1].task_id == accept.task_infos[0]["task_id"]["value"]  # written before the hook
    shell._send(accept)
    assert hooks.seen == [("after_launch_write", 0), ("after_accept", 1)]
    assert [kind for kind, _ in driver.calls] == ["launch"]


def test_a_hook_that_raises_before_a_callback_fails_it_like_a_real_failure() -> None:
    class Raising(Hooks):
        def before_callback(self, name: str) -> None:
            raise RuntimeError("chaos")

    engine = Engine(
        config(mesosMaster="127.0.0.1:5050"),
        MemoryStore(),
        clock=Clock(),
        strategy=strategy_for(config(mesosMaster="127.0.0.1:5050")),
    )
    shell = SchedulerShell(engine.config, engine, hooks=Raising())
    shell.resourceOffers(None, [offer(1)])  # contained; the offer is given back
    assert shell._events.get_nowait() == _Event("decline", ["offer-1"])


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_crash_hook_exits_around_the_accept(point: str, monkeypatch: pytest.MonkeyPatch) -> None:
    exits: list[int] = []

    def fake_exit(status: int) -> None:
        exits.append(status)
        raise SystemExit(status)

    monkeypatch.setattr("es_framework.dev.scheduler.os._exit", fake_exit)
    engine = Engine(
        config(mesosMaster="127.0.0.1:5050"),
        MemoryStore(),
        clock=Clock(),
        strategy=strategy_for(config(mesosMaster="127.0.0.1:5050")),
    )
    shell = SchedulerShell(engine.config, engine, hooks=TestHooks(crash_at=point))
    driver = RecordingDriver(shell, {}, "m")
    shell._subscription._driver = driver
    (accept,) = [c for c in engine.on_offers([offer(1)]) if isinstance(c, Accept)]
    with pytest.raises(SystemExit):
        shell._send(accept)
    assert exits == [TEST_CRASH_STATUS]
    launches = [c for c in driver.calls if c[0] == "launch"]
    assert len(launches) == (1 if point == "after_accept" else 0)


def test_a_raising_callback_is_contained_and_offers_are_given_back() -> None:
    shell, stop, thread, drivers = start_shell()
    shell._hooks = TestHooks(raise_in="resourceOffers")
    driver = drivers[0]
    shell.registered(driver, {"value": "fw-1"}, {})
    shell.resourceOffers(driver, [offer(1), offer(2)])  # raises inside: logged, offers declined
    wait_for(lambda: any(kind == "decline" for kind, _ in driver.calls))
    (decline,) = [payload for kind, payload in driver.calls if kind == "decline"]
    assert decline == ([{"value": "offer-1"}, {"value": "offer-2"}], {"refuse_seconds": 5.0})
    shell.resourceOffers(driver, [offer(3)])  # only the first call raises
    wait_for(lambda: any(kind == "launch" for kind, _ in driver.calls))
    assert not driver.aborted and ("stop", False) not in driver.calls
    stop.set()
    thread.join(5)


def test_a_status_update_callback_that_raises_leaves_the_update_unacknowledged() -> None:
    shell, stop, thread, drivers = start_shell()
    shell._hooks = TestHooks(raise_in="statusUpdate")
    driver = drivers[0]
    shell.registered(driver, {"value": "fw-1"}, {})
    shell.resourceOffers(driver, [offer(1)])
    wait_for(lambda: any(kind == "launch" for kind, _ in driver.calls))
    task_id = next(payload for kind, payload in driver.calls if kind == "launch")[1][0]
    update = {
        "task_id": {"value": task_id},
        "state": "TASK_RUNNING",
        "agent_id": {"value": "agent-1-S0"},
        "uuid": "eA==",
    }
    shell.statusUpdate(driver, update)  # raises inside: dropped, not acknowledged
    time.sleep(0.2)
    assert not any(kind == "ack" for kind, _ in driver.calls)
    shell.statusUpdate(driver, update)  # Mesos re-sends it
    wait_for(lambda: any(kind == "ack" for kind, _ in driver.calls))
    stop.set()
    thread.join(5)


def test_when_the_store_is_trustworthy_again_state_is_reread_and_tasks_reconciled() -> None:
    lock = FakeLock()
    drivers: list[RecordingDriver] = []

    def factory(*args: Any, **kwargs: Any) -> RecordingDriver:
        drivers.append(RecordingDriver(*args, **kwargs))
        return drivers[-1]

    engine = Engine(
        config(mesosMaster="127.0.0.1:5050"),
        MemoryStore(),
        clock=Clock(),
        strategy=strategy_for(config(mesosMaster="127.0.0.1:5050")),
    )
    shell = SchedulerShell(engine.config, engine, driver_factory=factory, lock=lock)
    stop = threading.Event()
    thread = threading.Thread(target=shell.run, args=(stop,), daemon=True)
    thread.start()
    wait_for(lambda: bool(drivers))
    driver = drivers[0]
    shell.registered(driver, {"value": "fw-1"}, {})
    shell.resourceOffers(driver, [offer(1)])
    wait_for(lambda: any(kind == "launch" for kind, _ in driver.calls))
    sends = len([1 for kind, _ in driver.calls if kind == "send"])
    lock.status = Leadership.SUSPENDED
    shell.resourceOffers(driver, [offer(2)])  # declined: the store is not trustworthy
    wait_for(lambda: any(kind == "decline" for kind, _ in driver.calls))
    lock.status = Leadership.LEADER
    shell.processHeartBeat(driver)
    shell.resourceOffers(driver, [offer(3)])
    wait_for(lambda: len([1 for kind, _ in driver.calls if kind == "send"]) >= sends + 2)
    reconciles = [body["reconcile"]["tasks"] for kind, body in driver.calls if kind == "send"][sends:]
    node_1 = engine.state.nodes[1]
    assert reconciles[0] == [{"task_id": {"value": node_1.task_id}, "agent_id": {"value": "agent-1-S0"}}]
    assert reconciles[1] == []
    stop.set()
    thread.join(5)


def test_queued_status_updates_are_handled_as_one_batch() -> None:
    engine = Engine(
        config(mesosMaster="127.0.0.1:5050"),
        MemoryStore(),
        clock=Clock(),
        strategy=strategy_for(config(mesosMaster="127.0.0.1:5050")),
    )
    shell = SchedulerShell(engine.config, engine, driver_factory=RecordingDriver)
    for n in (2, 3):
        shell._events.put(_Event("update", {"n": n}))
    shell._events.put(_Event("offers", []))
    shell._events.put(_Event("update", {"n": 4}))
    batch = shell._more_updates(_Event("update", {"n": 1}))
    assert batch == _Event("updates", [{"n": 1}, {"n": 2}, {"n": 3}])
    assert shell._events.get_nowait().kind == "offers"


def test_framework_messages_go_out_base64_encoded() -> None:
    from es_framework.core.mesos_calls import Message

    sent: list[tuple[Any, ...]] = []

    class MessagingDriver(RecordingDriver):
        def sendFrameworkMessage(self, executor_id: Any, agent_id: Any, data: Any) -> None:
            sent.append((executor_id, agent_id, data))

    engine = Engine(
        config(mesosMaster="127.0.0.1:5050"),
        MemoryStore(),
        clock=Clock(),
        strategy=strategy_for(config(mesosMaster="127.0.0.1:5050")),
    )
    shell = SchedulerShell(engine.config, engine, driver_factory=MessagingDriver)
    shell._subscription._driver = MessagingDriver(shell, {}, "127.0.0.1:5050")
    shell._send(Message("agent-1", "exec-1", b'{"version": 1}'))
    assert sent == [({"value": "exec-1"}, {"value": "agent-1"}, "eyJ2ZXJzaW9uIjogMX0=")]


# --- a subscription only while leading (es_framework/shell/subscription.py) ----------------------------


def running(task_id: str) -> dict[str, Any]:
    return {"task_id": {"value": task_id}, "state": "TASK_RUNNING", "agent_id": {"value": "agent-1-S0"}, "uuid": "eA=="}


def launched_task(shell: SchedulerShell, driver: RecordingDriver) -> str:
    """Register ``driver`` and let it launch node 1 on one offer; its task id."""
    shell.registered(driver, {"value": "fw-1"}, {})
    shell.resourceOffers(driver, [offer(1)])
    wait_for(lambda: any(kind == "launch" for kind, _ in driver.calls))
    task_id: str = next(payload for kind, payload in driver.calls if kind == "launch")[1][0]
    return task_id


def let_go_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "stopped the Mesos driver with failover" in r.getMessage()]


def test_framework_failed_over_stops_the_driver_with_failover_and_it_never_reconnects(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    lock = FakeLock()
    shell, stop, thread, drivers = start_shell(lock, PymesosLikeDriver)
    driver = drivers[0]
    assert isinstance(driver, PymesosLikeDriver)
    task_id = launched_task(shell, driver)
    shell.error(driver, "Framework failed over")  # the master's message to the subscription it replaced
    assert driver.calls[-1] == ("stop", True)  # at once, on pymesos' thread, before it reads on
    stopped = len(driver.calls)
    lock.status = Leadership.LOST  # ZooKeeper tells the paused leader its session expired
    driver.close_stream()  # the master closes the old stream: pymesos would SUBSCRIBE again now
    shell.resourceOffers(driver, [offer(2)])  # events that slipped through act on nothing
    shell.statusUpdate(driver, running(task_id))
    time.sleep(2.5)  # past the back-off, a few watch turns
    assert driver.calls[stopped:] == [], "the stopped driver subscribed again or sent calls"
    assert len(drivers) == 1 and lock.attempts >= 1  # no new driver while another scheduler holds the lock
    assert ("stop", False) not in driver.calls  # never a TEARDOWN
    (line,) = let_go_lines(caplog)
    assert "'Framework failed over'" in line
    assert not shell.published.registered
    stop.set()
    thread.join(5)


def test_losing_the_lock_stops_the_driver_and_nothing_is_sent_until_it_is_held_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    lock = FakeLock()
    shell, stop, thread, drivers = start_shell(lock)
    driver = drivers[0]
    task_id = launched_task(shell, driver)
    lock.status = Leadership.LOST
    wait_for(lambda: ("stop", True) in driver.calls)
    stopped = len(driver.calls)
    shell.resourceOffers(driver, [offer(2)])  # no DECLINE from a scheduler that does not lead
    shell.statusUpdate(driver, running(task_id))  # no ACKNOWLEDGE either
    with pytest.raises(OperatorError):
        shell.call(lambda: shell.engine.set_desired_nodes(5, copies_needed=None))
    time.sleep(2.2)
    assert driver.calls[stopped:] == [] and len(drivers) == 1
    (line,) = let_go_lines(caplog)  # said once, at WARNING
    assert line.startswith("lost the leader lock") and caplog.text.count("lost the leader lock") == 1
    assert next(r for r in caplog.records if r.getMessage() == line).levelno == logging.WARNING

    lock.available = True  # the lock comes back: state re-read, same framework id, reconciled
    wait_for(lambda: len(drivers) == 2)
    assert drivers[1].framework["id"] == {"value": "fw-1"}
    shell.registered(drivers[1], {"value": "fw-1"}, {})
    wait_for(lambda: len([b for k, b in drivers[1].calls if k == "send"]) >= 2)
    explicit = next(b for k, b in drivers[1].calls if k == "send")
    assert explicit["reconcile"]["tasks"] == [{"task_id": {"value": task_id}, "agent_id": {"value": "agent-1-S0"}}]
    stop.set()
    thread.join(5)
