"""``GET /v1/volumes`` and ``GET /v1/profiles``: over the fake core, over the real scheduler core on a
real engine, and against the OpenAPI document."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pytest
import schemathesis

from es_framework.api.app import ApiApp
from es_framework.api.server import ApiServer
from es_framework.core.engine import Engine
from es_framework.core.volume_inventory import VolumeRow
from es_framework.core.volume_profiles import profile_catalog
from es_framework.dev.fake_api import FakeCore, sample_node, sample_volume_config
from tests.api import test_ui_browser as ui_browser
from tests.api.http_call import call
from tests.api.test_scheduler_api import scheduler_core
from tests.core.test_engine import launched, make, status
from tests.harness.builders import config

TOKEN = "volumes-token"


def fake_app(core: FakeCore | None = None) -> ApiApp:
    return ApiApp(core or FakeCore(), token=TOKEN)


def test_volumes_lists_both_volumes_of_every_node_id_with_the_counts() -> None:
    answer = call(fake_app(), "GET", "/v1/volumes")
    assert answer.status == 200
    body = answer.json()
    # Three running nodes and node 4, gone after a scale-down.
    assert [(v["node_id"], v["role"]) for v in body["volumes"]] == [
        (i, role) for i in (1, 2, 3, 4) for role in ("config", "data")
    ]
    assert [v["name"] for v in body["volumes"][:2]] == ["elasticsearch1config", "elasticsearch1data"]
    assert body["counts"] == {"total": 8, "held": 6, "orphans": 2, "profile_differs": 1, "removed": 0}
    assert body["desired_nodes"] == 3 and body["torn_down_at"] is None
    first = body["volumes"][0]
    assert first["held"] is True and first["holder_state"] == "TASK_RUNNING"
    assert first["holder_task_id"] == sample_node(1).task_id
    assert first["held_since"] == "2026-09-21T14:13:50Z"  # ISO 8601 in UTC, as every time of the API
    orphan = body["volumes"][6]
    assert orphan["orphan"] is True and orphan["held"] is False
    assert orphan["orphan_reason"] == "node 4 is above the desired 3 node(s) (scaled down)"
    differs = body["volumes"][1]
    assert (differs["profile"], differs["configured_profile"], differs["profile_differs"]) == ("gold", "default", True)


def test_a_scale_down_makes_the_leaving_nodes_volumes_orphans_while_its_task_still_holds_them() -> None:
    core = FakeCore()
    core.set_desired_nodes(2)
    body = call(fake_app(core), "GET", "/v1/volumes").json()
    leaving = [v for v in body["volumes"] if v["node_id"] == 3]
    assert all(v["orphan"] and v["held"] for v in leaving)
    assert leaving[0]["orphan_reason"].endswith("its task still holds them until it is stopped")
    assert body["counts"]["orphans"] == 4


def test_an_unreachable_node_still_holds_and_one_declared_gone_no_longer_does() -> None:
    core = FakeCore((sample_node(1), sample_node(2), sample_node(3, state="TASK_UNREACHABLE")))
    app = fake_app(core)
    unreachable = [v for v in call(app, "GET", "/v1/volumes").json()["volumes"] if v["node_id"] == 3]
    assert [(v["held"], v["holder_state"]) for v in unreachable] == [(True, "TASK_UNREACHABLE")] * 2
    core.declare_gone(3)
    gone = [v for v in call(app, "GET", "/v1/volumes").json()["volumes"] if v["node_id"] == 3]
    assert [(v["held"], v["holder_state"], v["held_since"]) for v in gone] == [(False, None, None)] * 2
    assert gone[0]["last_agent_id"] == "agent-3-S0"  # still where it was last attached


def test_profiles_lists_the_profile_catalog() -> None:
    answer = call(fake_app(), "GET", "/v1/profiles")
    assert answer.status == 200
    assert answer.json() == profile_catalog(sample_volume_config())
    assert all(isinstance(p["name"], str) for p in answer.json())


@pytest.mark.parametrize("path", ["/v1/volumes", "/v1/profiles"])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_the_inventory_is_read_only(path: str, method: str) -> None:
    answer = call(fake_app(), method, path, token=TOKEN)
    assert answer.status == 405
    assert answer.headers["Allow"] == "GET"


def test_the_document_describes_every_field_of_a_volume_row() -> None:
    schemas = call(ApiApp(FakeCore(), token="t"), "GET", "/v1/openapi.json").json()["components"]["schemas"]
    volume = schemas["Volume"]
    assert list(volume["properties"]) == [f.name for f in fields(VolumeRow)]
    assert volume["required"] == list(volume["properties"])
    inventory = schemas["VolumeInventory"]
    described = {
        **volume["properties"],
        **inventory["properties"],
        **schemas["VolumeCounts"]["properties"],
        **schemas["Profile"]["properties"],
    }
    assert [name for name, schema in described.items() if not schema.get("description")] == []


# --- the real scheduler core over a real engine ----------------------------------------------------


def rexray_engine() -> Engine:
    """Three nodes launched with REX-Ray volumes; node 2's agent unreachable; then scaled to 2 nodes
    in the state (node 3's task, still launching, holds its volumes until it is stopped)."""
    engine, _, _ = make(externalVolumeDriver="rexray", volumeProfile="data=gold")
    tasks = launched(engine, 1, 2, 3)
    engine.on_update(status(tasks[1], "TASK_RUNNING", "agent-1-S0"))
    engine.on_update(status(tasks[2], "TASK_UNREACHABLE", "agent-2-S0", uuid=None))
    engine.state = replace(engine.state, desired_nodes=2)
    return engine


def test_the_real_core_lists_what_the_engine_recorded_at_launch() -> None:
    engine = rexray_engine()
    inventory = scheduler_core(engine).volumes()
    assert [(r.node_id, r.role, r.driver, r.profile) for r in inventory.rows] == [
        (i, role, "rexray", profile) for i in (1, 2, 3) for role, profile in (("config", "default"), ("data", "gold"))
    ]
    assert [r.last_agent_id for r in inventory.rows] == ["agent-1-S0"] * 2 + ["agent-2-S0"] * 2 + ["agent-3-S0"] * 2
    assert [r.holder_state for r in inventory.rows] == (
        ["TASK_RUNNING"] * 2 + ["TASK_UNREACHABLE"] * 2 + ["LAUNCHING"] * 2
    )
    assert [r.orphan for r in inventory.rows] == [False] * 4 + [True] * 2
    assert inventory.profile_differs == 0  # the configuration has not changed since


def test_the_real_core_marks_a_profile_the_configuration_no_longer_names() -> None:
    engine = rexray_engine()
    core = scheduler_core(engine)
    core.config = config(externalVolumeDriver="rexray")  # restarted with the data profile left out
    differs = [(r.node_id, r.role) for r in core.volumes().rows if r.profile_differs]
    assert differs == [(1, "data"), (2, "data"), (3, "data")]


@pytest.mark.parametrize("path", ["/v1/volumes", "/v1/profiles"])
def test_the_real_cores_answers_keep_to_the_openapi_document(path: str) -> None:
    schema = schemathesis.openapi.from_asgi("/v1/openapi.json", ApiApp(scheduler_core(rexray_engine()), token="t"))
    case = schema[path]["GET"].Case()
    response = case.call()
    assert response.status_code == 200
    case.validate_response(response)
    body: Any = response.json()
    if path == "/v1/volumes":
        assert body["counts"]["total"] == 6 and body["counts"]["held"] == 6 and body["counts"]["orphans"] == 2


# --- the web UI's volumes section --------------------------------------------------------------------

served = ui_browser.served  # the served fake cluster (skipped without Chromium and Playwright, unless CI)


def test_the_page_lists_the_volumes_and_flags_the_orphans(served: tuple[FakeCore, ApiServer], tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    _, server = served
    problems: list[str] = []
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=ui_browser.CHROMIUM, args=ui_browser.CHROMIUM_ARGS
        )
        try:
            page = context.new_page()
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
            page.goto(f"http://127.0.0.1:{server.port}/")
            rows = page.locator("#volumes tbody tr")
            expect(rows).to_have_count(8)
            expect(page.locator("#volumes-summary")).to_have_text("8 volumes: 6 held by a task, 2 orphans")
            expect(rows.nth(0)).to_contain_text("elasticsearch1config")
            expect(rows.nth(0)).to_contain_text("TASK_RUNNING since")
            expect(rows.nth(1)).to_contain_text("profile differs: configured default")
            expect(rows.nth(7)).to_contain_text("orphan: node 4 is above the desired 3 node(s) (scaled down)")
        finally:
            context.close()
    assert problems == []
