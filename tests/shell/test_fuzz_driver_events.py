"""Fuzzing what pymesos hands the scheduler shell: garbage events through pymesos' own dispatch
(``MesosSchedulerDriver.on_event``, guarded by ``shell/mesos_objects.py``) and garbage arguments to
every callback of :class:`SchedulerShell`. Nothing may escape (an exception ends pymesos' loop), the
driver is never stopped without failover (that would be a TEARDOWN), and the shell still launches
a node from a good offer afterwards.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from addict import Dict  # type: ignore[import-untyped]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from es_framework.shell.driver import SchedulerShell
from es_framework.shell.mesos_objects import guard_dispatch
from tests.core.test_fuzz_status_updates import NASTY
from tests.harness.builders import offer
from tests.shell.test_scheduler_shell import RecordingDriver, start_shell, wait_for

FUZZ = settings(
    max_examples=60, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
)

#: The v1 scheduler event types (mesos ``include/mesos/v1/scheduler/scheduler.proto``), and some that are not.
EVENT_TYPES = [
    "OFFERS",
    "INVERSE_OFFERS",
    "RESCIND",
    "RESCIND_INVERSE_OFFER",
    "UPDATE",
    "UPDATE_OPERATION_STATUS",
    "MESSAGE",
    "FAILURE",
    "ERROR",
    "HEARTBEAT",
    "UNKNOWN",
    "NEW_TYPE",
    "offers",
    "",
]
GARBAGE = st.one_of(st.sampled_from(NASTY), st.text(max_size=5), st.integers())
PAYLOAD = st.one_of(
    GARBAGE,
    st.dictionaries(
        st.sampled_from(
            [
                "offers",
                "inverse_offers",
                "offer_id",
                "inverse_offer_id",
                "status",
                "executor_id",
                "agent_id",
                "data",
                "message",
                "uuid",
            ]
        ),
        st.one_of(
            GARBAGE,
            st.lists(st.one_of(GARBAGE, st.just(offer(1)), st.just({"agent_id": {"value": "a1"}})), max_size=3),
            st.just({"value": "x"}),
            st.just({"task_id": {"value": "elasticsearch-node1-" + "0" * 32}, "state": "TASK_RUNNING"}),
        ),
        max_size=4,
    ),
)
EVENTS = st.one_of(
    st.builds(lambda kind, payload: {"type": kind, kind.lower(): payload}, st.sampled_from(EVENT_TYPES), PAYLOAD),
    st.builds(lambda kind: {"type": kind}, st.sampled_from(EVENT_TYPES)),
    st.builds(lambda kind: {"type": kind}, GARBAGE),
    GARBAGE.map(lambda g: {"no_type": g}),
)

CALLBACKS = {
    "resourceOffers": 1,
    "offerRescinded": 1,
    "statusUpdate": 1,
    "frameworkMessage": 3,
    "slaveLost": 1,
    "executorLost": 3,
    "inverseOffers": 1,
    "inverseOfferRescinded": 1,
    "operationStatusUpdate": 1,
    "processHeartBeat": 0,
    "reregistered": 1,
}
ARGUMENT = st.one_of(
    GARBAGE,
    st.lists(st.one_of(GARBAGE, st.just(offer(7)), st.just(Dict(offer(8)))), max_size=3),
    st.just(Dict({"value": "x"})),
    st.just({"task_id": 5, "state": ["TASK_RUNNING"]}),
)
CALLS = st.lists(
    st.tuples(st.sampled_from(sorted(CALLBACKS)), st.lists(ARGUMENT, min_size=3, max_size=3)), min_size=1, max_size=8
)


def pymesos_driver(shell: Any) -> Any:
    """A real pymesos driver, never started: only its event dispatch is used."""
    from pymesos import MesosSchedulerDriver

    driver = MesosSchedulerDriver(shell, {"user": "", "name": "fuzz"}, "127.0.0.1:5050", use_addict=True)
    driver._started = True
    return guard_dispatch(driver)


class CountingShell:
    """Stands in for the shell when only pymesos' dispatch is fuzzed: records the callbacks it gets."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return lambda *args: self.calls.append(name)


@FUZZ
@given(events=st.lists(EVENTS, min_size=1, max_size=10))
def test_pymesos_dispatch_skips_what_it_cannot_read(events: list[Any]) -> None:
    driver = pymesos_driver(CountingShell())
    for event in events:
        driver.on_event(event)  # never raises


