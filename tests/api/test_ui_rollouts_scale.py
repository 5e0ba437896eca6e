"""The web UI's rollout panel (issue 12) and its large-cluster node table (issue 13) in a real
browser: Playwright driving Debian's Chromium against the served app over the fake core. One
browser serves the module's tests; each test has its own context.

Skipped when Chromium or Playwright is missing, unless ``CI`` is set: then it fails.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest

from es_framework.api.app import ApiApp
from es_framework.api.server import serve
from es_framework.dev.fake_api import Call, FakeCore, sample_node
from es_framework.dev.fake_rollouts import SAMPLE_BLOCKED, sample_rollout
from tests.api.test_ui_browser import CHROMIUM, CHROMIUM_ARGS, TOKEN, _browser_problem

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

#: Every node id a multiple of this is unreachable in the large fake cluster.
UNREACHABLE_EVERY = 1000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    problem = _browser_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"{problem} (CI is set: the browser test must run)", pytrace=False)
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _open(browser: Browser, core: FakeCore, problems: list[str], requests: list[Any]) -> Iterator[Page]:
    server = serve(ApiApp(core, token=TOKEN), "127.0.0.1", 0)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)

        # Playwright cannot wrap a builtin method such as ``requests.append`` as a listener.
        def record(request: Any) -> None:
            requests.append(request)

        page.on("request", record)
        page.goto(f"http://127.0.0.1:{server.port}/#token={TOKEN}")
        yield page
    finally:
        context.close()
        server.shutdown()


def test_rollout_panel_shows_steps_and_the_blocking_predicate_and_pauses_with_the_token(browser: Browser) -> None:
    from playwright.sync_api import expect

    core = FakeCore()
    core.rollout = dataclasses.replace(
        sample_rollout(), disabled_predicates=frozenset({"master_quorum", "cluster_green"})
    )
    core.rollout_blocked = SAMPLE_BLOCKED
    problems: list[str] = []
    requests: list[Any] = []
    for page in _open(browser, core, problems, requests):
        expect(page.locator("#rollout-state")).to_have_text("running")
        expect(page.locator("#rollout-reason")).to_have_text("configuration")
        expect(page.locator("#rollout-done")).to_have_text("1 of 3 nodes done")
        expect(page.locator("#rollout-elapsed")).to_have_text("10 min 0 s")
        expect(page.locator("#rollout-upgrade")).to_have_text("Elasticsearch 8.15.0 → 8.16.1")
        expect(page.locator("#rollout-disabled")).to_have_text(
            "cluster_green, master_quorum (disabled by the operator)"
        )
        expect(page.locator("#rollout-blocked")).to_have_text(
            "held by cluster_green: node 3: cluster health is yellow, not green: 2 replica shards unassigned"
        )
        steps = page.locator("#rollout-steps tbody tr")
        expect(steps).to_have_count(3)
        for index, (node_id, state) in enumerate(((1, "done"), (2, "restarting"), (3, "pending"))):
            expect(steps.nth(index).locator("td").nth(1)).to_have_text(str(node_id))
            expect(steps.nth(index).locator("td").nth(3)).to_have_text(state)
        expect(page.locator("#rollout-resume")).to_be_hidden()
        expect(page.locator("#restart-all")).to_be_disabled()

        page.click("#rollout-pause")
        expect(page.locator("#rollout-state")).to_have_text("paused")
        expect(page.locator("#rollout-msg")).to_have_text(f"rollout {core.rollout.id} is paused")
        expect(page.locator("#rollout-note")).to_have_text("paused: paused by the operator")
        expect(page.locator("#rollout-pause")).to_be_hidden()
        expect(page.locator("#rollout-resume")).to_be_visible()
        assert core.calls == [Call("rollout_pause", 0)]
        posts = [r for r in requests if r.method == "POST"]
        assert [urlsplit(r.url).path for r in posts] == [f"/v1/rollouts/{core.rollout.id}/pause"]
        assert posts[0].headers.get("authorization") == f"Bearer {TOKEN}"

        # Abort asks first; once aborted the rollout is among the finished ones and a restart may start.
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#rollout-abort")
        expect(page.locator("#rollout-none")).to_be_visible()
        expect(page.locator("#rollouts-finished tbody tr")).to_have_count(1)
        expect(page.locator("#rollouts-finished tbody tr")).to_contain_text("aborted")
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#restart-all")
        expect(page.locator("#rollout-msg")).to_have_text("rollout restart-1790000000000 started: 3 nodes")
        expect(page.locator("#rollout-reason")).to_have_text("restart")
        expect(page.locator("#rollout-disabled")).to_have_text("none")
        assert core.calls[1:] == [Call("rollout_abort", 0), Call("start_restart", 0)]
    assert problems == []


def test_ten_thousand_nodes_show_a_summary_and_a_search_of_one_page(browser: Browser) -> None:
    from playwright.sync_api import expect

    nodes = tuple(
        sample_node(i, state="TASK_UNREACHABLE" if i % UNREACHABLE_EVERY == 0 else "TASK_RUNNING")
        for i in range(1, 10_001)
    )
    core = FakeCore(nodes)
    core.rollout = sample_rollout(tuple(range(1, 10_001)))
    problems: list[str] = []
    requests: list[Any] = []
    started = time.monotonic()
    for page in _open(browser, core, problems, requests):
        summary = page.locator("#node-summary")
        expect(summary).to_contain_text(
            "10000 nodes — by state: TASK_RUNNING 9990 · TASK_UNREACHABLE 10; not running: 10", timeout=30_000
        )
        loaded = time.monotonic() - started
        print(f"10,000-node page: summary shown after {loaded:.1f} s")
        assert loaded < 30
        # No row per node: the table waits for a search; the rollout's steps are one window of them.
        expect(page.locator("#nodes tbody tr")).to_have_count(0)
        expect(page.locator("#rollout-done")).to_have_text("1 of 10000 nodes done")
        expect(page.locator("#rollout-steps-summary")).to_have_text("steps 1–200 of 10000 listed")
        expect(page.locator("#rollout-steps tbody tr")).to_have_count(200)
        assert {parse_qs(urlsplit(r.url).query)["limit"][0] for r in requests if "/v1/rollouts" in r.url} == {"200"}

        before = len(requests)
        page.fill("#search-input", "9876")
        page.click("#search-button")
        expect(page.locator("#search-msg")).to_have_text("1 found (1 request to GET /v1/tasks)")
        rows = page.locator("#nodes tbody tr")
        expect(rows).to_have_count(1)
        expect(rows).to_contain_text("agent9876.example.com")
        searches = [
            parse_qs(urlsplit(r.url).query)
            for r in requests[before:]
            if urlsplit(r.url).path == "/v1/tasks" and urlsplit(r.url).query != "offset=0&limit=201"
        ]
        assert searches == [{"offset": ["9776"], "limit": ["100"]}]

        page.fill("#search-input", "elasticsearch-node10000-0f3a9c10000")
        page.click("#search-button")
        expect(page.locator("#search-msg")).to_have_text("1 found (1 request to GET /v1/tasks)")
        expect(rows).to_have_count(1)
        expect(rows).to_contain_text("TASK_UNREACHABLE")

        # The volumes: one page of GET /v1/volumes, the whole inventory's counts, the rest counted.
        volumes = page.locator("#volumes tbody tr")
        expect(volumes).to_have_count(201, timeout=60_000)
        expect(volumes.last).to_contain_text("19802 more not shown")
        expect(page.locator("#volumes-summary")).to_have_text("20002 volumes: 20000 held by a task, 2 orphans")
        asked = {urlsplit(r.url).query for r in requests if urlsplit(r.url).path == "/v1/volumes"}
        assert asked == {"offset=0&limit=200"}
    assert problems == []
