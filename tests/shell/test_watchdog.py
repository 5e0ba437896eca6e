"""The heartbeat watchdog (es_framework/shell/watchdog.py) in the driver shell: only events from Mesos
keep a subscription alive, and a silent one is let go and opened again through the checked path."""

from __future__ import annotations

import logging

import pytest

from es_framework.shell.watchdog import HeartbeatWatchdog
from tests.shell.test_scheduler_shell import FakeLock, PymesosLikeDriver, start_shell, wait_for


def test_only_events_from_mesos_feed_the_watchdog_and_a_silent_subscription_is_let_go(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    now = [0.0]
    shell, stop, thread, drivers = start_shell(FakeLock(), PymesosLikeDriver)
    shell._watchdog = HeartbeatWatchdog(clock=lambda: now[0])
    shell.registered(drivers[0], {"value": "fw-1"}, {})
    wait_for(lambda: shell.subscribed)
    now[0] = 60.0
    shell.processHeartBeat(drivers[0])  # a heartbeat keeps it alive
    now[0] = 120.0
    # Internal events (a timer, an API command) say nothing about the event stream.
    shell._put("resend_seeds")
    assert shell.call(lambda: ("taken", [])) == "taken"
    assert shell._watchdog.why_expired() is None
    now[0] = 140.0  # 80 s without an event from Mesos: the stream is half-open
    wait_for(lambda: len(drivers) == 2)
    assert ("stop", True) in drivers[0].calls and ("stop", False) not in drivers[0].calls
    assert drivers[1].framework["id"] == {"value": "fw-1"} and drivers[1].calls == [("start", None)]
    (line,) = [r for r in caplog.records if r.getMessage().startswith("no event from the master for 75s")]
    assert line.levelno == logging.ERROR and "only while this scheduler holds the leader lock" in line.getMessage()
    assert "re-reading state before acting" in caplog.text
    stop.set()
    thread.join(5)
