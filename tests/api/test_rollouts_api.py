"""POST /v1/cluster/restart, GET /v1/rollouts and POST /v1/rollouts/{id}/pause|resume|abort on the
fake core (es_framework/api/rollouts.py): 202 with the order, 409 while one runs, the commands, the
token, and the finished rollout in the history."""

from __future__ import annotations

import pytest

from es_framework.api.app import ApiApp
from es_framework.api.rollouts import force_reason
from es_framework.dev.fake_api import FakeCore
from tests.api.http_call import call


def test_cluster_restart_creates_a_rollout_and_the_commands_follow_it() -> None:
    app = ApiApp(FakeCore(), token="t0ken")
    assert call(app, "POST", "/v1/cluster/restart").status == 401
    created = call(app, "POST", "/v1/cluster/restart", token="t0ken")
    body = created.json()
    assert created.status == 202 and body["order"] == [1, 2, 3] and body["state"] == "running"
    assert call(app, "POST", "/v1/cluster/restart", token="t0ken").status == 409
    rollout_id = body["id"]
    listed = call(app, "GET", "/v1/rollouts").json()
    assert listed["current"]["id"] == rollout_id and listed["current"]["total"] == 3
    assert listed["current"]["steps"][0]["state"] == "pending"
    assert call(app, "POST", f"/v1/rollouts/{rollout_id}/pause", token="t0ken").json()["state"] == "paused"
    assert call(app, "POST", f"/v1/rollouts/{rollout_id}/resume", token="t0ken").json()["state"] == "running"
    assert call(app, "POST", f"/v1/rollouts/{rollout_id}/explode", token="t0ken").status == 404
    assert call(app, "POST", "/v1/rollouts/nope/abort", token="t0ken").status == 400
    assert call(app, "POST", "/v1/rollouts/restart-1/abort", token="t0ken").status == 404
    assert call(app, "POST", f"/v1/rollouts/{rollout_id}/abort", token="t0ken").status == 200
    listed = call(app, "GET", "/v1/rollouts").json()
    assert listed["current"] is None and listed["finished"][0]["state"] == "aborted"


def test_force_takes_a_reason_and_reaches_the_core() -> None:
    app = ApiApp(FakeCore(), token="t0ken")
    rollout_id = call(app, "POST", "/v1/cluster/restart", token="t0ken").json()["id"]
    path = f"/v1/rollouts/{rollout_id}/force"
    assert call(app, "POST", path, body={"force": "green needs it"}).status == 401
    for bad in (None, {"force": " "}, {"reason": "x"}):
        answer = call(app, "POST", path, token="t0ken", body=bad)
        assert answer.status == 400 and '{"force": "<why>"}' in answer.json()["error"], bad
    forced = call(app, "POST", path, token="t0ken", body={"force": "green needs it"})
    assert forced.status == 200 and forced.json()["id"] == rollout_id


def test_a_node_restart_is_queued() -> None:
    answer = call(ApiApp(FakeCore()), "POST", "/v1/nodes/2/restart")
    assert answer.status == 202 and "queued" in answer.json()["message"]


def test_a_forced_node_restart_needs_a_reason_and_reaches_the_core() -> None:
    core = FakeCore()
    app = ApiApp(core)
    forced = call(app, "POST", "/v1/nodes/2/restart", body={"force": "  the only node  "})
    assert forced.status == 202
    for bad in (
        {"force": ""},
        {"force": "   "},
        {"force": 3},
        {"force": "x", "more": 1},
        ["force"],
        {"force": "x" * 201},
    ):
        answer = call(app, "POST", "/v1/nodes/2/restart", body=bad)
        assert answer.status == 400 and '{"force": "<why>"}' in answer.json()["error"], bad


def test_force_reason_reads_only_an_empty_body_or_one_reason() -> None:
    def refuse(status: int, message: str) -> Exception:
        return ValueError(status, message)

    assert force_reason(b"", refuse) is None and force_reason(b"  \n", refuse) is None
    assert force_reason(b'{"force": " hung node "}', refuse) == "hung node"
    for raw in (b"{", b"\xff", b'{"force": null}', b"[]", b'"force"', b"[" * 5000):
        with pytest.raises(ValueError):
            force_reason(raw, refuse)
