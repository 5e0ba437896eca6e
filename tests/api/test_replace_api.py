"""POST /v1/nodes/{id}/replace on the fake core: 202 "queued" for the disruption planner, or with
``{"force": "<why>"}`` at once (the reason reaches the core); any other body is a 400 naming both."""

from __future__ import annotations

from es_framework.api.app import ApiApp
from es_framework.dev.fake_api import FakeCore
from tests.api.http_call import call


def test_a_replace_is_queued_and_a_forced_one_goes_at_once() -> None:
    app = ApiApp(FakeCore())
    queued = call(app, "POST", "/v1/nodes/2/replace")
    assert queued.status == 202 and "replace queued" in queued.json()["message"]
    forced = call(app, "POST", "/v1/nodes/2/replace", body={"force": " the only node "})
    assert forced.status == 202 and forced.json()["message"] == "node 2 will be replaced"


def test_any_other_body_is_refused_and_reaches_nothing() -> None:
    core = FakeCore()
    app = ApiApp(core)
    for bad in ({"force": ""}, {"force": 3}, {"force": "x", "more": 1}, {"replace": "now"}):
        answer = call(app, "POST", "/v1/nodes/2/replace", body=bad)
        assert answer.status == 400 and '{"force": "<why>"}' in answer.json()["error"], bad
    assert core.calls == []


def test_the_document_describes_the_force_body_of_both_commands() -> None:
    paths = call(ApiApp(FakeCore()), "GET", "/v1/openapi.json").json()["paths"]
    restart, replace = paths["/v1/nodes/{node_id}/restart"]["post"], paths["/v1/nodes/{node_id}/replace"]["post"]
    assert replace["requestBody"] == restart["requestBody"]
    assert "planner" in replace["summary"] and replace["requestBody"]["required"] is False
