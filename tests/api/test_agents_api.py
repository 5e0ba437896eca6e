"""The agents in the REST API: ``GET /v1/agents``, the blocked agents and ``start_blocked`` of
``GET /v1/cluster``, and ``DELETE /v1/agents/{agent_id}/failures`` (token, 400, 404, 200), over the
fake core and over the real scheduler core (a real engine, and for the DELETE its engine thread)."""

from __future__ import annotations

import base64
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from addict import Dict  # type: ignore[import-untyped]

from es_framework.api.app import ApiApp
from es_framework.app.scheduler_api import SchedulerCore, cluster_monitor
from es_framework.contract import AgentCheck, AgentCheckReport
from es_framework.core.engine import Engine
from es_framework.dev.fake_api import Call, FakeCore
from tests.api.http_call import call
from tests.api.test_scheduler_api import scheduler_core
from tests.core.test_engine import launched, make, status
from tests.harness.builders import offer
from tests.shell.test_scheduler_shell import start_shell, wait_for

TOKEN = "agents-token"
MAP_COUNT = AgentCheck("vm.max_map_count", "65530", "at least 262144", "sysctl -w vm.max_map_count=262144")


@pytest.fixture
def core() -> FakeCore:
    return FakeCore()


@pytest.fixture
def app(core: FakeCore) -> ApiApp:
    return ApiApp(core, token=TOKEN)


# --- over the fake core ---------------------------------------------------------------------------


def test_agents_lists_every_agent_and_its_block(app: ApiApp) -> None:
    agents = call(app, "GET", "/v1/agents").json()
    assert [a["agent_id"] for a in agents] == ["agent-1-S0", "agent-2-S0", "agent-3-S0", "agent-9-S0"]
    assert [a["blocked"] is None for a in agents] == [True, True, True, False]
    blocked = agents[3]["blocked"]
    assert blocked["checks"] == [
        {
            "name": "vm.max_map_count",
            "found": "65530",
            "needed": "at least 262144",
            "fix": "sysctl -w vm.max_map_count=262144",
        }
    ]
    assert blocked["blocked_at"] == "2026-09-21T14:13:20Z"
    assert blocked["blocked_until"] == "2026-09-21T14:23:20Z"
    assert (blocked["node_id"], blocked["source"]) == (3, "report")
    assert blocked["message"] == (
        "agent agent-9-S0 (agent9.example.com) failed vm.max_map_count is 65530, needs at least 262144; blocked until "
        "14:23:20 UTC; fix: sysctl -w vm.max_map_count=262144"
    )


def test_the_cluster_shows_the_blocked_agents(app: ApiApp) -> None:
    cluster = call(app, "GET", "/v1/cluster").json()
    assert [b["agent_id"] for b in cluster["blocked_agents"]] == ["agent-9-S0"]
    assert cluster["start_blocked"] is None


def test_clearing_needs_the_token(app: ApiApp, core: FakeCore) -> None:
    assert call(app, "DELETE", "/v1/agents/agent-9-S0/failures").status == 401
    assert call(app, "DELETE", "/v1/agents/agent-9-S0/failures", token="wrong").status == 401
    assert core.calls == []


@pytest.mark.parametrize("agent_id", ["agent%209", "-S0", "x" * 300, "agent%00"])
def test_what_is_no_agent_id_is_refused(app: ApiApp, core: FakeCore, agent_id: str) -> None:
    answer = call(app, "DELETE", f"/v1/agents/{agent_id}/failures", token=TOKEN)
    assert answer.status == 400
    assert "expected an agent id" in answer.json()["error"]
    assert core.calls == []


def test_an_unknown_agent_is_404(app: ApiApp, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="es_framework.api.app"):
        answer = call(app, "DELETE", "/v1/agents/agent-7-S0/failures", token=TOKEN)
    assert answer.status == 404
    assert answer.json()["error"] == "no agent agent-7-S0 has offered to this scheduler or failed an agent check"
    assert any("clear agent agent-7-S0 failures refused (404)" in r.getMessage() for r in caplog.records)


def test_clearing_lifts_the_block(app: ApiApp, core: FakeCore, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="es_framework.api.app"):
        answer = call(app, "DELETE", "/v1/agents/agent-9-S0/failures", token=TOKEN)
    assert answer.status == 200
    assert answer.json() == {
        "agent_id": "agent-9-S0",
        "message": "agent agent-9-S0 (agent9.example.com): block lifted by the operator",
    }
    assert core.calls == [Call("clear_agent_failures", "agent-9-S0")]
    assert any("clear agent agent-9-S0 failures accepted" in r.getMessage() for r in caplog.records)
    assert call(app, "GET", "/v1/cluster").json()["blocked_agents"] == []
    # Again: nothing in force, which is no error.
    again = call(app, "DELETE", "/v1/agents/agent-9-S0/failures", token=TOKEN)
    assert again.status == 200 and "nothing to clear" in again.json()["message"]


