"""``GET``/``PUT /v1/cluster/configuration`` over the running scheduler's core (``SchedulerCore`` on a
real Engine and SchedulerShell engine thread, a recording driver for Mesos, an in-memory store): the
token, 400 for an unknown, unchangeable or invalid flag (the parser's message), 409 while a rollout
runs, 202 with the configuration rollout and its order, 200 for no change — and a refused request
writes nothing and changes nothing. The fake core answers the same refusals."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from addict import Dict  # type: ignore[import-untyped]

from es_framework.api.app import ApiApp
from es_framework.app.scheduler_api import SchedulerCore, cluster_monitor
from es_framework.dev.fake_api import FakeCore
from es_framework.shell.driver import SchedulerShell
from tests.api.http_call import call
from tests.core.test_engine import MemoryStore
from tests.harness.builders import offer
from tests.shell.test_scheduler_shell import start_shell, wait_for

TOKEN = "configuration-token"
PATH = "/v1/cluster/configuration"


@pytest.fixture
def running() -> Iterator[tuple[ApiApp, SchedulerShell]]:
    """Three running nodes of a registered scheduler, and its API."""
    shell, stop, thread, drivers = start_shell(elasticsearchNodes="3")
    driver = drivers[-1]
    try:
        shell.registered(driver, Dict({"value": "fw-1"}), None)
        wait_for(lambda: shell.published.state.config is not None)
        shell.resourceOffers(driver, [Dict(offer(n)) for n in (1, 2, 3)])
        wait_for(lambda: len(shell.published.state.nodes) == 3)
        for record in list(shell.published.state.nodes.values()):
            status = {"task_id": {"value": record.task_id}, "state": "TASK_RUNNING", "agent_id": {"value": "a"}}
            shell.statusUpdate(driver, Dict(status))
        wait_for(lambda: all(r.state.value == "TASK_RUNNING" for r in shell.published.state.nodes.values()))
        monitor = cluster_monitor(shell.config, shell, lambda node_id: None)
        yield ApiApp(SchedulerCore(shell.config, shell, monitor), token=TOKEN), shell
    finally:
        stop.set()
        thread.join(10)


def writes(shell: SchedulerShell) -> int:
    store = shell.engine._store
    assert isinstance(store, MemoryStore)
    return len(store.writes)


def test_get_shows_the_changeable_flags_and_no_override(running: tuple[ApiApp, SchedulerShell]) -> None:
    app, shell = running
    body = call(app, "GET", PATH).json()
    assert body["values"]["elasticsearchRam"] == body["flags"]["elasticsearchRam"] == 2048
    assert body["overrides"] == {} and "elasticsearchRam" in body["changeable"]
    assert body["fingerprint"] == shell.published.state.config["fingerprint"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"elasticsearchRan": 4096}, "unknown flag 'elasticsearchRan'; did you mean elasticsearchRam"),
        ({"frameworkName": "other"}, "frameworkName cannot be changed at runtime: it needs a scheduler restart"),
        ({"webUiPort": 8080}, "webUiPort cannot be changed at runtime"),
        ({"elasticsearchRam": "lots"}, "--elasticsearchRam: 'lots' must be a number greater than 0 (MB)"),
        ({"elasticsearchDockerImage": "Not An Image"}, "--elasticsearchDockerImage: 'Not An Image' must be a Docker"),
        ({"elasticsearchSettingsLocation": "/nonexistent/es.yml"}, "is neither an existing file nor a URL"),
        ({}, "no flag to change"),
        (
            [1],
            "body: Input should be a valid dictionary or object to extract fields from, not [1]; expected a JSON "
            "object of flag names",
        ),
    ],
)
def test_a_refused_change_is_400_and_changes_nothing(
    running: tuple[ApiApp, SchedulerShell], change: Any, says: str
) -> None:
    app, shell = running
    before, config, written = shell.published.state, shell.engine.config, writes(shell)
    assert call(app, "PUT", PATH, change).status == 401  # the token, as for every change
    answer = call(app, "PUT", PATH, change, token=TOKEN)
    assert answer.status == 400 and says in answer.json()["error"], answer.json()
    assert shell.engine.config is config and writes(shell) == written
    assert shell.published.state == before and shell.published.state.rollout is None


def test_a_change_creates_the_configuration_rollout_and_a_second_one_waits(
    running: tuple[ApiApp, SchedulerShell],
) -> None:
    app, shell = running
    answer = call(app, "PUT", PATH, {"elasticsearchRam": 4096}, token=TOKEN)
    assert answer.status == 202, answer.json()
    body = answer.json()
    assert body["changed"] == ["elasticsearchRam"] and sorted(body["rollout"]["order"]) == [1, 2, 3]
    assert body["overrides"]["elasticsearchRam"]["value"] == "4096"
    current = call(app, "GET", "/v1/rollouts").json()["current"]
    assert current["id"] == body["rollout"]["id"] and current["reason"] == "configuration"
    assert call(app, "GET", "/v1/cluster").json()["configuration"]["elasticsearchRam"] == 4096
    shown = call(app, "GET", PATH).json()
    assert (shown["values"]["elasticsearchRam"], shown["flags"]["elasticsearchRam"]) == (4096, 2048)
    # The same again: nothing to do, even while the rollout runs.
    same = call(app, "PUT", PATH, {"elasticsearchRam": "4096"}, token=TOKEN)
    assert same.status == 200 and same.json()["changed"] == [] and same.json()["rollout"] is None
    before, written = shell.published.state, writes(shell)
    busy = call(app, "PUT", PATH, {"elasticsearchCpu": 2}, token=TOKEN)
    assert busy.status == 409, busy.json()
    assert f"rollout {body['rollout']['id']} (configuration) in progress; abort it first" in busy.json()["error"]
    assert writes(shell) == written and shell.published.state == before and shell.engine.config.cpus == 1.0


def test_the_fake_core_refuses_as_the_real_one() -> None:
    app = ApiApp(FakeCore(), token=TOKEN)
    assert call(app, "PUT", PATH, {"frameworkName": "x"}, token=TOKEN).status == 400
    assert call(app, "PUT", PATH, {"elasticsearchRam": 0}, token=TOKEN).status == 400
    accepted = call(app, "PUT", PATH, {"elasticsearchRam": 4096}, token=TOKEN)
    assert accepted.status == 200 and accepted.json()["changed"] == ["elasticsearchRam"]
    assert call(app, "GET", PATH).json()["values"]["elasticsearchRam"] == 4096
    assert call(app, "POST", "/v1/cluster/restart", token=TOKEN).status == 202
    assert call(app, "PUT", PATH, {"elasticsearchCpu": 2}, token=TOKEN).status == 409


def test_a_settings_file_is_read_and_checked_as_at_start(running: tuple[ApiApp, SchedulerShell], tmp_path: Any) -> None:
    app, shell = running
    broken = tmp_path / "broken.yml"
    broken.write_text("indices: [\n", encoding="utf-8")
    refused = call(app, "PUT", PATH, {"elasticsearchSettingsLocation": str(broken)}, token=TOKEN)
    assert refused.status == 400 and str(broken) in refused.json()["error"], refused.json()
    assert shell.engine.config.user_settings == {} and shell.published.state.config_overrides.empty
    good = tmp_path / "es.yml"
    good.write_text("indices.memory.index_buffer_size: 20%\n", encoding="utf-8")
    accepted = call(app, "PUT", PATH, {"elasticsearchSettingsLocation": str(good)}, token=TOKEN)
    assert accepted.status == 202, accepted.json()
    assert dict(shell.engine.config.user_settings) == {"indices.memory.index_buffer_size": "20%"}
    stored = shell.published.state.config_overrides
    assert stored.user_settings == {"indices.memory.index_buffer_size": "20%"}  # what a new leader starts from
