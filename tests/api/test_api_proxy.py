"""``/v1/es/...``: requests proxied to a running Elasticsearch node (stub nodes over real sockets)."""

from __future__ import annotations

from typing import Any

import pytest

from es_framework.api.app import ApiApp
from es_framework.api.proxy import pick_node_http
from es_framework.dev.fake_api import FakeCore, StubElasticsearch, sample_node
from tests.api.http_call import call

TOKEN = "s3cret-token"


@pytest.fixture
def stubs() -> Any:
    first, second = StubElasticsearch("first"), StubElasticsearch("second")
    yield first, second
    first.stop()
    second.stop()


def stub_core(first: StubElasticsearch, second: StubElasticsearch) -> FakeCore:
    return FakeCore(
        (
            sample_node(1, http_address=first.address),
            sample_node(2, http_address=second.address),
            sample_node(3, state="TASK_UNREACHABLE"),
        )
    )


def test_search_is_proxied_with_its_query(stubs: tuple[StubElasticsearch, StubElasticsearch]) -> None:
    first, second = stubs
    app = ApiApp(stub_core(first, second), token=TOKEN)
    answer = call(
        app,
        "GET",
        "/v1/es/_search?q=user:kimchy%20AND%20x%3D1",
        headers={"X-ElasticSearch-Host": "agent2.example.com"},
        token=TOKEN,
    )
    assert answer.status == 200
    assert answer.json()["hits"]["hits"][0]["_source"]["q"] == "user:kimchy AND x=1"
    assert answer.json()["answered_by"] == "second"
    assert second.requests[0][0] == "/_search"
    assert first.requests == []


def test_cluster_stats_is_proxied_and_nodes_take_turns(stubs: tuple[StubElasticsearch, StubElasticsearch]) -> None:
    first, second = stubs
    app = ApiApp(stub_core(first, second), token=TOKEN)
    answers = [call(app, "GET", "/v1/es/_cluster/stats", token=TOKEN).json() for _ in range(4)]
    assert {a["status"] for a in answers} == {"green"}
    assert sorted(a["answered_by"] for a in answers) == ["first", "first", "second", "second"]


def test_proxy_host_header_by_address_and_name(stubs: tuple[StubElasticsearch, StubElasticsearch]) -> None:
    first, second = stubs
    app = ApiApp(stub_core(first, second), token=TOKEN)
    by_address = call(app, "GET", "/v1/es/_cluster/stats", headers={"X-ElasticSearch-Host": first.address}, token=TOKEN)
    assert by_address.json()["answered_by"] == "first"
    by_name = call(app, "GET", "/v1/es/_cluster/stats", headers={"X-ElasticSearch-Host": "elasticsearch2"}, token=TOKEN)
    assert by_name.json()["answered_by"] == "second"


def test_proxy_unknown_host_is_404_and_stopped_node_503(stubs: tuple[StubElasticsearch, StubElasticsearch]) -> None:
    first, second = stubs
    app = ApiApp(stub_core(first, second), token=TOKEN)
    unknown = call(
        app, "GET", "/v1/es/_search?q=x", headers={"X-ElasticSearch-Host": "elsewhere.example.com"}, token=TOKEN
    )
    assert unknown.status == 404
    assert "elsewhere.example.com" in unknown.json()["error"]
    stopped = call(
        app, "GET", "/v1/es/_search?q=x", headers={"X-ElasticSearch-Host": "agent3.example.com"}, token=TOKEN
    )
    assert stopped.status == 503


def test_proxy_without_running_node_is_503() -> None:
    app = ApiApp(FakeCore((sample_node(1, state="TASK_STAGING"),)), token=TOKEN)
    answer = call(app, "GET", "/v1/es/_search?q=x", token=TOKEN)
    assert (answer.status, answer.json()) == (503, {"error": "no node is running"})


def test_proxy_to_a_dead_node_is_502() -> None:
    stub = StubElasticsearch()
    address = stub.address
    stub.stop()  # the port is closed now: connection refused
    app = ApiApp(FakeCore((sample_node(1, http_address=address),)), token=TOKEN, proxy_timeout=2)
    answer = call(app, "GET", "/v1/es/_cluster/stats", token=TOKEN)
    assert answer.status == 502
    assert address in answer.json()["error"]


def test_pick_node_http_rules() -> None:
    nodes = (sample_node(1), sample_node(2, state="TASK_UNREACHABLE"), sample_node(3))
    assert pick_node_http(nodes, None, 0) == "agent1.example.com:31000"
    assert pick_node_http(nodes, None, 1) == "agent3.example.com:31000"
    assert pick_node_http(nodes, " agent3.example.com ", 0) == "agent3.example.com:31000"


def test_a_slow_proxied_request_does_not_hold_up_health() -> None:
    import socket
    import threading
    import time

    import requests

    from es_framework.api.server import serve

    # A node that accepts the connection and never answers.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    address = f"127.0.0.1:{silent.getsockname()[1]}"
    server = serve(ApiApp(FakeCore((sample_node(1, http_address=address),)), proxy_timeout=1.5), "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.port}"
    try:
        slow: dict[str, int] = {}
        thread = threading.Thread(
            target=lambda: slow.update(status=requests.get(f"{base}/v1/es/_search?q=x", timeout=10).status_code)
        )
        thread.start()
        time.sleep(0.3)
        started = time.monotonic()
        assert requests.get(f"{base}/health", timeout=5).status_code == 200
        assert time.monotonic() - started < 1
        thread.join(timeout=10)
        assert slow == {"status": 502}  # the proxy's timeout, answered as the node not answering
    finally:
        server.shutdown()
        silent.close()
