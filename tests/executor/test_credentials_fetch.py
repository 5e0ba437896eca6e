"""The executor after a rotation of the elastic password (es_framework/executor/credentials_fetch.py):
when Elasticsearch refuses the password the task was launched with, the executor fetches the current
one from the scheduler with its task token, from where the launch or a framework message said, and
its probes go on with it: the task stays RUNNING and healthy, no refusal is reported. A scheduler
that refuses the token leaves the refusal reported as before."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from es_framework.contract import NodeReport
from es_framework.core.credentials import CredentialsSource
from es_framework.executor import credentials_fetch, node_executor
from es_framework.executor.credentials_fetch import CredentialsFetch
from es_framework.executor.node_executor import NodeExecutor
from es_framework.executor.probes import CredentialsRefused, basic_authorization
from es_framework.executor.settings import NodeSettings
from tests.executor.test_executor import RecordingDriver, node_env, task_info
from tests.executor.test_executor_node import FakeProcess
from tests.harness.demo_nodes import wait_until
from tests.harness.json_server import NODE_ROOT, answer_json, serving

OLD = "launched-with-this-one"
NEW = "rotated-to-this-one"
TOKEN = "task-token-mac"


class Server(ThreadingHTTPServer):
    """A secured node (``GET /``: 200 for ``elastic:<accepted>``, else 401) and the scheduler's
    ``GET /v1/executor/credentials`` (the password for ``Bearer <task id>.<TOKEN>``) in one."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.accepted = OLD
        self.fetches: list[str | None] = []
        self.probes: list[str | None] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Server

    def do_GET(self) -> None:
        authorization = self.headers.get("Authorization")
        if self.path == "/v1/executor/credentials":
            self.server.fetches.append(authorization)
            ok = authorization is not None and authorization.endswith(f".{TOKEN}")
            self._answer(200 if ok else 401, {"username": "elastic", "password": self.server.accepted} if ok else {})
            return
        self.server.probes.append(authorization)
        if authorization != basic_authorization(self.server.accepted):
            self._answer(401, {"error": {"reason": "unable to authenticate user [elastic]"}, "status": 401})
        elif self.path.startswith("/_cluster/health"):
            self._answer(200, {"status": "green"})
        else:
            self._answer(200, NODE_ROOT)

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        answer_json(self, status, body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Server]:
    with serving(Server()) as running:
        yield running


def test_a_fetch_tries_the_schedulers_password_and_waits_before_asking_again(server: Server) -> None:
    server.accepted = NEW
    now = [100.0]
    logged: list[str] = []
    fetch = CredentialsFetch(
        lambda: server.url + "/v1/executor/credentials", f"t1.{TOKEN}", None, log=logged.append, clock=lambda: now[0]
    )
    probe = {basic_authorization(NEW): NodeReport("u", "8.15.1", "n")}
    found = fetch.working(lambda header: probe.get(header, CredentialsRefused(401)))
    assert found == (basic_authorization(NEW), NodeReport("u", "8.15.1", "n"))
    assert server.fetches == [f"Bearer t1.{TOKEN}"]
    assert fetch.working(lambda header: CredentialsRefused(401)) is None  # fetched, but the node refuses it
    assert fetch.working(lambda header: CredentialsRefused(401)) is None  # too soon: not asked again
    assert len(server.fetches) == 2
    now[0] += credentials_fetch.RETRY_INTERVAL
    refused = CredentialsFetch(lambda: server.url + "/v1/executor/credentials", "t1.wrong", None, log=logged.append)
    assert refused.passwords() == [] and any("HTTP 401" in line for line in logged)
    assert all(NEW not in line and TOKEN not in line for line in logged)
    assert CredentialsFetch(lambda: None, "t", None, log=logged.append).passwords() == []


def test_after_a_rotation_the_probes_go_on_with_the_fetched_password(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="es_framework.executor")
    monkeypatch.setattr(node_executor, "HEALTH_CHECK_INTERVAL", 0.02)
    monkeypatch.setattr(node_executor, "FORMING_CHECK_INTERVAL", 0.02)
    monkeypatch.setattr(node_executor, "STARTUP_POLL_INTERVAL", 0.01)
    env = node_env(server.server_address[1], 9300, ELASTIC_PASSWORD=OLD)
    settings = NodeSettings.from_task(task_info(env), {"MESOS_SANDBOX": str(tmp_path)})
    # The launch gave a token but (an older scheduler's launch, say) no URL: the framework message does.
    settings = dataclasses.replace(settings, task_token=TOKEN, credentials_url=None)
    settings.data_path.mkdir(parents=True)
    executor = NodeExecutor({"MESOS_SANDBOX": str(tmp_path)})
    driver = RecordingDriver()
    executor.driver = driver
    thread = threading.Thread(target=executor._watch, args=(FakeProcess(), settings))
    thread.start()

    def running() -> list[dict[str, Any]]:
        with driver.lock:
            return [u for u in driver.updates if u["state"] == "TASK_RUNNING"]

    try:
        wait_until(lambda: running() and running()[-1]["healthy"] is True, 5, "RUNNING and healthy")
        message = CredentialsSource(server.url + "/v1/executor/credentials").encode()
        executor.apply_message(base64.b64encode(message).decode())
        server.accepted = NEW  # the rotation: Elasticsearch takes only the new password now
        wait_until(lambda: server.probes[-1] == basic_authorization(NEW), 5, "probes with the fetched password")
        seen = len(server.probes)
        wait_until(lambda: len(server.probes) >= seen + 5, 5, "more probes")
        # No refusal was ever reported (a health check that raced the change may have read "not ok" once).
        assert not any("refuses the executor's credentials" in u.get("message", "") for u in running())
        wait_until(lambda: running()[-1]["healthy"] is True, 5, "healthy with the fetched password")
        assert len(server.fetches) == 1
    finally:
        executor._kill_requested.set()
        thread.join(5)
    assert driver.states()[-1] == "TASK_KILLED"
    assert all(NEW not in json.dumps(u) and TOKEN not in json.dumps(u) for u in driver.updates)
    assert NEW not in caplog.text and TOKEN not in caplog.text
