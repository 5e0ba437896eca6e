"""Fixtures of the end-to-end tests: a development master with four agents and one scheduler."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from es_framework.dev.devcluster import DevMaster
from es_framework.dev.zookeeper import ZooKeeperServer
from tests.harness.e2e import Scheduler, dev_master, new_cluster_name


@pytest.fixture
def master() -> Iterator[DevMaster]:
    with dev_master(4) as dev:
        yield dev


@pytest.fixture
def scheduler(master: DevMaster, zookeeper: ZooKeeperServer, tmp_path: Path) -> Iterator[Scheduler]:
    sched = Scheduler(master, zookeeper, new_cluster_name(), tmp_path)
    try:
        yield sched
    finally:
        sched.stop()
