"""Demo Elasticsearch nodes (a development tool) as a cluster of real processes on 127.0.0.1: documents,
shards spread over the nodes, nodes leaving and coming back, allocation filtering for drains."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from es_framework.dev.ports import free_port
from tests.harness.demo_nodes import DemoNodeProcess, wait_until

NDJSON = {"Content-Type": "application/x-ndjson"}


class Cluster:
    """Demo nodes n1..nN that all seed each other; ``start(name)`` (re)starts one on its own ``path.data``."""

    def __init__(self, tmp: Path, count: int, **extra: str) -> None:
        self.tmp = tmp
        self.names = [f"n{i}" for i in range(1, count + 1)]
        self.transport = {name: free_port() for name in self.names}
        self.http = {name: free_port() for name in self.names}
        self.extra = extra
        self.processes: dict[str, DemoNodeProcess] = {}

    def settings(self, name: str) -> dict[str, str]:
        return {
            "cluster.name": "demo",
            "node.name": name,
            "network.host": "127.0.0.1",
            "http.port": str(self.http[name]),
            "transport.port": str(self.transport[name]),
            "path.data": str(self.tmp / name / "data"),
            "discovery.seed_hosts": "[" + ", ".join(f"127.0.0.1:{p}" for p in self.transport.values()) + "]",
            "cluster.initial_master_nodes": "[" + ", ".join(self.names) + "]",
            "demo.relocation_delay": "0.3",
            **self.extra,
        }

    def start(self, name: str) -> DemoNodeProcess:
        process = DemoNodeProcess(self.tmp / name, self.settings(name))
        self.processes[name] = process
        process.wait_http()
        return process

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.http[name]}"

    def stop(self, name: str) -> None:
        assert self.processes.pop(name).stop() == 0

    def health(self, name: str, **params: str) -> dict[str, Any]:
        answer: dict[str, Any] = requests.get(self.url(name) + "/_cluster/health", params=params, timeout=10).json()
        return answer

    def wait_health(self, name: str, timeout: float = 20, **expected: Any) -> dict[str, Any]:
        def matches() -> dict[str, Any] | None:
            health = self.health(name)
            return health if all(health.get(k) == v for k, v in expected.items()) else None

        result: dict[str, Any] = wait_until(matches, timeout, f"health {expected} on {name}")
        return result

    def close(self) -> None:
        for process in self.processes.values():
            process.stop()


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Any]:
    made: list[Cluster] = []

    def make(count: int, **extra: str) -> Cluster:
        cluster = Cluster(tmp_path, count, **extra)
        made.append(cluster)
        for name in cluster.names:
            cluster.start(name)
        cluster.wait_health(cluster.names[0], number_of_nodes=count)
        # Every node is in the master's routing before the test creates indices (else they rebalance later).
        wait_until(
            lambda: len(requests.get(cluster.url("n1") + "/_cluster/state/nodes", timeout=10).json()["nodes"]) == count,
            10,
            f"{count} nodes in the cluster state",
        )
        return cluster

    yield make
    for cluster in made:
        cluster.close()


def bulk_body(index: str, start: int, stop: int) -> str:
    return "".join(
        json.dumps({"index": {"_index": index, "_id": str(i)}})
        + "\n"
        + json.dumps({"n": i, "color": ["red", "blue"][i % 2]})
        + "\n"
        for i in range(start, stop)
    )


def count(url: str, index: str = "idx") -> dict[str, Any]:
    answer: dict[str, Any] = requests.get(f"{url}/{index}/_count", timeout=10).json()
    return answer


def state_nodes(url: str) -> dict[str, Any]:
    nodes: dict[str, Any] = requests.get(url + "/_cluster/state/nodes", timeout=10).json()["nodes"]
    return nodes


def master_of(url: str) -> str | None:
    answer = requests.get(url + "/_cat/master?format=json", timeout=10)
    return str(answer.json()[0]["node"]) if answer.status_code == 200 else None


def shards_by_node(url: str) -> dict[str, int]:
    rows = requests.get(url + "/_cat/allocation?format=json", timeout=10).json()
    return {row["node"]: int(row["shards"]) for row in rows}


# ---------------------------------------------------------------------- documents across the cluster


def test_documents_through_one_node_are_counted_and_found_from_another(make_cluster: Any) -> None:
    cluster = make_cluster(3)
    n1, n2, n3 = (cluster.url(n) for n in cluster.names)
    created = requests.put(n1 + "/idx", json={"settings": {"number_of_shards": 3, "number_of_replicas": 1}}, timeout=30)
    assert created.json() == {"acknowledged": True, "shards_acknowledged": True, "index": "idx"}
    answer = requests.post(n2 + "/_bulk", data=bulk_body("idx", 0, 1000), headers=NDJSON, timeout=60).json()
    assert answer["errors"] is False
    assert len(answer["items"]) == 1000
    assert answer["items"][0]["index"]["status"] == 201
    assert answer["items"][0]["index"]["_shards"]["total"] == 2
    assert count(n3) == {"count": 1000, "_shards": {"total": 3, "successful": 3, "skipped": 0, "failed": 0}}
    # Once everything started, the copies end up balanced (two per node), moved there if need be.
    cluster.wait_health("n1", status="green", active_shards=6, relocating_shards=0, initializing_shards=0)
    assert shards_by_node(n1) == {"n1": 2, "n2": 2, "n3": 2}

    # Every node holds copies, and each shard's copies are on two different nodes.
    shards = requests.get(n1 + "/_cat/shards/idx?format=json", timeout=10).json()
    assert {row["node"] for row in shards} == {"n1", "n2", "n3"}
    for number in ("0", "1", "2"):
        copies = [row for row in shards if row["shard"] == number]
        assert len({row["node"] for row in copies}) == 2
        assert len({row["docs"] for row in copies}) == 1  # replica == primary
    assert sum(int(row["docs"]) for row in shards if row["prirep"] == "p") == 1000

    search = requests.get(n3 + "/idx/_search", params={"q": "color:red", "size": "5", "from": "10"}, timeout=10).json()
    assert search["hits"]["total"] == {"value": 500, "relation": "eq"}
    assert len(search["hits"]["hits"]) == 5
    assert all(hit["_source"]["color"] == "red" for hit in search["hits"]["hits"])
    term = requests.post(n2 + "/_search", json={"query": {"term": {"n": 42}}}, timeout=10).json()
    assert [hit["_id"] for hit in term["hits"]["hits"]] == ["42"]
    doc = requests.get(n1 + "/idx/_doc/42", timeout=10).json()
    assert doc["found"] is True and doc["_source"] == {"n": 42, "color": "red"}

    # Single documents, conflicts, deletes, errors in Elasticsearch's shapes.
    put = requests.put(n3 + "/idx/_doc/x", json={"n": -1}, timeout=10)
    assert put.status_code == 201 and put.json()["result"] == "created"
    again = requests.put(n3 + "/idx/_doc/x", json={"n": -2}, timeout=10)
    assert again.status_code == 200 and again.json()["_version"] == 2
    conflict = requests.put(n2 + "/idx/_create/x", json={"n": -3}, timeout=10)
    assert conflict.status_code == 409
    assert conflict.json()["error"]["type"] == "version_conflict_engine_exception"
    bad = requests.put(n2 + "/idx/_doc/y", json={"n": "not a number"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "mapper_parsing_exception"
    assert requests.delete(n1 + "/idx/_doc/x", timeout=10).json()["result"] == "deleted"
    assert requests.get(n1 + "/idx/_doc/x", timeout=10).status_code == 404
    missing = requests.get(n1 + "/nope/_count", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "index_not_found_exception"
    assert requests.post(n1 + "/_refresh", timeout=10).status_code == 200

    # Auto-created on first write, with Elasticsearch's defaults (1 shard, 1 replica).
    auto = requests.post(n2 + "/logs/_doc", json={"message": "hello world"}, timeout=30)
    assert auto.status_code == 201
    indices = {row["index"]: row for row in requests.get(n3 + "/_cat/indices?format=json", timeout=10).json()}
    assert (indices["logs"]["pri"], indices["logs"]["rep"], indices["logs"]["docs.count"]) == ("1", "1", "1")
    assert indices["idx"]["docs.count"] == "1000"
    text = requests.get(n3 + "/_cat/indices?v", timeout=10).text
    assert text.splitlines()[0].split()[:3] == ["health", "status", "index"]
    assert requests.delete(n1 + "/logs", timeout=10).json() == {"acknowledged": True}
    assert requests.head(n2 + "/logs", timeout=10).status_code == 404


def test_exclusion_drains_a_node_with_the_count_exact_throughout(make_cluster: Any) -> None:
    cluster = make_cluster(3)
    n1, n2, n3 = (cluster.url(n) for n in cluster.names)
    requests.put(n1 + "/idx", json={"settings": {"number_of_shards": 4, "number_of_replicas": 1}}, timeout=30)
    assert (
        requests.post(n1 + "/_bulk", data=bulk_body("idx", 0, 1000), headers=NDJSON, timeout=60).json()["errors"]
        is False
    )
    cluster.wait_health("n2", status="green")
    assert shards_by_node(n2)["n3"] > 0

    counts: list[int] = []
    failures: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            answer = count(n2)
            counts.append(answer["count"])
            failures.append(answer["_shards"]["failed"])

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        settings = requests.put(
            n1 + "/_cluster/settings",
            json={"persistent": {"cluster.routing.allocation.exclude._name": "n3"}},
            timeout=10,
        ).json()
        assert settings["acknowledged"] is True
        moving = wait_until(lambda: (h := cluster.health("n1"))["relocating_shards"] > 0 and h, 10, "relocations")
        assert moving["status"] == "green"
        cluster.wait_health("n1", relocating_shards=0, initializing_shards=0, status="green")
        wait_until(lambda: shards_by_node(n1).get("n3") == 0, 10, "n3 to hold no copy")
    finally:
        stop.set()
        watcher.join()
    assert counts and set(counts) == {1000}
    assert set(failures) == {0}
    assert shards_by_node(n1) == {"n1": 4, "n2": 4, "n3": 0}
    got = requests.get(n3 + "/_cluster/settings", timeout=10).json()
    assert got["persistent"] == {"cluster": {"routing": {"allocation": {"exclude": {"_name": "n3"}}}}}

    # Excluding n2 as well leaves one node for two copies of each shard: nothing more can move, and explain says why.
    requests.put(
        n1 + "/_cluster/settings", json={"transient": {"cluster.routing.allocation.exclude._name": "n2,n3"}}, timeout=10
    )
    rows = requests.get(n1 + "/_cat/shards/idx?format=json", timeout=10).json()
    on_n2 = next(row for row in rows if row["node"] == "n2")
    explain = requests.get(
        n1 + "/_cluster/allocation/explain",
        json={"index": "idx", "shard": int(on_n2["shard"]), "primary": on_n2["prirep"] == "p"},
        timeout=10,
    ).json()
    assert explain["can_remain_on_current_node"] == "no"
    assert explain["can_move_to_other_node"] == "no"
    deciders = {d["decider"] for n in explain["node_allocation_decisions"] for d in n["deciders"]}
    assert deciders == {"same_shard", "filter"}
    none_unassigned = requests.get(n1 + "/_cluster/allocation/explain", timeout=10)
    assert none_unassigned.status_code == 400
    # Clearing with null lets the cluster balance again.
    cleared = {
        "persistent": {"cluster.routing.allocation.exclude._name": None},
        "transient": {"cluster.routing.allocation.exclude._name": None},
    }
    requests.put(n1 + "/_cluster/settings", json=cleared, timeout=10)
    assert requests.get(n1 + "/_cluster/settings", timeout=10).json() == {"persistent": {}, "transient": {}}
    wait_until(lambda: shards_by_node(n1).get("n3", 0) > 0, 20, "rebalancing onto n3")
    assert count(n3)["count"] == 1000


def test_node_leaves_and_comes_back_with_the_same_data(make_cluster: Any) -> None:
    cluster = make_cluster(3)
    n1, n2 = cluster.url("n1"), cluster.url("n2")
    requests.put(n1 + "/idx", json={"settings": {"number_of_shards": 2, "number_of_replicas": 2}}, timeout=30)
    assert (
        requests.post(n1 + "/_bulk", data=bulk_body("idx", 0, 300), headers=NDJSON, timeout=60).json()["errors"]
        is False
    )
    cluster.wait_health("n1", status="green", active_shards=6)

    cluster.stop("n3")
    health = cluster.wait_health("n1", number_of_nodes=2, unassigned_shards=2)
    assert health["status"] == "yellow"
    assert count(n2)["count"] == 300
    explain = requests.get(n1 + "/_cluster/allocation/explain", timeout=10).json()
    assert explain["can_allocate"] == "no"
    assert {d["decider"] for n in explain["node_allocation_decisions"] for d in n["deciders"]} == {"same_shard"}
    # Writes while n3 is away reach the other copies.
    assert requests.put(n2 + "/idx/_doc/late", json={"n": 1000}, timeout=10).status_code == 201

    restarted = cluster.start("n3")
    cluster.wait_health("n1", status="green", number_of_nodes=3, timeout=30)
    assert count(cluster.url("n3"))["count"] == 301
    log = restarted.log()
    assert "recovered from" in log
    # The shard the late write did not touch had nothing to copy; the other was brought up to date.
    assert "files already equal, nothing copied" in log

    # A whole-cluster restart comes back with the same allocation, read from path.data.
    before = sorted(
        json.dumps(r, sort_keys=True) for r in requests.get(n1 + "/_cat/shards?format=json", timeout=10).json()
    )
    for name in cluster.names:
        cluster.stop(name)
    for name in cluster.names:
        cluster.start(name)
    cluster.wait_health("n1", status="green", number_of_nodes=3, timeout=30)
    after = sorted(
        json.dumps(r, sort_keys=True) for r in requests.get(n1 + "/_cat/shards?format=json", timeout=10).json()
    )
    assert after == before
    assert count(n2)["count"] == 301


def test_last_copy_gone_is_red_with_failed_shards_and_comes_back(make_cluster: Any) -> None:
    cluster = make_cluster(2)
    n1, n2 = cluster.url("n1"), cluster.url("n2")
    requests.put(n1 + "/idx", json={"settings": {"number_of_shards": 2, "number_of_replicas": 0}}, timeout=30)
    assert (
        requests.post(n1 + "/_bulk", data=bulk_body("idx", 0, 200), headers=NDJSON, timeout=60).json()["errors"]
        is False
    )
    cluster.wait_health("n1", status="green", active_shards=2)
    assert shards_by_node(n1) == {"n1": 1, "n2": 1}
    on_n2 = next(r for r in requests.get(n1 + "/_cat/shards?format=json", timeout=10).json() if r["node"] == "n2")

    cluster.stop("n2")
    cluster.wait_health("n1", status="red", unassigned_shards=1)
    partial = count(n1)
    assert partial["_shards"]["failed"] == 1
    assert partial["count"] == 200 - int(on_n2["docs"])
    explain = requests.get(n1 + "/_cluster/allocation/explain", timeout=10).json()
    assert explain["can_allocate"] == "no_valid_shard_copy"

    cluster.start("n2")
    cluster.wait_health("n1", status="green", timeout=30)
    assert count(n1) == {"count": 200, "_shards": {"total": 2, "successful": 2, "skipped": 0, "failed": 0}}
    assert count(n2)["count"] == 200


def test_voting_config_exclusions_are_recorded(make_cluster: Any) -> None:
    cluster = make_cluster(3)
    n1 = cluster.url("n1")
    bad = requests.post(n1 + "/_cluster/voting_config_exclusions", timeout=10)
    assert bad.status_code == 400
    added = requests.post(n1 + "/_cluster/voting_config_exclusions?node_names=n3", timeout=10)
    assert added.status_code == 200

    def exclusions() -> list[dict[str, str]]:
        state = requests.get(cluster.url("n2") + "/_cluster/state/metadata", timeout=10).json()
        result: list[dict[str, str]] = state["metadata"]["cluster_coordination"]["voting_config_exclusions"]
        return result

    master = requests.get(cluster.url("n3") + "/_cat/master?format=json", timeout=10).json()
    assert [row["node"] for row in master] == ["n1"]

    def cat_nodes() -> set[tuple[str, str, str]]:
        rows = requests.get(cluster.url("n2") + "/_cat/nodes?format=json", timeout=10).json()
        return {(row["name"], row["master"], row["node.role"]) for row in rows}

    expected = {("n1", "*", "dim"), ("n2", "-", "dim"), ("n3", "-", "dim")}
    wait_until(lambda: cat_nodes() == expected, 10, f"_cat/nodes to show {expected}")
    recorded = wait_until(exclusions, 10, "the exclusion on n2")
    assert [e["node_name"] for e in recorded] == ["n3"]
    assert recorded[0]["node_id"] != "_absent_"
    cleared = requests.delete(n1 + "/_cluster/voting_config_exclusions?wait_for_removal=false", timeout=10)
    assert cleared.status_code == 200
    wait_until(lambda: exclusions() == [], 10, "the exclusions to be cleared")


def test_elasticsearch_py_8_client_works(make_cluster: Any) -> None:
    """The calls the framework and its tests make with elasticsearch-py 8 (skipped when it is not installed)."""
    elasticsearch = pytest.importorskip("elasticsearch")
    from elasticsearch import helpers

    if not elasticsearch.__versionstr__.startswith("8."):
        pytest.skip("the demo node is major 8; a 9.x client sends compatible-with=9, which it rejects like ES 8")
    cluster = make_cluster(2)
    es = elasticsearch.Elasticsearch(cluster.url("n1"), request_timeout=30)
    other = elasticsearch.Elasticsearch(cluster.url("n2"), request_timeout=30)
    assert es.info()["tagline"].startswith("es-mesos demo node")
    assert es.ping()
    es.indices.create(index="books", settings={"number_of_shards": 2, "number_of_replicas": 1})
    assert es.indices.exists(index="books")
    ok, errors = helpers.bulk(es, ({"_index": "books", "_id": str(i), "title": f"book {i}"} for i in range(100)))
    assert (ok, errors) == (100, [])
    assert other.count(index="books")["count"] == 100
    es.index(index="books", id="x", document={"title": "extra"}, refresh=True)
    assert other.get(index="books", id="x")["_source"] == {"title": "extra"}
    with pytest.raises(elasticsearch.ConflictError):
        es.create(index="books", id="x", document={"title": "again"})
    with pytest.raises(elasticsearch.NotFoundError):
        es.count(index="missing")
    result = other.search(index="books", query={"match": {"title": "extra"}}, size=5)
    assert result["hits"]["total"]["value"] == 1
    health = es.cluster.health(wait_for_status="green", timeout="30s")
    assert health["status"] == "green"
    es.cluster.put_settings(persistent={"cluster.routing.allocation.exclude._name": "n2"})
    assert es.cluster.get_settings()["persistent"]["cluster"]["routing"]["allocation"]["exclude"]["_name"] == "n2"
    wait_until(lambda: cluster.health("n1")["unassigned_shards"] == 0, 10, "settled")
    explain = es.cluster.allocation_explain(index="books", shard=0, primary=True)
    assert explain["index"] == "books"
    es.cluster.post_voting_config_exclusions(node_names="n2")
    state = es.cluster.state(metric="metadata")
    assert state["metadata"]["cluster_coordination"]["voting_config_exclusions"][0]["node_name"] == "n2"
    es.cluster.delete_voting_config_exclusions(wait_for_removal=False)
    shards = es.cat.shards(index="books", format="json")
    assert len(shards) == 4
    es.indices.refresh(index="books")
    # Sniffing (GET /_nodes/_all/http): a client given one node finds the other.
    sniffer = elasticsearch.Elasticsearch(cluster.url("n1"), sniff_on_start=True, request_timeout=30)
    assert sorted(n.config.port for n in sniffer.transport.node_pool.all()) == sorted(cluster.http.values())
    sniffer.close()
    es.delete(index="books", id="x")
    es.indices.delete(index="books")
    assert not other.indices.exists(index="books")


def test_scale_three_to_five_to_two_by_draining(tmp_path: Path) -> None:
    # Five names in every node's seeds and initial masters (as the framework would list them); three start.
    cluster = Cluster(tmp_path, 5)
    try:
        for name in cluster.names[:3]:
            cluster.start(name)
        cluster.wait_health("n1", number_of_nodes=3)
        n1 = cluster.url("n1")
        requests.put(n1 + "/idx", json={"settings": {"number_of_shards": 5, "number_of_replicas": 1}}, timeout=30)
        assert (
            requests.post(n1 + "/_bulk", data=bulk_body("idx", 0, 500), headers=NDJSON, timeout=60).json()["errors"]
            is False
        )
        for name in ("n4", "n5"):
            cluster.start(name)
        # Green with nothing moving also holds in the moment after n4 and n5 joined and before the
        # master's first rebalance: wait for the balanced end state, ten copies two per node, settled.
        balanced = {name: 2 for name in cluster.names}

        def rebalanced() -> bool:
            if shards_by_node(n1) != balanced:
                return False
            health = cluster.health("n1")
            return (health["status"], health["relocating_shards"], health["initializing_shards"]) == ("green", 0, 0)

        wait_until(rebalanced, 30, f"the rebalance onto n4 and n5 ({balanced}, green, nothing moving)")

        leaving = "n3,n4,n5"
        assert (
            requests.post(n1 + f"/_cluster/voting_config_exclusions?node_names={leaving}", timeout=10).status_code
            == 200
        )
        requests.put(
            n1 + "/_cluster/settings",
            json={"persistent": {"cluster.routing.allocation.exclude._name": leaving}},
            timeout=10,
        )
        wait_until(
            lambda: {k: v for k, v in shards_by_node(n1).items() if k in leaving} == {"n3": 0, "n4": 0, "n5": 0},
            30,
            "the drain",
        )
        assert count(cluster.url("n4"))["count"] == 500
        for name in ("n3", "n4", "n5"):
            cluster.stop(name)
        health = cluster.wait_health("n2", number_of_nodes=2, status="green", timeout=20)
        assert health["active_shards"] == 10
        assert count(cluster.url("n2"))["count"] == 500
        cleared = requests.delete(n1 + "/_cluster/voting_config_exclusions", timeout=40)
        assert cleared.status_code == 200
    finally:
        cluster.close()


def test_master_killed_and_replaced(make_cluster: Any) -> None:
    cluster = make_cluster(3)
    n2, n3 = cluster.url("n2"), cluster.url("n3")
    requests.put(n2 + "/idx", json={"settings": {"number_of_shards": 3, "number_of_replicas": 1}}, timeout=30)
    assert (
        requests.post(n3 + "/_bulk", data=bulk_body("idx", 0, 600), headers=NDJSON, timeout=60).json()["errors"]
        is False
    )
    cluster.wait_health("n2", status="green", relocating_shards=0, initializing_shards=0)

    killed = cluster.processes.pop("n1")
    killed.process.kill()
    killed.process.wait()
    # n2 takes over (lowest remaining name, two of three voters), re-creates the lost copies, keeps every document.
    wait_until(lambda: master_of(n3) == "n2", 15, "n2 to be master")
    wait_until(lambda: len(state_nodes(n3)) == 2, 15, "n1 to leave the cluster state")
    cluster.wait_health("n3", status="green", number_of_nodes=2, relocating_shards=0, initializing_shards=0, timeout=30)
    assert count(n3)["count"] == 600
    assert requests.put(n3 + "/idx/_doc/while-away", json={"n": -1}, timeout=10).status_code == 201

    # The replacement (same name, same path.data) is master again after taking over the newest state.
    cluster.start("n1")
    wait_until(lambda: master_of(n3) == "n1", 15, "n1 to be master")
    cluster.wait_health("n1", status="green", number_of_nodes=3, relocating_shards=0, initializing_shards=0, timeout=30)
    assert count(cluster.url("n1"))["count"] == 601
    assert requests.get(cluster.url("n1") + "/idx/_doc/while-away", timeout=10).json()["found"] is True


def test_writes_during_relocation_reach_every_copy(make_cluster: Any) -> None:
    cluster = make_cluster(3)
    n1, n2 = cluster.url("n1"), cluster.url("n2")
    requests.put(n1 + "/idx", json={"settings": {"number_of_shards": 3, "number_of_replicas": 1}}, timeout=30)
    assert (
        requests.post(n1 + "/_bulk", data=bulk_body("idx", 0, 300), headers=NDJSON, timeout=60).json()["errors"]
        is False
    )
    cluster.wait_health("n1", status="green", relocating_shards=0, initializing_shards=0)

    written: list[int] = []
    stop = threading.Event()

    def writer() -> None:
        number = 1000
        while not stop.is_set():
            answer = requests.post(n2 + "/_bulk", data=bulk_body("idx", number, number + 5), headers=NDJSON, timeout=30)
            assert answer.json()["errors"] is False
            written.extend(range(number, number + 5))
            number += 5

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        requests.put(
            n1 + "/_cluster/settings",
            json={"transient": {"cluster.routing.allocation.exclude._name": "n3"}},
            timeout=10,
        )
        wait_until(lambda: cluster.health("n1")["relocating_shards"] > 0, 10, "relocations")
        cluster.wait_health("n1", relocating_shards=0, initializing_shards=0, status="green", timeout=30)
    finally:
        stop.set()
        thread.join()
    assert written
    assert count(cluster.url("n3"))["count"] == 300 + len(written)
    shards = requests.get(n1 + "/_cat/shards/idx?format=json", timeout=10).json()
    for number in ("0", "1", "2"):
        copies = {row["node"]: row["docs"] for row in shards if row["shard"] == number}
        assert "n3" not in copies
        assert len(set(copies.values())) == 1, copies  # primary and replica hold the same documents


def test_a_node_outside_the_seed_list_joins_and_everyone_lists_it(tmp_path: Path) -> None:
    """As with the framework's unicast_hosts.txt: only the masters are seeds. A data-only node that
    seeds the masters must still be found by them (its probe is its join)."""
    cluster = Cluster(tmp_path, 3)
    masters_only = "[" + ", ".join(f"127.0.0.1:{cluster.transport[n]}" for n in ("n1", "n2")) + "]"
    cluster.names = ["n1", "n2"]  # the bootstrap list
    cluster.extra = {"discovery.seed_hosts": masters_only}
    try:
        for name in ("n1", "n2"):
            cluster.start(name)
        cluster.wait_health("n1", number_of_nodes=2)
        cluster.extra = {"discovery.seed_hosts": masters_only, "node.roles": "[data, ingest]"}
        cluster.start("n3")

        def everyone_lists_three() -> bool:
            return all(
                len(requests.get(cluster.url(n) + "/_nodes", timeout=5).json()["nodes"]) == 3
                for n in ("n1", "n2", "n3")
            )

        wait_until(everyone_lists_three, 30, "every node lists the data-only node")
    finally:
        cluster.close()
