"""A refused API token is logged at WARNING with the client's address, the method and the path,
never the token given; one WARNING per client address a minute, the rest at DEBUG
(:mod:`es_framework.api.token_log`), through the real ASGI app."""

from __future__ import annotations

import logging

import pytest
from starlette.testclient import TestClient

from es_framework.api import token_log
from es_framework.api.app import ApiApp
from es_framework.api.token_log import WARN_INTERVAL_S, TokenFailureLog
from es_framework.dev.fake_api import FakeCore

TOKEN = "the-real-token-5f0c"
WRONG = "a-guessed-token-9a1b"
LOGGER = "es_framework.api.app"


def request(app: ApiApp, method: str, path: str, client: str, authorization: str | None = None) -> int:
    """One request as a server makes it, from ``client`` (the peer address the server sees)."""
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    with TestClient(app, client=(client, 50000)) as test_client:
        return test_client.request(method, path, content=b'{"value": 4}\n', headers=headers).status_code


def refusals(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == LOGGER and r.levelno == level and "refused" in r.getMessage()
    ]


def test_a_wrong_token_is_logged_with_the_address_and_path_but_not_the_token(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    app = ApiApp(FakeCore(), token=TOKEN)
    assert request(app, "PUT", "/v1/cluster/elasticsearchNodes", "203.0.113.7", f"Bearer {WRONG}") == 401
    (warning,) = refusals(caplog, logging.WARNING)
    assert "203.0.113.7" in warning and "PUT /v1/cluster/elasticsearchNodes" in warning
    assert "wrong bearer token" in warning
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert WRONG not in everything and TOKEN not in everything


def test_a_missing_token_on_the_proxy_is_logged_too(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    app = ApiApp(FakeCore(), token=TOKEN)
    assert request(app, "GET", "/v1/es/_cluster/health", "198.51.100.2") == 401
    (warning,) = refusals(caplog, logging.WARNING)
    assert "198.51.100.2" in warning and "GET /v1/es/_cluster/health" in warning
    assert "no Authorization header" in warning


def test_another_scheme_is_named_but_its_credentials_are_not(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    app = ApiApp(FakeCore(), token=TOKEN)
    assert request(app, "POST", "/v1/nodes/1/restart", "192.0.2.9", f"Basic {WRONG}") == 401
    (warning,) = refusals(caplog, logging.WARNING)
    assert "not a Bearer Authorization header" in warning and WRONG not in warning


def test_a_scanner_gets_one_warning_a_minute_and_the_rest_at_debug(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    now = [1000.0]
    app = ApiApp(FakeCore(), token=TOKEN)
    # The app's log with a clock the test turns (the app's own reads time.monotonic).
    monkeypatch.setattr(app._entry, "_token_log", TokenFailureLog(logging.getLogger(LOGGER), clock=lambda: now[0]))
    for _ in range(50):
        assert request(app, "PUT", "/v1/cluster/elasticsearchNodes", "203.0.113.7", f"Bearer {WRONG}") == 401
    assert len(refusals(caplog, logging.WARNING)) == 1
    assert len(refusals(caplog, logging.DEBUG)) == 49
    # Another client is warned about at once: the limit is per address.
    assert request(app, "POST", "/v1/nodes/2/restart", "203.0.113.8", f"Bearer {WRONG}") == 401
    assert len(refusals(caplog, logging.WARNING)) == 2
    # The first client again once the minute is over, with how many went to DEBUG meanwhile.
    now[0] += WARN_INTERVAL_S
    assert request(app, "PUT", "/v1/cluster/elasticsearchNodes", "203.0.113.7") == 401
    warnings = refusals(caplog, logging.WARNING)
    assert len(warnings) == 3 and "49 more from it" in warnings[-1]
    # The dispatcher's own INFO line about refused commands stays quiet for 401s (no second flood).
    assert not [r for r in caplog.records if r.levelno == logging.INFO and "refused" in r.getMessage()]


def test_the_right_token_and_the_open_paths_log_no_refusal(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    app = ApiApp(FakeCore(), token=TOKEN)
    assert request(app, "PUT", "/v1/cluster/elasticsearchNodes", "203.0.113.7", f"Bearer {TOKEN}") == 200
    assert request(app, "GET", "/health", "203.0.113.7") in (200, 503)
    assert request(app, "GET", "/metrics", "203.0.113.7") == 200
    assert refusals(caplog, logging.WARNING) == [] and refusals(caplog, logging.DEBUG) == []


def test_the_table_of_clients_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(token_log, "MAX_CLIENTS", 8)
    log = TokenFailureLog(logging.getLogger("test.token_log"), clock=lambda: 5.0)
    for n in range(100):
        log.refused(f"10.0.0.{n}", "PUT", "/v1/x", "wrong bearer token")
    assert len(log._clients) <= 8
