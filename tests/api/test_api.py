"""The REST API in-process: every endpoint, every error case, the token, the logs (the proxy:
``test_api_proxy.py``)."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

import pytest

from es_framework.api.app import MAX_BODY_BYTES, ApiApp
from es_framework.api.core import ApiError, NodeView
from es_framework.dev.fake_api import Call, FakeCore, sample_node
from tests.api.http_call import call

TOKEN = "s3cret-token"


@pytest.fixture
def core() -> FakeCore:
    return FakeCore()


@pytest.fixture
def app(core: FakeCore) -> ApiApp:
    return ApiApp(core, token=TOKEN)


def unreachable_core() -> FakeCore:
    return FakeCore((sample_node(1), sample_node(2), sample_node(4, state="TASK_UNREACHABLE")), desired_nodes=3)


# --- reads -----------------------------------------------------------------------------------


def test_cluster_shows_the_overview(app: ApiApp) -> None:
    answer = call(app, "GET", "/v1/cluster")
    assert answer.status == 200
    cluster = answer.json()
    assert cluster["cluster_name"] == "mesos-ha"
    assert cluster["desired_nodes"] == 3
    assert cluster["running_nodes"] == 3
    assert cluster["registered"] is True
    assert cluster["configuration"]["frameworkSecretPath"] == "****"
    full = cluster["declines"][0]
    assert {key: value for key, value in full.items() if key != "outcomes"} == {
        "reason": "cluster_full",
        "count": 12,
        "last_message": "cluster size fulfilled: 3 of 3 nodes present",
        "last_time": "2026-09-21T14:20:00Z",
    }
    assert cluster["events"][0]["node_id"] == 3


def test_declines_carry_every_rules_outcome_in_order(app: ApiApp) -> None:
    declines = call(app, "GET", "/v1/cluster").json()["declines"]
    assert [d["reason"] for d in declines] == ["cluster_full", "mem", "malformed"]
    mem = declines[1]
    assert [(o["rule"], o["passed"]) for o in mem["outcomes"]] == [
        ("cluster_full", True),
        ("agent_has_node", True),
        ("gpu_agent", True),
        ("cpus", True),
        ("mem", False),
        ("ports", False),
        ("pinned", True),
        ("backoff", True),
    ]
    assert mem["outcomes"][4] == {
        "rule": "mem",
        "passed": False,
        "reason": 'not enough mem: 1024 MB offered, 2048 MB needed "big"',
    }
    assert declines[2]["outcomes"] == []


def test_openapi_document_describes_the_decline_outcomes(app: ApiApp) -> None:
    schemas = call(app, "GET", "/v1/openapi.json").json()["components"]["schemas"]
    assert schemas["Cluster"]["properties"]["declines"]["items"] == {"$ref": "#/components/schemas/Decline"}
    decline = schemas["Decline"]
    assert "outcomes" in decline["required"]
    assert decline["properties"]["outcomes"]["items"] == {"$ref": "#/components/schemas/RuleOutcome"}
    outcome = schemas["RuleOutcome"]
    assert outcome["required"] == ["rule", "passed", "reason"]
    assert outcome["properties"]["passed"]["type"] == "boolean"


def test_desired_nodes_get(app: ApiApp) -> None:
    answer = call(app, "GET", "/v1/cluster/elasticsearchNodes")
    assert (answer.status, answer.json()) == (200, {"value": 3})


def test_tasks_have_the_old_frameworks_fields_and_ours(app: ApiApp) -> None:
    tasks = call(app, "GET", "/v1/tasks").json()
    assert [t["node_id"] for t in tasks] == [1, 2, 3]
    assert tasks[0] == {
        "id": "elasticsearch-node1-0f3a9c1",
        "node_id": 1,
        "name": "elasticsearch1",
        "state": "TASK_RUNNING",
        "hostname": "agent1.example.com",
        "agent_id": "agent-1-S0",
        "http_address": "agent1.example.com:31000",
        "transport_address": "agent1.example.com:31001",
        "volumes": {"config": "elasticsearch1config", "data": "elasticsearch1data"},
        "started_at": "2026-09-21T14:14:20Z",
        "version": "8.15.0",
    }


def test_endpoints_list_running_nodes_only() -> None:
    app = ApiApp(unreachable_core(), token=TOKEN)
    answer = call(app, "GET", "/v1/cluster/endpoints")
    assert answer.json() == {
        "http": ["agent1.example.com:31000", "agent2.example.com:31000"],
        "transport": ["agent1.example.com:31001", "agent2.example.com:31001"],
    }


def test_one_node_with_its_history(app: ApiApp) -> None:
    node = call(app, "GET", "/v1/nodes/2").json()
    assert node["node_id"] == 2
    assert node["healthy"] is True
    assert node["outdated"] is False
    assert [event["state"] for event in node["history"]] == ["LAUNCHING", "TASK_RUNNING"]
    assert node["history"][0]["message"] == "launching on agent2.example.com"


@pytest.mark.parametrize("path", ["/v1/nodes/9", "/v1/nodes/9/restart"])
def test_unknown_node_is_404(app: ApiApp, path: str) -> None:
    method = "GET" if path.count("/") == 3 else "POST"
    answer = call(app, method, path, token=TOKEN)
    assert answer.status == 404
    assert answer.json() == {"error": "no node 9"}


def test_huge_node_id_is_unknown(app: ApiApp) -> None:
    answer = call(app, "GET", "/v1/nodes/" + "9" * 5000)
    assert answer.status == 404
    assert answer.json() == {"error": "no node " + "9" * 40}


@pytest.mark.parametrize("text", ["abc", "0", "-1", "01", "1.5", "1a", "1 "])
def test_node_id_that_is_not_a_positive_integer_is_400(app: ApiApp, text: str) -> None:
    answer = call(app, "GET", f"/v1/nodes/{text}")
    assert answer.status == 400
    assert "positive integers" in answer.json()["error"]


def test_health_alive_and_not(core: FakeCore, app: ApiApp) -> None:
    core.registered = False
    answer = call(app, "GET", "/health")
    assert (answer.status, answer.json()["registered"], answer.json()["alive"]) == (200, False, True)
    core.alive = False
    answer = call(app, "GET", "/health")
    assert answer.status == 503
    assert answer.json()["message"] == "scheduler loop stuck for 120 s"


def test_openapi_document_is_served_and_declares_the_token(app: ApiApp, core: FakeCore) -> None:
    document = call(app, "GET", "/v1/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    put = document["paths"]["/v1/cluster/elasticsearchNodes"]["put"]
    assert put["security"] == [{"bearerToken": []}]
    assert "401" in put["responses"]
    open_document = call(ApiApp(core), "GET", "/v1/openapi.json").json()
    assert "security" not in open_document["paths"]["/v1/cluster/elasticsearchNodes"]["put"]
    assert "securitySchemes" not in open_document["components"]


def test_ui_page_is_labelled_with_the_escaped_cluster_name(app: ApiApp, monkeypatch: pytest.MonkeyPatch) -> None:
    answer = call(app, "GET", "/")
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    page = answer.body.decode()
    assert "<title>mesos-ha · es-mesos</title>" in page
    assert "{{cluster_name}}" not in page
    original = FakeCore.cluster

    def hostile(self: FakeCore) -> Any:
        return replace(original(self), cluster_name="<script>alert(1)</script>")

    monkeypatch.setattr(FakeCore, "cluster", hostile)
    page = call(app, "GET", "/").body.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page


def test_core_read_refusal_is_passed_on(app: ApiApp, core: FakeCore, monkeypatch: pytest.MonkeyPatch) -> None:
    def not_ready() -> Any:
        raise ApiError(503, "the scheduler has not loaded its state yet")

    monkeypatch.setattr(core, "cluster", not_ready)
    answer = call(app, "GET", "/v1/cluster")
    assert (answer.status, answer.json()) == (503, {"error": "the scheduler has not loaded its state yet"})


# --- scaling ---------------------------------------------------------------------------------


def test_scaling_calls_the_core_and_logs(app: ApiApp, core: FakeCore, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="es_framework.api.app"):
        answer = call(app, "PUT", "/v1/cluster/elasticsearchNodes", {"value": 5}, token=TOKEN)
    assert (answer.status, answer.json()) == (200, {"value": 5})
    assert core.calls == [Call("set_desired_nodes", 5)]
    assert call(app, "GET", "/v1/cluster/elasticsearchNodes").json() == {"value": 5}
    assert "scale from 3 to 5 nodes accepted" in caplog.text


def test_a_count_written_as_a_whole_float_is_that_integer(app: ApiApp, core: FakeCore) -> None:
    # 4.0 is the integer 4 in JSON (and in the document's JSON Schema): schemathesis sends such values.
    answer = call(app, "PUT", "/v1/cluster/elasticsearchNodes", '{"value": 4.0}', token=TOKEN)
    assert (answer.status, answer.json()) == (200, {"value": 4})
    assert core.calls == [Call("set_desired_nodes", 4)]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"value": 0}, "body.value: Input should be greater than or equal to 1, not 0"),
        ({"value": -1}, "body.value: Input should be greater than or equal to 1, not -1"),
        ({"value": 10_001}, "body.value: Input should be less than or equal to 10000, not 10001"),
        ({"value": "5"}, "body.value: Value error, a JSON integer is needed, not '5'"),
        ({"value": True}, "body.value: Value error, a JSON integer is needed, not True"),
        ({"value": 2.5}, "body.value: Input should be a valid integer, got a number with a fractional part, not 2.5"),
        ({"value": None}, "body.value: Input should be a valid integer, not None"),
        ({}, "body.value: Field required"),
        ({"value": 3, "force": True}, "body.force: Extra inputs are not permitted"),
        ([5], "body: Input should be a valid dictionary"),
        ("{value: 5", "the body is not valid JSON"),
        ('{"value": NaN}', "body.value: Input should be a finite number, not nan"),
        (b"\xff\xfe", "the body is not valid JSON"),
        ("", "body: Field required"),
    ],
)
def test_bad_scaling_requests_are_400_and_change_nothing(app: ApiApp, core: FakeCore, body: object, error: str) -> None:
    answer = call(app, "PUT", "/v1/cluster/elasticsearchNodes", body, token=TOKEN)
    assert answer.status == 400
    assert error in answer.json()["error"]
    # What pydantic refused, then what the body should be.
    assert answer.json()["error"].endswith('; expected a JSON object {"value": N} with an integer N from 1 to 10000')
    assert core.calls == []
    assert call(app, "GET", "/v1/cluster/elasticsearchNodes").json() == {"value": 3}


def test_core_refusal_is_passed_on(app: ApiApp, core: FakeCore, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(count: int) -> None:
        raise ApiError(503, "not the leading scheduler")

    monkeypatch.setattr(core, "set_desired_nodes", refuse)
    answer = call(app, "PUT", "/v1/cluster/elasticsearchNodes", {"value": 4}, token=TOKEN)
    assert (answer.status, answer.json()) == (503, {"error": "not the leading scheduler"})


def test_oversized_body_is_413(app: ApiApp, core: FakeCore) -> None:
    body = json.dumps({"value": 4, "pad": "x" * MAX_BODY_BYTES})
    answer = call(app, "PUT", "/v1/cluster/elasticsearchNodes", body, token=TOKEN)
    assert answer.status == 413
    assert "over the limit" in answer.json()["error"]
    assert core.calls == []


def test_bad_content_length_is_400(app: ApiApp) -> None:
    answer = call(app, "PUT", "/v1/cluster/elasticsearchNodes", {"value": 4}, token=TOKEN, content_length="-3")
    assert answer.status == 400


# --- the token -------------------------------------------------------------------------------


def test_missing_token_is_401_with_www_authenticate(app: ApiApp, core: FakeCore) -> None:
    answer = call(app, "PUT", "/v1/cluster/elasticsearchNodes", {"value": 4})
    assert answer.status == 401
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="es-mesos"'
    assert "Authorization: Bearer" in answer.json()["error"]
    assert core.calls == []


@pytest.mark.parametrize("header", [f"Bearer {TOKEN}x", "Bearer ", f"Basic {TOKEN}", TOKEN, "Bearer S3CRET-TOKEN"])
def test_wrong_token_is_401(app: ApiApp, core: FakeCore, header: str) -> None:
    answer = call(app, "POST", "/v1/nodes/1/restart", headers={"Authorization": header})
    assert answer.status == 401
    assert "invalid_token" in answer.headers["WWW-Authenticate"]
    assert core.calls == []


def test_token_scheme_is_case_insensitive(app: ApiApp, core: FakeCore) -> None:
    answer = call(app, "POST", "/v1/nodes/1/restart", headers={"Authorization": f"bearer {TOKEN}"})
    assert answer.status == 202
    assert core.calls == [Call("restart_node", 1)]


def test_reads_need_no_token(app: ApiApp) -> None:
    for path in ["/v1/cluster", "/v1/tasks", "/metrics", "/health", "/", "/v1/openapi.json"]:
        assert call(app, "GET", path).status == 200, path


def test_open_api_warns_and_accepts_mutations(core: FakeCore, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="es_framework.api.app"):
        app = ApiApp(core)
    assert "the REST API has no token" in caplog.text
    assert call(app, "PUT", "/v1/cluster/elasticsearchNodes", {"value": 2}).status == 200
    assert core.calls == [Call("set_desired_nodes", 2)]


def test_empty_token_is_refused(core: FakeCore) -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        ApiApp(core, token=" ")


# --- node commands ---------------------------------------------------------------------------


@pytest.mark.parametrize(("verb", "method"), [("restart", "restart_node"), ("replace", "replace_node")])
def test_restart_and_replace(
    app: ApiApp, core: FakeCore, caplog: pytest.LogCaptureFixture, verb: str, method: str
) -> None:
    with caplog.at_level(logging.INFO, logger="es_framework.api.app"):
        answer = call(app, "POST", f"/v1/nodes/2/{verb}", token=TOKEN)
    assert answer.status == 202
    assert answer.json()["node_id"] == 2
    assert core.calls == [Call(method, 2)]
    assert f"{verb} node 2 accepted" in caplog.text


def test_restart_of_a_node_that_is_not_running_is_409(caplog: pytest.LogCaptureFixture) -> None:
    core = unreachable_core()
    app = ApiApp(core, token=TOKEN)
    with caplog.at_level(logging.INFO, logger="es_framework.api.app"):
        answer = call(app, "POST", "/v1/nodes/4/restart", token=TOKEN)
    assert answer.status == 409
    assert "node 4 is not running" in answer.json()["error"]
    assert "restart node 4 refused (409)" in caplog.text
    assert core.calls == []


def test_declare_gone_with_the_confirmation() -> None:
    core = unreachable_core()
    app = ApiApp(core, token=TOKEN)
    answer = call(app, "POST", "/v1/nodes/4/gone", {"confirm": "node 4 is gone"}, token=TOKEN)
    assert answer.status == 202
    assert core.calls == [Call("declare_gone", 4)]
    assert call(app, "GET", "/v1/nodes/4").json()["state"] == "TASK_GONE_BY_OPERATOR"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        {},
        {"confirm": True},
        {"confirm": "yes"},
        {"confirm": "node 2 is gone"},
        {"confirm": "node 4 is gone", "x": 1},
    ],
)
def test_declare_gone_without_the_exact_confirmation_is_400(body: object) -> None:
    core = unreachable_core()
    app = ApiApp(core, token=TOKEN)
    answer = call(app, "POST", "/v1/nodes/4/gone", body, token=TOKEN)
    assert answer.status == 400
    assert '{"confirm": "node 4 is gone"}' in answer.json()["error"]
    assert core.calls == []


def test_declare_gone_of_a_running_node_is_409(app: ApiApp, core: FakeCore) -> None:
    answer = call(app, "POST", "/v1/nodes/1/gone", {"confirm": "node 1 is gone"}, token=TOKEN)
    assert (answer.status, answer.json()) == (409, {"error": "node 1 is not unreachable (TASK_RUNNING)"})
    assert core.calls == []


# --- routing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", "/v1/cluster/elasticsearchNodes", "GET, PUT"),
        ("DELETE", "/v1/tasks", "GET"),
        ("GET", "/v1/nodes/1/restart", "POST"),
        ("PUT", "/metrics", "GET"),
    ],
)
def test_wrong_method_is_405_with_allow(app: ApiApp, core: FakeCore, method: str, path: str, allow: str) -> None:
    answer = call(app, method, path, token=TOKEN)
    assert answer.status == 405
    assert answer.headers["Allow"] == allow
    assert method in answer.json()["error"]
    assert core.calls == []


@pytest.mark.parametrize("path", ["/nope", "/v1/tasks/", "/v1/nodes/1/explode", "/v1/es"])
def test_unknown_path_is_404(app: ApiApp, path: str) -> None:
    answer = call(app, "GET", path)
    assert answer.status == 404
    assert answer.json() == {"error": f"no such path: {path}"}


def test_unexpected_exception_is_500_json_and_logged(
    app: ApiApp, core: FakeCore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> tuple[NodeView, ...]:
        raise RuntimeError("state copy is corrupt")

    monkeypatch.setattr(core, "nodes", broken)
    with caplog.at_level(logging.ERROR, logger="es_framework.api.app"):
        answer = call(app, "GET", "/v1/tasks")
    assert answer.status == 500
    assert "internal error" in answer.json()["error"]
    assert "RuntimeError: state copy is corrupt" in caplog.text


# --- served over a real socket ---------------------------------------------------------------


def test_served_app_answers_over_http_and_stops(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    import requests

    from es_framework.api.server import serve

    core = FakeCore()
    caplog.set_level(logging.DEBUG)
    server = serve(ApiApp(core, token=TOKEN), "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.port}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        assert requests.get(f"{base}/health", timeout=5).json()["alive"] is True
        answer = requests.put(
            f"{base}/v1/cluster/elasticsearchNodes",
            json={"value": 4},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=5,
        )
        assert (answer.status_code, answer.json()) == (200, {"value": 4})
        assert core.calls == [Call("set_desired_nodes", 4)]
        refused = requests.put(f"{base}/v1/cluster/elasticsearchNodes", data=b"x" * (MAX_BODY_BYTES + 1), timeout=5)
        assert refused.status_code == 401  # the token is checked before the body is read
        # A body without Content-Length (chunked) is stopped at the limit too.
        chunks = (b"x" * 4096 for _ in range(MAX_BODY_BYTES // 4096 + 2))
        chunked = requests.put(f"{base}/v1/cluster/elasticsearchNodes", data=chunks, headers=auth, timeout=5)
        assert chunked.status_code == 413 and "over the limit" in chunked.json()["error"]
        # curl -d sends a form's Content-Type: the body is read as JSON all the same.
        form = {**auth, "Content-Type": "application/x-www-form-urlencoded"}
        answer = requests.put(f"{base}/v1/cluster/elasticsearchNodes", data='{"value": 5}', headers=form, timeout=5)
        assert (answer.status_code, answer.json()) == (200, {"value": 5})
    finally:
        server.shutdown()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base}/health", timeout=2)
    # Each request is logged at DEBUG by the app, and nothing by uvicorn on stderr or at INFO.
    assert any(r.levelno == logging.DEBUG and "GET /health 200" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.name.startswith("uvicorn") and r.levelno >= logging.INFO]
    assert capfd.readouterr().err == ""