def test_only_delete_clears(app: ApiApp) -> None:
    answer = call(app, "POST", "/v1/agents/agent-9-S0/failures", token=TOKEN)
    assert answer.status == 405 and answer.headers["Allow"] == "DELETE"


# --- over the real core ---------------------------------------------------------------------------


def short(task_id: str, agent: int) -> dict[str, Any]:
    data = AgentCheckReport(f"agent{agent}.example.com", (MAP_COUNT,)).encode()
    return status(task_id, "TASK_FAILED", f"agent-{agent}-S0", data=base64.b64encode(data).decode("ascii"))


def every_agent_short() -> Engine:
    """One node wanted; agents 1 and 2 each failed vm.max_map_count with it."""
    engine, _, _ = make(elasticsearchNodes="1")
    (task_id,) = launched(engine, 1).values()
    engine.on_update(short(task_id, 1))
    (task_id,) = launched(engine, 2).values()
    engine.on_update(short(task_id, 2))
    engine.on_offers([offer(1), offer(2)])
    return engine


def test_the_real_core_says_why_no_node_can_start() -> None:
    cluster = scheduler_core(every_agent_short()).cluster()
    assert [b.agent_id for b in cluster.blocked_agents] == ["agent-1-S0", "agent-2-S0"]
    assert cluster.blocked_agents[0].checks[0].fix == "sysctl -w vm.max_map_count=262144"
    assert cluster.start_blocked is not None
    assert cluster.start_blocked.startswith(
        "no node can start: 1 node(s) missing, and every agent that offered failed an agent check: agent agent-1-S0 "
        "(agent1.example.com) failed vm.max_map_count is 65530, needs at least 262144; blocked until"
    )
    (decline,) = cluster.declines
    assert (decline.reason, decline.count) == ("agent_check", 2)
    assert decline.last_message.startswith("agent agent-2-S0 (agent2.example.com) failed vm.max_map_count")
    assert [(o.rule, o.passed) for o in decline.outcomes][:2] == [("cluster_full", True), ("agent_check", False)]


def test_the_real_cores_answers_keep_to_the_openapi_document() -> None:
    schema = schemathesis.openapi.from_asgi("/v1/openapi.json", ApiApp(scheduler_core(every_agent_short()), token="t"))
    for path in ("/v1/cluster", "/v1/agents"):
        case = schema[path]["GET"].Case()
        response = case.call()
        case.validate_response(response)
    assert [a["blocked"]["node_id"] for a in response.json()] == [1, 1]


@contextlib.contextmanager
def agent_1_blocked() -> Iterator[tuple[Any, Any, ApiApp]]:
    """A real shell thread whose only node failed agent 1's checks: (shell, driver, API over the real core)."""
    shell, stop, thread, drivers = start_shell(elasticsearchNodes="1")
    driver = drivers[-1]
    try:
        shell.resourceOffers(driver, [Dict(offer(1))])
        wait_for(lambda: len(shell.published.state.nodes) == 1)
        (record,) = shell.published.state.nodes.values()
        shell.statusUpdate(driver, Dict(short(record.task_id, 1)))
        wait_for(lambda: not shell.published.state.nodes)
        app = ApiApp(
            SchedulerCore(shell.config, shell, cluster_monitor(shell.config, shell, lambda n: None)), token=TOKEN
        )
        assert [a["agent_id"] for a in call(app, "GET", "/v1/cluster").json()["blocked_agents"]] == ["agent-1-S0"]
        yield shell, driver, app
    finally:
        stop.set()
        thread.join(10)


def test_clearing_through_the_real_core_revives_offers_and_the_agent_takes_the_node() -> None:
    with agent_1_blocked() as (shell, driver, app):
        revives = len([c for c in driver.calls if c[0] == "revive"])
        answer = call(app, "DELETE", "/v1/agents/agent-1-S0/failures", token=TOKEN)
        assert answer.status == 200, answer.json()
        assert "block lifted by the operator" in answer.json()["message"]
        assert len([c for c in driver.calls if c[0] == "revive"]) == revives + 1
        assert call(app, "GET", "/v1/cluster").json()["blocked_agents"] == []
        shell.resourceOffers(driver, [Dict(offer(1))])
        wait_for(lambda: len(shell.published.state.nodes) == 1)
        assert call(app, "DELETE", "/v1/agents/agent-5-S0/failures", token=TOKEN).status == 404


def test_an_agent_mesos_reports_lost_loses_its_block() -> None:
    """pymesos' ``slaveLost`` (a FAILURE event without an executor) reaches the engine: whatever
    comes back under that id registers again and is tried again."""
    with agent_1_blocked() as (shell, driver, app):
        shell.slaveLost(driver, Dict({"value": "agent-1-S0"}))
        wait_for(lambda: call(app, "GET", "/v1/cluster").json()["blocked_agents"] == [])
