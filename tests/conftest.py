"""Shared fixtures (a real ZooKeeper: see es_framework/dev/zookeeper.py), how the tests share the
machine when pytest-xdist runs them in parallel, and progress lines for long steps.

``scripts/test.sh`` runs the tests with ``-n <workers> --dist loadgroup``: each worker takes tests
one at a time, except those of one ``xdist_group``, which run in one worker, one after the other:

* :data:`DOCKER_GROUP`: every test that uses the private Docker engine (the ``docker_engine``
  fixture, directly or through an image fixture) or is marked ``docker``. One engine per worker,
  so one worker: the images are built once, and the engine's fixed agent ports are used once;
* ``local-mode-ports``: the tests that run local mode (``--mesosMaster local``), whose agents offer
  fixed ports from 31000 (``es_framework/dev/local.py``); their files mark themselves with
  ``tests.e2e.test_local_mode.LOCAL_MODE_PORTS``.

The largest groups go first (xdist's ``--loadscope-reorder``, on by default), so the long Docker
group starts at once instead of being the last thing a run waits for. Everything else runs
anywhere: its servers bind free ports, and session fixtures (ZooKeeper) are one per worker.

Progress: a test running longer than :data:`SLOW_TEST_REPORT_AFTER` seconds is named on the
terminal (and again every as many seconds), and the ``progress`` fixture writes lines there too
(image builds, debootstrap, the engine's teardown), so that a run never looks hung.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from es_framework.dev.docker_engine import Progress
from es_framework.dev.zookeeper import ZooKeeperServer, in_ci, zookeeper_problem
from tests.harness.docker_fixtures import (  # noqa: F401 (pytest fixtures: registered by being imported here)
    docker_engine,
    docker_images,
    executor_image,
    executor_image_for,
    scheduler_image,
    standin_image,
)
from tests.harness.volume_plugin import (  # noqa: F401 (pytest fixtures)
    volume_plugin,
    volume_plugin_server,
)

# Hypothesis' per-example deadline (200 ms) and its "too slow" health check measure how busy the
# machine is, not the code: with ZooKeeper, demo nodes and Docker builds sharing two cores, a pure
# property failed on DeadlineExceeded. Correctness is what the properties check; speed is benchmarks/.
settings.register_profile("es-mesos", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("es-mesos")

DOCKER_GROUP = "docker-engine"
SLOW_TEST_REPORT_AFTER = 60.0
_TERMINAL = pytest.StashKey[Progress]()


def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist registers the marker too; this keeps --strict-markers happy without it (-p no:xdist).
    config.addinivalue_line("markers", "xdist_group(name): run in one pytest-xdist worker with the group's other tests")
    say = _terminal_writer(config)
    config.stash[_TERMINAL] = say
    if not hasattr(config, "workerinput"):  # the process that reports: xdist's controller, or pytest alone
        config.pluginmanager.register(_SlowTestReporter(say), "esm-slow-tests")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups (its own hook of the same name)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "docker_engine" in getattr(item, "fixturenames", ()) or item.get_closest_marker("docker"):
            item.add_marker(pytest.mark.xdist_group(DOCKER_GROUP))


def _terminal_writer(config: pytest.Config) -> Progress:
    """Lines on the terminal whatever pytest captures: a copy of the real stderr, taken while capturing
    is off (an xdist worker's stderr is its controller's)."""
    capture = config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        # Never closed: an engine's atexit teardown may still report after pytest is done.
        fd = os.dup(2)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    prefix = f" {worker}" if worker else ""

    def say(message: str) -> None:
        with contextlib.suppress(OSError):
            os.write(fd, f"\n[{time.strftime('%H:%M:%S')}{prefix}] {message}\n".encode(errors="replace"))

    return say


@pytest.fixture(scope="session")
def progress(pytestconfig: pytest.Config) -> Progress:
    """Writes a line on the terminal, for the progress of long steps (they must not look hung)."""
    return pytestconfig.stash[_TERMINAL]


class _SlowTestReporter:
    """Names the tests that have been running for a long time, from the process that reports (with
    pytest-xdist, the controller hears when each test starts and finishes in any worker)."""

    def __init__(self, say: Progress, after: float = SLOW_TEST_REPORT_AFTER) -> None:
        self.say = say
        self.after = after
        self._started: dict[str, float] = {}
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="esm-slow-tests", daemon=True)

    def pytest_sessionstart(self) -> None:
        self._thread.start()

    def pytest_sessionfinish(self) -> None:
        self._done.set()

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        with self._lock:
            self._started[nodeid] = time.monotonic()

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        with self._lock:
            self._started.pop(nodeid, None)

    def _watch(self) -> None:
        reported: dict[str, float] = {}
        while not self._done.wait(5.0):
            now = time.monotonic()
            with self._lock:
                running = dict(self._started)
            for nodeid, started in running.items():
                if now - started >= self.after and now - reported.get(nodeid, started) >= self.after:
                    reported[nodeid] = now
                    self.say(f"still running after {now - started:.0f} s: {nodeid}")


@pytest.fixture(scope="session")
def zookeeper_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeperServer]:
    """One ZooKeeper for the whole session (one per xdist worker), on 127.0.0.1 and a free port; its log
    is ``<tmp>/zookeeper0/zookeeper.log``. Skipped when java or ZooKeeper is missing, unless ``CI`` is
    set: then the tests fail."""
    problem = zookeeper_problem()
    if problem:
        if in_ci():
            pytest.fail(f"{problem} (CI is set: the ZooKeeper tests must run)", pytrace=False)
        pytest.skip(problem)
    server = ZooKeeperServer(tmp_path_factory.mktemp("zookeeper"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def zookeeper(zookeeper_server: ZooKeeperServer) -> ZooKeeperServer:
    """The session's ZooKeeper, running (restarted if an earlier test left it stopped)."""
    zookeeper_server.start()
    return zookeeper_server
