"""The answers of the REST API's lists whose length grows with the cluster, paged or capped as
:mod:`es_framework.api.pages` says: each function takes the core, the query string and the app's
``refuse`` (which builds the 400 of a bad offset or limit) and gives the JSON payload and headers.

- ``GET /v1/agents``: the array, paged.
- ``GET /v1/volumes``: the ``volumes`` array paged; ``counts`` stay those of the whole inventory.
- ``GET /v1/cluster/endpoints``: the running nodes paged (by node id); ``http`` and ``transport``
  are the addresses of that page's nodes, and ``X-Total-Count`` counts the running nodes. Without
  parameters every address, as before: a client that wants a sample asks for ``?limit=``.
- ``GET /v1/rollouts``: the current rollout's ``steps`` and ``order`` (both by position) paged;
  ``done`` and ``total`` stay the whole rollout's, ``X-Total-Count`` is its step count (0 with no
  rollout). Finished rollouts carry no steps and are few (the core keeps a fixed number).
- ``GET /v1/cluster``: one object the web UI polls, so its per-node lists (``drain``,
  ``blocked_agents``) are capped at :data:`~es_framework.api.pages.CLUSTER_LIST_CAP` with
  ``drain_total`` and ``blocked_agents_total`` beside them. ``declines`` is bounded by the offer
  rules and ``waiting.node_ids`` by the core (20); ``events`` is bounded by the core too (30), and
  capped here as well so that no core can make the answer grow with the cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from es_framework.api.core import ApiCore
from es_framework.api.pages import Headers, bounds, capped, page, total_header, window
from es_framework.api.views import to_json

Refuse = Callable[[int, str], Exception]
RUNNING = "TASK_RUNNING"


def agents_page(core: ApiCore, query: str, refuse: Refuse) -> tuple[Any, Headers]:
    return page(query, core.agents(), refuse)


def volumes_page(core: ApiCore, query: str, refuse: Refuse) -> tuple[Any, Headers]:
    # The query is checked before the inventory is built: a bad one costs nothing at 10,000 nodes.
    offset, limit = bounds(query, refuse)
    inventory = core.volumes()
    rows, headers = window(inventory.rows, offset, limit)
    # Only the page's rows are written; each count is the inventory's property of that name, so of
    # the whole inventory.
    answer = replace(inventory, rows=tuple(rows)).to_json()
    answer["counts"] = {name: getattr(inventory, name) for name in answer["counts"]}
    return answer, headers


def endpoints_page(core: ApiCore, query: str, refuse: Refuse) -> tuple[Any, Headers]:
    offset, limit = bounds(query, refuse)
    running, headers = window([n for n in core.nodes() if n.state == RUNNING], offset, limit)
    return {
        "http": [n.http_address for n in running if n.http_address],
        "transport": [n.transport_address for n in running if n.transport_address],
    }, headers


def rollouts_page(core: ApiCore, query: str, refuse: Refuse) -> tuple[Any, Headers]:
    offset, limit = bounds(query, refuse)
    rollouts = core.rollouts()
    current = rollouts.current
    if current is None:
        return rollouts, total_header(0)
    steps, headers = window(current.steps, offset, limit)
    order, _ = window(current.order, offset, limit)
    return replace(rollouts, current=replace(current, steps=tuple(steps), order=tuple(order))), headers


def cluster_answer(core: ApiCore) -> dict[str, Any]:
    overview = core.cluster()
    drain, drain_total = capped(overview.drain)
    blocked, blocked_total = capped(overview.blocked_agents)
    events, _ = capped(overview.events)
    shown = replace(overview, drain=tuple(drain), blocked_agents=tuple(blocked), events=tuple(events))
    answer: dict[str, Any] = to_json(shown)
    answer["drain_total"] = drain_total
    answer["blocked_agents_total"] = blocked_total
    return answer
