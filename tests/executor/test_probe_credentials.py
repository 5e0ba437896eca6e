"""The probe after a password change: Elasticsearch answering 401/403 is up and refuses our
credentials. The task reports RUNNING with the reason (health false), says so once per change,
keeps probing, and reports normally again once the credentials work."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from es_framework.contract import NodeReport
from es_framework.executor import node_executor
from es_framework.executor.node_executor import NodeExecutor
from es_framework.executor.probes import (
    CredentialsRefused,
    CredentialsWatch,
    basic_authorization,
    node_healthy,
    node_identity,
)
from es_framework.executor.settings import NodeSettings
from tests.executor.test_executor import RecordingDriver, node_env, task_info
from tests.executor.test_executor_node import FakeProcess
from tests.harness.demo_nodes import wait_until
from tests.harness.json_server import NODE_ROOT, answer_json, serving

PASSWORD = "bootstrap-Pw-1"
REASON = "unable to authenticate user [elastic] for REST request [/]"


class FakeNode(ThreadingHTTPServer):
    """Answers like a secured Elasticsearch: 200 while ``mode`` is ``ok``, else 401 or 403 with
    Elasticsearch's error body (``security_exception``)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.mode = "401"
        self.requests: list[tuple[str, str | None]] = []


class Handler(BaseHTTPRequestHandler):
    server: FakeNode

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("Authorization")))
        if self.server.mode == "ok":
            body: dict[str, Any] = {"status": "green"} if self.path.startswith("/_cluster/health") else NODE_ROOT
            status = 200
        else:
            status = int(self.server.mode)
            body = {
                "error": {"root_cause": [{"type": "security_exception", "reason": REASON}], "reason": REASON},
                "status": status,
            }
        challenge = (("WWW-Authenticate", 'Basic realm="security" charset="UTF-8"'),) if status == 401 else ()
        answer_json(self, status, body, challenge)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def fake_node() -> Iterator[FakeNode]:
    with serving(FakeNode()) as server:
        yield server


def base_url(server: FakeNode) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_401_and_403_are_a_refusal_not_a_silent_node(fake_node: FakeNode) -> None:
    authorization = basic_authorization(PASSWORD)
    assert node_identity(base_url(fake_node), authorization) == CredentialsRefused(401, REASON, authenticated=True)
    assert node_identity(base_url(fake_node)) == CredentialsRefused(401, REASON, authenticated=False)
    fake_node.mode = "403"
    assert node_identity(base_url(fake_node), authorization) == CredentialsRefused(403, REASON)
    assert node_healthy(base_url(fake_node), authorization) is False
    fake_node.mode = "ok"
    assert node_identity(base_url(fake_node), authorization) == NodeReport("uuid-1", "8.15.1", "elasticsearch1")
    assert fake_node.requests[0][1] == authorization


def test_the_watch_tells_each_change_once() -> None:
    watch = CredentialsWatch("agent1:9200")
    refused = CredentialsRefused(401, REASON)
    first = watch.observe(refused)
    assert first is not None and "agent1:9200" in first and REASON in first
    assert "changed outside es-mesos" in first and "--elasticsearchPasswordFile" in first
    assert watch.observe(refused) is None and watch.observe(None) is None  # a silent node changes nothing
    assert watch.refused == refused
    forbidden = watch.observe(CredentialsRefused(403, None))
    assert forbidden is not None and "HTTP 403" in forbidden
    back = watch.observe(NodeReport("u", "8.15.1", "n"))
    assert back is not None and "again" in back and watch.refused is None
    assert watch.observe(NodeReport("u", "8.15.1", "n")) is None
    unsecured = CredentialsWatch("h:1").observe(CredentialsRefused(401, None, authenticated=False))
    assert unsecured is not None and "without security" in unsecured


def test_a_changed_password_keeps_the_task_running_with_the_reason(
    fake_node: FakeNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="es_framework.executor")
    monkeypatch.setattr(node_executor, "HEALTH_CHECK_INTERVAL", 0.02)
    monkeypatch.setattr(node_executor, "FORMING_CHECK_INTERVAL", 0.02)
    monkeypatch.setattr(node_executor, "STARTUP_POLL_INTERVAL", 0.01)
    env = node_env(fake_node.server_address[1], 9300, ELASTIC_PASSWORD=PASSWORD)
    settings = NodeSettings.from_task(task_info(env), {"MESOS_SANDBOX": str(tmp_path)})
    settings.data_path.mkdir(parents=True)
    executor = NodeExecutor({"MESOS_SANDBOX": str(tmp_path)})
    driver = RecordingDriver()
    executor.driver = driver
    thread = threading.Thread(target=executor._watch, args=(FakeProcess(), settings))
    thread.start()

    def running() -> list[dict[str, Any]]:
        with driver.lock:
            return [u for u in driver.updates if u["state"] == "TASK_RUNNING"]

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "refuses" in r.getMessage()]

    try:
        wait_until(running, 5, "TASK_RUNNING although Elasticsearch refuses the credentials")
        first = running()[0]
        assert first["healthy"] is False
        assert "refuses the executor's credentials (HTTP 401" in first["message"]
        assert "changed outside es-mesos" in first["message"]
        seen = len(fake_node.requests)
        wait_until(lambda: len(fake_node.requests) >= seen + 5, 5, "more probes")  # it keeps asking
        assert len(running()) == 1 and len(warnings()) == 1  # but says it once
        fake_node.mode = "ok"
        wait_until(lambda: len(running()) >= 2, 5, "the normal report once the credentials work")
        assert running()[-1]["healthy"] is True and "data" in running()[-1]
        assert any("accepts the executor's credentials again" in r.getMessage() for r in caplog.records)
        count = len(running())
        fake_node.mode = "401"
        wait_until(lambda: len(running()) > count and running()[-1]["healthy"] is False, 5, "the second refusal")
        assert len(warnings()) == 2
    finally:
        executor._kill_requested.set()
        thread.join(5)
    assert driver.states()[-1] == "TASK_KILLED"
    assert all(PASSWORD not in json.dumps(u) for u in driver.updates)
    assert PASSWORD not in caplog.text
