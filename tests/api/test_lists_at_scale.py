"""At 10,000 nodes every list of the REST API that grows with the cluster answers a bounded page
(``?offset=&limit=``, :mod:`es_framework.api.pages`), ``GET /v1/cluster`` caps its per-node lists,
and ``/metrics`` keeps a fixed number of series (issue 13). Sizes and counts are asserted, never
times."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from types import MappingProxyType
from typing import Any

import pytest

from es_framework.api.app import ApiApp
from es_framework.api.core import ClusterOverview, DrainProgress, Metrics
from es_framework.api.metrics import DRAIN_SERIES, OTHER_NODES, drain_series, render_metrics
from es_framework.api.pages import CLUSTER_LIST_CAP, MAX_LIMIT
from es_framework.core.volume_inventory import VolumeInventory
from es_framework.dev.fake_api import FakeCore, sample_node
from tests.api.http_call import Answer, call

NODES = 10_000


class ScaleCore(FakeCore):
    """The fake core with ``count`` running nodes, all of them leaving (a drain entry and a shard
    count each), one blocked agent per node, and a restart rollout of ``count`` steps under way."""

    def __init__(self, count: int) -> None:
        super().__init__(tuple(sample_node(i) for i in range(1, count + 1)))
        self.count = count
        self._inventory: VolumeInventory | None = None
        self.start_restart()

    def cluster(self) -> ClusterOverview:
        overview = super().cluster()
        drain = tuple(
            DrainProgress(i, i % 7, "waiting", "scale down to 1 node", "max_unavailable")
            for i in range(1, self.count + 1)
        )
        blocked = overview.blocked_agents[0]
        agents = tuple(replace(blocked, agent_id=f"agent-{i}-S0", node_id=i) for i in range(1, self.count + 1))
        return replace(overview, drain=drain, blocked_agents=agents)

    def volumes(self) -> VolumeInventory:
        # Built once: the fake's nodes do not change, and building 20,000 rows takes seconds.
        if self._inventory is None:
            self._inventory = super().volumes()
        return self._inventory

    def metrics(self) -> Metrics:
        return replace(
            super().metrics(), drain_shards_left=MappingProxyType({i: i % 97 for i in range(1, self.count + 1)})
        )


@pytest.fixture(scope="module")
def app() -> Iterator[ApiApp]:
    yield ApiApp(ScaleCore(NODES))


def _total(answer: Answer) -> int:
    return int(answer.headers["X-Total-Count"])


#: Each paged list: its path and where the paged entries are in the answer.
LISTS: dict[str, Callable[[Any], list[Any]]] = {
    "/v1/tasks": list,
    "/v1/agents": list,
    "/v1/volumes": lambda body: list(body["volumes"]),
    "/v1/cluster/endpoints": lambda body: list(body["http"]),
    "/v1/rollouts": lambda body: list(body["current"]["steps"]),
}


@pytest.mark.parametrize("path", list(LISTS))
def test_a_page_of_a_list_at_10000_nodes_is_bounded_and_the_whole_one_unchanged(app: ApiApp, path: str) -> None:
    entries = LISTS[path]
    whole = call(app, "GET", path)
    everything = entries(whole.json())
    assert whole.status == 200 and _total(whole) == len(everything) >= NODES  # no parameters: all, as before

    one = call(app, "GET", f"{path}?offset=5000&limit=100")
    assert one.status == 200 and _total(one) == len(everything)
    assert entries(one.json()) == everything[5000:5100]
    # A page's size follows its limit, not the cluster: 100 of 10,000+ entries is at most a fiftieth.
    assert len(one.body) * 50 < len(whole.body)

    biggest = call(app, "GET", f"{path}?limit={MAX_LIMIT}")
    assert len(entries(biggest.json())) == MAX_LIMIT and _total(biggest) == len(everything)

    # Past the end: an empty page with the same total, where a client's walk ends.
    for query in (f"offset={len(everything)}", f"offset={len(everything) + 5}&limit=10"):
        beyond = call(app, "GET", f"{path}?{query}")
        assert beyond.status == 200 and entries(beyond.json()) == [] and _total(beyond) == len(everything)


@pytest.mark.parametrize("path", list(LISTS))
@pytest.mark.parametrize("query", ["limit=0", f"limit={MAX_LIMIT + 1}", "offset=-1", "offset=x", "limit=1&limit=2"])
def test_a_bad_offset_or_limit_is_a_400_naming_it(path: str, query: str) -> None:
    small = FakeCore()
    small.start_restart()
    answer = call(ApiApp(small), "GET", f"{path}?{query}")
    assert answer.status == 400
    assert query.split("=", maxsplit=1)[0] in answer.json()["error"]


def test_the_rollouts_page_pages_steps_and_order_together_and_keeps_the_whole_progress(app: ApiApp) -> None:
    current = call(app, "GET", "/v1/rollouts?offset=9990&limit=50").json()["current"]
    assert [s["node_id"] for s in current["steps"]] == current["order"] == list(range(9991, NODES + 1))
    assert [s["position"] for s in current["steps"]] == list(range(9990, NODES))
    assert current["total"] == NODES


def test_the_volumes_page_keeps_the_whole_inventorys_counts(app: ApiApp) -> None:
    whole, one = call(app, "GET", "/v1/volumes").json(), call(app, "GET", "/v1/volumes?limit=3").json()
    assert len(one["volumes"]) == 3 and one["counts"] == whole["counts"]
    assert one["counts"]["total"] == len(whole["volumes"])


def test_the_endpoints_page_is_a_sample_of_running_nodes_in_node_id_order() -> None:
    core = FakeCore((sample_node(1), sample_node(2, state="TASK_FAILED"), sample_node(3), sample_node(4)))
    answer = call(ApiApp(core), "GET", "/v1/cluster/endpoints?offset=1&limit=1")
    assert answer.json() == {"http": ["agent3.example.com:31000"], "transport": ["agent3.example.com:31001"]}
    assert _total(answer) == 3  # the running nodes, not the records


def test_the_cluster_answer_caps_its_per_node_lists_and_counts_them(app: ApiApp) -> None:
    big = call(app, "GET", "/v1/cluster").json()
    assert [d["node_id"] for d in big["drain"]] == list(range(1, CLUSTER_LIST_CAP + 1))
    assert big["drain_total"] == NODES
    assert len(big["blocked_agents"]) == CLUSTER_LIST_CAP and big["blocked_agents_total"] == NODES
    assert len(big["events"]) == CLUSTER_LIST_CAP  # the fake has an event per node; the real core keeps 30
    # The answer at 10,000 nodes is the size of the one at 200 (both capped), give or take the
    # digits of the node ids and totals.
    small = call(ApiApp(ScaleCore(2 * CLUSTER_LIST_CAP)), "GET", "/v1/cluster")
    assert small.json()["drain_total"] == 2 * CLUSTER_LIST_CAP
    assert abs(len(call(app, "GET", "/v1/cluster").body) - len(small.body)) < len(small.body) / 50


def test_the_cluster_answer_below_the_cap_lists_everything() -> None:
    answer = call(ApiApp(ScaleCore(3)), "GET", "/v1/cluster").json()
    assert [d["node_id"] for d in answer["drain"]] == [1, 2, 3] and answer["drain_total"] == 3
    assert answer["blocked_agents_total"] == len(answer["blocked_agents"]) == 3


def _drain_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("es_mesos_drain_shards_left{")]


def test_metrics_at_10000_draining_nodes_keep_a_fixed_number_of_lines(app: ApiApp) -> None:
    text = call(app, "GET", "/metrics").body.decode()
    few = render_metrics(ScaleCore(DRAIN_SERIES + 1).metrics())
    # The same lines at 21 leaving nodes as at 10,000: the exposition does not grow with the cluster.
    assert len(text.splitlines()) == len(few.splitlines()) < 80
    assert len(text) < 8_000
    lines = _drain_lines(text)
    assert len(lines) == DRAIN_SERIES + 1 and lines[-1].startswith(
        f'es_mesos_drain_shards_left{{node_id="{OTHER_NODES}"}}'
    )
    # The series still add up to every shard left on every leaving node.
    assert sum(float(line.rsplit(" ", 1)[1]) for line in lines) == sum(i % 97 for i in range(1, NODES + 1))


def test_the_drain_series_are_the_nodes_with_most_shards_left_then_the_rest_summed() -> None:
    shards = {node: node for node in range(1, 31)} | {100: 30}
    series = drain_series(shards)
    # The 20 largest counts (30 twice: nodes 30 and 100; ties by node id), by node id as a number.
    assert [label for label, _ in series[:-1]] == [str(n) for n in (*range(12, 31), 100)]
    assert series[-1] == (OTHER_NODES, sum(range(1, 12)))
    assert drain_series({10: 1, 2: 3}) == [("2", 3), ("10", 1)]  # few nodes: each its own series, no rest
    assert drain_series({n: 1 for n in range(1, DRAIN_SERIES + 1)})[-1] == (str(DRAIN_SERIES), 1)
