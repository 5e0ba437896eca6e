"""Shared fixtures: a real ZooKeeper (see es_framework/dev/zookeeper.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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


@pytest.fixture(scope="session")
def zookeeper_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeperServer]:
    """One ZooKeeper for the whole session, on 127.0.0.1 and a free port; its log is
    ``<tmp>/zookeeper0/zookeeper.log``. Skipped when java or ZooKeeper is missing, unless ``CI`` is
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
