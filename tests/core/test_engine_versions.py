"""The target version confirmed by the nodes: a node reporting another version is warned about once."""

from __future__ import annotations

import base64
import logging

import pytest

from es_framework.contract import NodeReport
from tests.core.test_engine import launched, make, status


def running(task_id: str, version: str) -> dict[str, object]:
    report = NodeReport(cluster_uuid="uuid-1", version=version, node_name="elasticsearch1")
    return status(task_id, "TASK_RUNNING", "agent-1-S0", data=base64.b64encode(report.encode()).decode("ascii"))


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "target version" in r.getMessage()
    ]


def test_a_node_running_another_version_than_the_target_is_warned_about_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="es_framework.core.engine")
    engine, _, _ = make(elasticsearchVersion="8.15.1")
    tasks = launched(engine, 1)
    engine.on_update(running(tasks[1], "8.15.3"))
    engine.on_update(running(tasks[1], "8.15.3"))  # the next health report: nothing new
    assert len(warnings(caplog)) == 1
    line = warnings(caplog)[0]
    assert line.startswith(f"node 1 task {tasks[1]}: runs Elasticsearch 8.15.3, not the target version 8.15.1")


def test_the_target_version_confirmed_or_unknown_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="es_framework.core.engine")
    engine, _, _ = make(elasticsearchVersion="8.15.1")
    engine.on_update(running(launched(engine, 1)[1], "8.15.1"))
    unknown, _, _ = make()
    unknown.on_update(running(launched(unknown, 1)[1], "7.17.24"))
    assert warnings(caplog) == []
