"""Issue 15: the Elasticsearch proxy passes the read-only paths a user expects, behind the token,
and refuses everything else naming what it passes (a recording node over a real socket)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from es_framework.api.app import ApiApp
from es_framework.api.proxy import PASSED_TEXT
from es_framework.dev.fake_api import FakeCore, sample_node
from tests.api.http_call import call

TOKEN = "proxy-paths-token"


class _Recorder(BaseHTTPRequestHandler):
    server: _RecordingServer

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append((self.command, self.path, body, self.headers.get("Content-Type")))
        data = json.dumps({"method": self.command, "path": self.path}).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _RecordingServer(ThreadingHTTPServer):
    daemon_threads = True
    seen: list[tuple[str, str, bytes, str | None]]


@pytest.fixture
def node() -> Iterator[_RecordingServer]:
    server = _RecordingServer(("127.0.0.1", 0), _Recorder)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def app_for(node: _RecordingServer, token: str | None = TOKEN) -> ApiApp:
    address = f"127.0.0.1:{node.server_address[1]}"
    return ApiApp(FakeCore((sample_node(1, http_address=address),)), token=token)


@pytest.mark.parametrize(
    "path",
    [
        "/_cluster/health",
        "/_cluster/health/logs-2026",
        "/_cluster/stats",
        "/_cat/nodes?v=true",
        "/_cat/indices/logs-*?format=json",
        "/_search?q=user:kimchy",
        "/_count",
        "/logs-*/_search?q=x",
        "/a,b/_count",
    ],
)
def test_the_read_only_paths_are_passed_with_the_token(node: _RecordingServer, path: str) -> None:
    app = app_for(node)
    refused = call(app, "GET", "/v1/es" + path)
    assert refused.status == 401 and node.seen == []
    answer = call(app, "GET", "/v1/es" + path, token=TOKEN)
    assert answer.status == 200, answer
    method, seen, _, _ = node.seen[0]
    asked, got = urlsplit(path), urlsplit(seen)
    assert (method, got.path, parse_qs(got.query)) == ("GET", asked.path, parse_qs(asked.query))


def test_search_and_count_bodies_go_with_post(node: _RecordingServer) -> None:
    app = app_for(node)
    query = {"query": {"match": {"user": "kimchy"}}}
    assert call(app, "POST", "/v1/es/_search", query).status == 401
    answer = call(app, "POST", "/v1/es/logs/_search?size=1", query, token=TOKEN)
    assert answer.status == 200 and answer.json() == {"method": "POST", "path": "/logs/_search?size=1"}
    method, _, body, content_type = node.seen[0]
    assert (method, json.loads(body), content_type) == ("POST", query, "application/json")
    assert call(app, "POST", "/v1/es/_count", {"query": {"match_all": {}}}, token=TOKEN).status == 200


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("PUT", "/v1/es/_search", 405),
        ("DELETE", "/v1/es/_cluster/stats", 405),
        ("POST", "/v1/es/_cat/nodes", 405),
        ("POST", "/v1/es/_cluster/health", 405),
        ("GET", "/v1/es/_bulk", 400),
        ("POST", "/v1/es/_bulk", 400),
        ("DELETE", "/v1/es/logs", 400),
        ("PUT", "/v1/es/logs/_doc/1", 400),
        ("GET", "/v1/es/_nodes/shutdown", 400),
        ("POST", "/v1/es/_cluster/settings", 400),
        ("GET", "/v1/es/_search/../_cluster/settings", 400),
        ("GET", "/v1/es/.security/_search", 400),
    ],
)
def test_everything_else_is_refused_naming_what_passes(
    node: _RecordingServer, method: str, path: str, status: int
) -> None:
    answer = call(app_for(node), method, path, {"x": 1} if method != "GET" else b"", token=TOKEN)
    assert answer.status == status, answer
    if status == 405:
        assert method not in answer.headers["Allow"]
        assert answer.json()["error"].endswith(f"allowed: {answer.headers['Allow']}")
    else:
        assert PASSED_TEXT in answer.json()["error"]
    assert node.seen == []


def test_without_a_token_the_proxy_is_open_like_the_other_reads(node: _RecordingServer) -> None:
    assert call(app_for(node, token=None), "GET", "/v1/es/_cluster/health").status == 200
