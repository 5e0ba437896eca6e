"""What local mode logs at start (es_framework/dev/local.py): its own short hold of the leader lock,
before the scheduler takes it, is not shown as leadership flapping."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from es_framework.config import Config, resolve_config
from es_framework.core.node_state import ClusterState
from es_framework.core.state_document import state_to_json
from es_framework.dev.local import STORE_LOGGER, release_previous_nodes
from es_framework.shell.state_store import FileStateStore


def local(tmp_path: Path) -> Config:
    return resolve_config({"mesosMaster": "local", "localWorkDir": str(tmp_path)}, {})


def _lock_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "leader lock" in r.getMessage()]


def test_releasing_the_previous_run_does_not_log_the_lock_at_info(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    FileStateStore(tmp_path / "state", "elasticsearch", "mesos-ha").create(
        state_to_json(ClusterState(desired_nodes=3, framework_id="fw-local"))
    )
    caplog.set_level(logging.INFO)
    assert release_previous_nodes(local(tmp_path)) == []
    assert _lock_lines(caplog) == []
    assert logging.getLogger(STORE_LOGGER).level == logging.NOTSET  # as it was
    # The scheduler's own store says it, once.
    scheduler_store = FileStateStore(tmp_path / "state", "elasticsearch", "mesos-ha")
    try:
        assert scheduler_store.acquire_leadership(timeout=1)
        (line,) = _lock_lines(caplog)
        assert "holds the leader lock" in line
    finally:
        scheduler_store.close()


def test_with_debug_the_short_hold_is_shown(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    release_previous_nodes(local(tmp_path))
    lines = _lock_lines(caplog)
    assert any("holds the leader lock" in line for line in lines)
    assert any("released the leader lock" in line for line in lines)
