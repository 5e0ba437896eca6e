"""Predicates disabled by name through the API (es_framework/api/rollouts.py): ``POST
/v1/cluster/restart`` with ``{"disable_predicates": [...]}`` and ``POST /v1/rollouts/{id}/predicates``
on the fake core and on the real scheduler core; 400 with nothing changed for a name that is unknown
or never disabled; the set shown in GET /v1/rollouts; one WARNING per request; the OpenAPI document."""

from __future__ import annotations

import logging

import pytest

from es_framework.api.app import ApiApp
from es_framework.api.rollout_views import finished_view
from es_framework.api.rollouts import PREDICATES_BODY
from es_framework.core.predicates import DISABLEABLE, NEVER_DISABLED
from es_framework.core.rollouts import RolloutReason
from es_framework.core.state_document import state_from_json
from es_framework.dev.fake_api import FakeCore
from tests.api.http_call import call, resolved
from tests.api.test_scheduler_api import scheduler_core
from tests.core.test_engine import FW
from tests.core.test_engine_rollouts import cluster

TOKEN = "t0ken"


def test_a_restart_may_disable_predicates_and_a_refusal_creates_nothing(caplog: pytest.LogCaptureFixture) -> None:
    app = ApiApp(FakeCore(), token=TOKEN)
    for bad in ({"disable_predicates": ["max_unavailable"]}, {"disable_predicates": ["nope"]}):
        refused = call(app, "POST", "/v1/cluster/restart", token=TOKEN, body=bad)
        assert refused.status == 400, bad
        assert call(app, "GET", "/v1/rollouts").json()["current"] is None
    malformed: object
    for malformed in ({"disable_predicates": "cluster_green"}, {"disable": []}, [], {"disable_predicates": [1]}):
        answer = call(app, "POST", "/v1/cluster/restart", token=TOKEN, body=malformed)
        assert answer.status == 400 and PREDICATES_BODY in answer.json()["error"], malformed
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="es_framework.api.app"):
        created = call(
            app,
            "POST",
            "/v1/cluster/restart",
            token=TOKEN,
            body={"disable_predicates": ["shards_settled", "cluster_green"]},
        )
    assert created.status == 202 and created.json()["disabled_predicates"] == ["cluster_green", "shards_settled"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "cluster_green, shards_settled" in warnings[0], warnings
    listed = call(app, "GET", "/v1/rollouts").json()["current"]
    assert listed["disabled_predicates"] == ["cluster_green", "shards_settled"]


def test_the_running_rollouts_set_is_replaced_and_shown(caplog: pytest.LogCaptureFixture) -> None:
    app = ApiApp(FakeCore(), token=TOKEN)
    created = call(app, "POST", "/v1/cluster/restart", token=TOKEN).json()
    assert created["disabled_predicates"] == []
    path = f"/v1/rollouts/{created['id']}/predicates"
    assert call(app, "POST", path, body={"disable_predicates": ["cluster_green"]}).status == 401
    for bad in (None, {"disable_predicates": list(NEVER_DISABLED)[:1]}, {"disable_predicates": ["x"]}):
        assert call(app, "POST", path, token=TOKEN, body=bad).status == 400, bad
    assert call(app, "GET", "/v1/rollouts").json()["current"]["disabled_predicates"] == []
    with caplog.at_level(logging.WARNING, logger="es_framework.api.app"):
        caplog.clear()
        answer = call(app, "POST", path, token=TOKEN, body={"disable_predicates": ["master_quorum"]})
        assert answer.status == 200 and answer.json()["disabled_predicates"] == ["master_quorum"]
        assert [r.levelno for r in caplog.records].count(logging.WARNING) == 1
    cleared = call(app, "POST", path, token=TOKEN, body={"disable_predicates": []})
    assert cleared.status == 200 and cleared.json()["disabled_predicates"] == []
    assert (
        call(app, "POST", "/v1/rollouts/restart-1/predicates", token=TOKEN, body={"disable_predicates": []}).status
        == 404
    )


def test_the_real_core_persists_the_set_with_the_rollout(monkeypatch: pytest.MonkeyPatch) -> None:
    engine, store, _, _ = cluster(3)
    core = scheduler_core(engine)
    # No engine thread here: the command runs on the test's thread (its calls are none: no step starts).
    monkeypatch.setattr(core.shell, "call", lambda body, timeout=0.0: body()[0])
    view = core.start_restart(frozenset({"cluster_green"}))
    assert view.disabled_predicates == ("cluster_green",)
    assert engine.state.rollout is not None and engine.state.rollout.disabled_predicates == {"cluster_green"}
    changed = core.rollout_command(view.id, "predicates", disabled=frozenset({"started_copy_elsewhere"}))
    assert changed.disabled_predicates == ("started_copy_elsewhere",)
    stored = state_from_json(store.document, FW).rollout  # what a new leader reads
    assert stored is not None and stored.disabled_predicates == {"started_copy_elsewhere"}
    engine.rollout_command(view.id, "abort")
    assert finished_view(engine.state.rollout_history[-1]).disabled_predicates == ()
    assert engine.start_rollout(RolloutReason.RESTART)[0].disabled_predicates == frozenset()


def test_the_openapi_document_names_what_may_be_disabled() -> None:
    document = call(ApiApp(FakeCore()), "GET", "/v1/openapi.json").json()
    body = document["paths"]["/v1/rollouts/{rollout_id}/predicates"]["post"]["requestBody"]
    schema = resolved(document, body["content"]["application/json"]["schema"])
    items = schema["properties"]["disable_predicates"]["items"]
    assert body["required"] is True and items["enum"] == list(DISABLEABLE)
    restart = document["paths"]["/v1/cluster/restart"]["post"]["requestBody"]
    assert restart["required"] is False
    assert "disabled_predicates" in document["components"]["schemas"]["Rollout"]["required"]
