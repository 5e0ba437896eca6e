"""The web UI in a real browser: Playwright driving Debian's Chromium against the served app.

The page must show the fake core's three nodes, scale through the API (refusing a wrong token
visibly, then succeeding with the token from the page's ``#token=`` fragment), and run without
script errors or Content-Security-Policy violations. The screenshot is saved under the test's
temporary directory and copied to ``test-artifacts/ui.png`` (both paths are printed).

Skipped when Chromium or Playwright is missing, unless ``CI`` is set: then it fails.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from es_framework.api.app import ApiApp
from es_framework.api.core import ClusterOverview, WaitingReason, WaitingView
from es_framework.api.server import ApiServer, serve
from es_framework.dev.fake_api import Call, FakeCore

CHROMIUM = "/usr/bin/chromium"
TOKEN = "browser-test-token"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _browser_problem() -> str | None:
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -r requirements-dev.txt)"
    return None


@pytest.fixture
def served() -> Iterator[tuple[FakeCore, ApiServer]]:
    problem = _browser_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"{problem} (CI is set: the browser test must run)", pytrace=False)
        pytest.skip(problem)
    core = FakeCore()
    server = serve(ApiApp(core, token=TOKEN), "127.0.0.1", 0)
    try:
        yield core, server
    finally:
        server.shutdown()


def test_page_shows_nodes_and_scales(served: tuple[FakeCore, ApiServer], tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    core, server = served
    problems: list[str] = []
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            page = context.new_page()
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
            page.goto(f"http://127.0.0.1:{server.port}/#token={TOKEN}")

            rows = page.locator("#nodes tbody tr")
            expect(rows).to_have_count(3)
            for node_id in (1, 2, 3):
                row = rows.nth(node_id - 1)
                expect(row).to_contain_text(f"agent{node_id}.example.com")
                expect(row).to_contain_text("TASK_RUNNING")
                expect(row).to_contain_text(f"elasticsearch{node_id}data")
            expect(page.locator("#cluster-name")).to_have_text("mesos-ha")
            expect(page.locator("#mode")).to_have_text("Mesos (production)")
            expect(page.locator("#mode-note")).to_be_empty()
            expect(page.locator("#waiting")).to_be_empty()
            expect(page.locator("#uuid")).to_have_text("kM3x2fTqQ6a1b2c3d4e5fA")
            expect(page.locator("#health")).to_have_text("green")
            expect(page.locator("#running")).to_have_text("3")
            expect(page.locator("#desired")).to_have_text("3")
            declines = page.locator("#declines tbody tr")
            expect(declines).to_have_count(3)
            # The failing rules show at once; every rule's outcome, in order, when opened.
            why = declines.nth(1).locator("details.why")
            expect(why.locator("summary")).to_contain_text("2 of 8 rules failed")
            expect(why.locator("summary .pill")).to_have_text(["mem", "ports"])
            tooltip = (why.locator("summary").get_attribute("title") or "").split("\n")
            assert len(tooltip) == 8 and tooltip[0] == "passed cluster_full: 1 of 3 nodes missing"
            assert tooltip[4].startswith("FAILED mem: not enough mem")
            why.locator("summary").click()
            outcomes = why.locator("ol.outcomes li")
            expect(outcomes).to_have_count(8)
            expect(outcomes.nth(4)).to_have_text('FAILED mem: not enough mem: 1024 MB offered, 2048 MB needed "big"')
            expect(outcomes.nth(4)).to_have_class("failed")
            expect(declines.nth(2).locator("details")).to_have_count(0)
            expect(page.locator("#security")).to_contain_text("security is off")
            # The fragment's token must not stay in the address bar.
            assert "token" not in page.url

            # A wrong token typed in the field wins over the fragment's: refused, shown, nothing changed.
            page.fill("#token-input", "wrong")
            page.fill("#scale-input", "4")
            page.click("#scale-button")
            expect(page.locator("#scale-msg")).to_contain_text("refused (401): wrong bearer token")
            assert core.calls == []

            page.fill("#token-input", "")
            page.fill("#scale-input", "2")
            page.click("#scale-button")
            expect(page.locator("#scale-msg")).to_have_text("desired nodes set to 2")
            assert core.calls == [Call("set_desired_nodes", 2)]
            expect(page.locator("#desired")).to_have_text("2")
            # With 2 desired and 3 present the fake core drains node 3: the page shows it.
            expect(page.locator("#drain tbody tr")).to_have_count(1)
            expect(page.locator("#drain tbody tr")).to_contain_text("scale down to 2 nodes")
            # The page was refreshed since: the opened explanation is still open.
            expect(page.locator("#declines tbody tr").nth(1).locator("details.why")).to_have_attribute("open", "")

            screenshot = tmp_path / "ui.png"
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            context.close()
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(screenshot, ARTIFACTS / "ui.png")
    print(f"screenshot: {screenshot} (copied to {ARTIFACTS / 'ui.png'})")
    assert screenshot.stat().st_size > 10_000
    # The browser reports the deliberately refused PUT on its console; nothing else may appear.
    assert [p for p in problems if "401 (Unauthorized)" not in p] == []


class LocalDemoCore(FakeCore):
    """Local mode with demo nodes and a fifth node that no agent can take."""

    def cluster(self) -> ClusterOverview:
        reasons = (WaitingReason("agent_has_node", 12, "this agent already runs node 4"),)
        message = "node 5 waiting for an offer: declined offers by first failing rule: agent_has_node 12"
        waiting = WaitingView((5,), 1, 1_700_000_000.0, reasons, message)
        return replace(super().cluster(), demo_nodes=True, mode_label="", waiting=waiting, desired_nodes=5)


def test_page_says_local_mode_and_its_demo_nodes_in_the_header(tmp_path: Path) -> None:
    problem = _browser_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"{problem} (CI is set: the browser test must run)", pytrace=False)
        pytest.skip(problem)
    from playwright.sync_api import expect, sync_playwright

    server = serve(ApiApp(LocalDemoCore(local=True)), "127.0.0.1", 0)
    problems: list[str] = []
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS
            )
            try:
                page = context.new_page()
                page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
                page.goto(f"http://127.0.0.1:{server.port}/")
                expect(page.locator("header #mode")).to_have_text("local mode · demo nodes, not Elasticsearch")
                expect(page.locator("#mode-note")).to_contain_text("the demo node, which is NOT Elasticsearch")
                # Issue 15: the node beyond what the agents hold says that it waits, and why.
                expect(page.locator("#waiting")).to_contain_text(
                    "node 5 waiting for an offer: declined offers by first failing rule: agent_has_node 12"
                )
            finally:
                context.close()
    finally:
        server.shutdown()
    assert problems == []