def test_an_unreadable_subscribed_ends_the_driver_so_a_new_one_subscribes() -> None:
    driver = pymesos_driver(CountingShell())
    with pytest.raises(KeyError):
        driver.on_event({"type": "SUBSCRIBED", "subscribed": {}})


def test_a_malformed_update_event_is_logged_with_its_type_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    driver = pymesos_driver(CountingShell())
    with caplog.at_level(logging.ERROR, "es_framework.shell.driver"):
        driver.on_event({"type": "UPDATE", "update": {"no_status": 1}})
    assert "skipping a Mesos UPDATE event that cannot be read: KeyError: 'status'" in caplog.text


@pytest.fixture(scope="module")
def running_shell() -> Any:
    shell, stop, thread, drivers = start_shell()
    yield shell, drivers
    stop.set()
    thread.join(10)


def still_works(shell: SchedulerShell, driver: RecordingDriver, n: int) -> None:
    """No TEARDOWN, the engine thread alive, and a good offer launches (or, all placed, is declined)."""
    assert ("stop", False) not in driver.calls
    assert shell._worker.is_alive()
    before = len(driver.calls)
    shell.resourceOffers(driver, [Dict(offer(n, agent_id=f"fuzz-{n}-S0", hostname=f"fuzz{n}.example.com"))])
    wait_for(lambda: any(c[0] in ("launch", "decline") for c in driver.calls[before:]))


@FUZZ
@given(calls=CALLS)
def test_garbage_callbacks_never_escape_and_never_tear_down(running_shell: Any, calls: list[Any]) -> None:
    shell, drivers = running_shell
    driver = drivers[-1]
    for name, arguments in calls:
        getattr(shell, name)(driver, *arguments[: CALLBACKS[name]])
    still_works(shell, driver, 1 + len(calls) % 3)


def test_inverse_offers_of_a_maintenance_window_reach_the_engine_thread_and_are_not_fatal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Found by fuzzing: the shell had no inverseOffers (nor inverseOfferRescinded, operationStatusUpdate);
    # pymesos calls them by name, and the AttributeError ended its loop: every maintenance schedule
    # posted to the master cost the subscription. Inverse offers are now queued for the engine.
    import queue

    shell = SchedulerShell.__new__(SchedulerShell)
    shell._events = queue.Queue()
    seen: list[str] = []

    def guard(name: str, body: Any, on_failure: Any = None) -> None:
        seen.append(name)
        body()

    shell._guard = guard  # type: ignore[method-assign]
    driver = pymesos_driver(shell)
    inverse = {"id": {"value": "io-1"}, "agent_id": {"value": "agent-3-S0"}, "unavailability": {"start": {}}}
    with caplog.at_level(logging.INFO, "es_framework.shell.driver"):
        driver.on_event({"type": "INVERSE_OFFERS", "inverse_offers": {"inverse_offers": [inverse]}})
        driver.on_event(
            {"type": "RESCIND_INVERSE_OFFER", "rescind_inverse_offer": {"inverse_offer_id": {"value": "io-1"}}}
        )
        driver.on_event({"type": "UPDATE_OPERATION_STATUS", "update_operation_status": {"status": {"state": "X"}}})
    assert seen == ["inverseOffers", "inverseOfferRescinded", "operationStatusUpdate"]
    queued = shell._events.get_nowait()
    assert (queued.kind, queued.payload) == ("inverse_offers", [inverse])
    assert "skipping" not in caplog.text


def test_the_shell_guards_every_driver_it_makes() -> None:
    made: list[Any] = []

    class WithDispatch(RecordingDriver):
        def on_event(self, event: Any) -> None:
            raise KeyError("status")

    def factory(*args: Any, **kwargs: Any) -> Any:
        made.append(WithDispatch(*args, **kwargs))
        return made[-1]

    from tests.core.test_engine import make

    engine, _, _ = make(mesosMaster="127.0.0.1:5050")
    shell = SchedulerShell(engine.config, engine, driver_factory=factory)
    driver = shell._new_driver(None)
    driver.on_event({"type": "UPDATE", "update": {}})  # skipped, not raised
    assert made == [driver]
