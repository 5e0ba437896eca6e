"""How the driver shell stops and what it says meanwhile: SIGINT (also when the process started with
SIGINT ignored), the stop in local mode, and disconnects it caused itself."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from es_framework.config import MesosMaster
from es_framework.core.engine import Engine
from es_framework.shell.driver import SchedulerShell
from strategies import strategy_for
from tests.core.test_engine import Clock, MemoryStore
from tests.harness.builders import config
from tests.shell.test_scheduler_shell import FakeLock, PymesosLikeDriver, RecordingDriver, start_shell, wait_for

ROOT = Path(__file__).resolve().parents[2]
DRIVER_LOG = "es_framework.shell.driver"


def driver_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == DRIVER_LOG]


# --- SIGINT -------------------------------------------------------------------------------------------

#: A scheduler shell in the main thread whose driver imports pymesos as the real one does (pymesos then
#: installs its SIGINT handler around the one it finds), interrupted by a SIGINT once subscribed.
SIGINT_SCRIPT = textwrap.dedent(
    """
    import logging, os, signal, sys, threading, time
    from es_framework.core.engine import Engine
    from es_framework.shell.driver import SchedulerShell
    from strategies import strategy_for
    from tests.core.test_engine import Clock, MemoryStore
    from tests.harness.builders import config
    from tests.shell.test_scheduler_shell import RecordingDriver

    logging.basicConfig(level=logging.INFO)
    print("ignored at start:", signal.getsignal(signal.SIGINT) is signal.SIG_IGN, flush=True)
    started = threading.Event()

    def factory(*args, **kwargs):
        import pymesos  # noqa: F401 - what MesosSchedulerDriver's import does to SIGINT
        driver = RecordingDriver(*args, **kwargs)
        driver.start = started.set
        return driver

    cfg = config(mesosMaster="127.0.0.1:5050")
    engine = Engine(cfg, MemoryStore(), clock=Clock(), strategy=strategy_for(cfg))
    shell = SchedulerShell(cfg, engine, driver_factory=factory)
    threading.Thread(target=lambda: (started.wait(10), time.sleep(0.5), os.kill(os.getpid(), signal.SIGINT))).start()
    shell.run(threading.Event())
    print("stopped", flush=True)
    """
)


@pytest.mark.parametrize("ignored", [True, False], ids=["SIGINT ignored at start", "SIGINT default"])
def test_sigint_stops_the_scheduler_also_when_it_started_ignored(ignored: bool) -> None:
    # A background job of a script starts with SIGINT ignored (POSIX shells do that); pymesos called the
    # SIG_IGN it saved as a function: TypeError, logged and carried on with, and the scheduler never stopped.
    result = subprocess.run(
        [sys.executable, "-c", SIGINT_SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=(lambda: __import__("signal").signal(2, __import__("signal").SIG_IGN)) if ignored else None,
    )
    assert result.stdout.splitlines()[0] == f"ignored at start: {ignored}"
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "stopped"
    assert "TypeError" not in result.stderr and "carrying on" not in result.stderr
    assert "interrupted (SIGINT): stopping the scheduler" in result.stderr


def test_a_sigint_while_the_driver_is_dead_still_stops_the_scheduler() -> None:
    # pymesos re-raises its I/O thread's failure as that failure; a KeyboardInterrupt is always a SIGINT.
    shell, stop, thread, drivers = start_shell()
    drivers[0].aborted = True
    watch = shell._watch
    interrupted: list[bool] = []

    def interrupt_once() -> None:
        if not interrupted:
            interrupted.append(True)
            raise KeyboardInterrupt  # Ctrl-C while the watch loop turns
        watch()

    shell._watch = interrupt_once  # type: ignore[method-assign]
    thread.join(5)
    stop.set()
    assert not thread.is_alive(), "a SIGINT was taken for a failed driver and the scheduler carried on"
    assert len(drivers) == 1 and ("stop", True) in drivers[0].calls


# --- what the log says when the scheduler stops ---------------------------------------------------------


def _run_shell(local: bool) -> tuple[SchedulerShell, threading.Event, threading.Thread, list[RecordingDriver]]:
    cfg = config(mesosMaster="local" if local else "127.0.0.1:5050")
    if local:  # as es_framework/dev/local.py hands it to the scheduler: the development master's address
        cfg = replace(
            cfg, mesos_master=MesosMaster(kind="http", url="http://127.0.0.1:5050", hosts=(("127.0.0.1", 5050),))
        )
    drivers: list[RecordingDriver] = []

    def factory(*args: Any, **kwargs: Any) -> RecordingDriver:
        drivers.append(PymesosLikeDriver(*args, **kwargs))
        return drivers[-1]

    engine = Engine(cfg, MemoryStore(), clock=Clock(), strategy=strategy_for(cfg))
    shell = SchedulerShell(cfg, engine, driver_factory=factory, lock=FakeLock())
    stop = threading.Event()
    thread = threading.Thread(target=shell.run, args=(stop,), daemon=True)
    thread.start()
    wait_for(lambda: drivers)
    return shell, stop, thread, drivers


@pytest.mark.parametrize("local", [False, True], ids=["Mesos", "local mode"])
def test_the_stop_says_what_happens_to_the_nodes(caplog: pytest.LogCaptureFixture, local: bool) -> None:
    caplog.set_level(logging.INFO)
    _shell, stop, thread, drivers = _run_shell(local)
    stop.set()
    thread.join(5)
    assert drivers[0].calls[-1] == ("stop", True)
    (line,) = [m for _, m in driver_lines(caplog) if m.startswith("stopping the Mesos driver")]
    if local:
        # Local mode stops every node right after: "the nodes keep running" was false there.
        assert "nodes keep running" not in line and "Mesos keeps" not in line
        assert "local mode stops the development master and every executor and node next" in line
    else:
        assert "Mesos keeps the framework and its nodes running for the next scheduler" in line


def test_disconnects_we_caused_are_info_and_say_so(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    shell, stop, thread, drivers = _run_shell(local=False)
    driver = drivers[0]
    assert isinstance(driver, PymesosLikeDriver)
    shell.registered(driver, {"value": "fw-1"}, {})
    wait_for(lambda: shell.subscribed)
    driver.close_stream()  # the master went away: pymesos reconnects
    wait_for(lambda: any("pymesos reconnects" in m for _, m in driver_lines(caplog)))
    stop.set()
    thread.join(5)
    driver.close_stream()  # what pymesos reports once the stopped driver's I/O thread ends
    wait_for(lambda: any("this scheduler stopped that driver" in m for _, m in driver_lines(caplog)), timeout=2)
    disconnects = [(level, m) for level, m in driver_lines(caplog) if "disconnected" in m or "stream closed" in m]
    assert disconnects == [
        (logging.WARNING, "disconnected from the Mesos master; pymesos reconnects"),
        (logging.INFO, "the Mesos event stream closed: this scheduler stopped that driver (no reconnection)"),
    ]
