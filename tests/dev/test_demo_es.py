"""The demo Elasticsearch node (a development tool): configuration, discovery, locking, media types."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from es_framework.dev.demo_es import TAGLINE, SettingsError, load_settings, write_launcher
from es_framework.dev.demo_es.rest import media_type_problem
from es_framework.dev.demo_es.settings import parse_yaml
from es_framework.dev.ports import free_port
from tests.harness.demo_nodes import DemoNodeProcess, get, wait_until


@pytest.fixture
def nodes() -> Iterator[list[DemoNodeProcess]]:
    started: list[DemoNodeProcess] = []
    yield started
    for node in started:
        node.stop()


def node_settings(tmp: Path, name: str, seeds: list[int], **extra: str) -> dict[str, str]:
    return {
        "cluster.name": "demo",
        "node.name": name,
        "network.host": "127.0.0.1",
        "http.port": str(free_port()),
        "transport.port": str(free_port()),
        "path.data": str(tmp / name / "data"),
        "discovery.seed_hosts": "[" + ", ".join(f"127.0.0.1:{p}" for p in seeds) + "]",
        **extra,
    }


# ---------------------------------------------------------------------- settings (in-process)


def test_yaml_subset_flattens_nested_keys_and_lists() -> None:
    text = """
# comment
cluster:
  name: "my cluster"   # trailing comment
  initial_master_nodes:
    - n1
    - 'n2'
node.name: n1
discovery.seed_hosts: [a:1, "b:2"]
"""
    assert parse_yaml(text) == {
        "cluster.name": "my cluster",
        "cluster.initial_master_nodes": ["n1", "n2"],
        "node.name": "n1",
        "discovery.seed_hosts": ["a:1", "b:2"],
    }


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("discovery.zen.minimum_master_nodes", "unknown setting [discovery.zen.minimum_master_nodes]"),
        ("index.number_of_shards", "node settings must not contain any index level settings"),
        ("cluster.nmae", "unknown setting [cluster.nmae]"),
        ("node.master", "unknown setting [node.master]"),
    ],
)
def test_settings_elasticsearch_8_rejects_are_rejected(tmp_path: Path, key: str, fragment: str) -> None:
    (tmp_path / "elasticsearch.yml").write_text(f"{key}: 1\n")
    with pytest.raises(SettingsError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        load_settings([], {"ES_PATH_CONF": str(tmp_path)})


def test_e_arguments_override_the_file(tmp_path: Path) -> None:
    (tmp_path / "elasticsearch.yml").write_text("cluster.name: a\nnode.roles: [master, data]\n")
    settings = load_settings(["-Ecluster.name=b", "-E", "node.attr.zone=z1"], {"ES_PATH_CONF": str(tmp_path)})
    assert settings.get("cluster.name") == "b"
    assert settings.get("node.attr.zone") == "z1"
    assert settings.get_list("node.roles") == ["master", "data"]
    with pytest.raises(SettingsError, match="unknown role"):
        load_settings(["-Enode.roles=[master, chef]"], {})


def test_media_type_check_like_an_8_server() -> None:
    assert media_type_problem("application/json", None) is None
    assert media_type_problem("application/vnd.elasticsearch+json; compatible-with=8", None) is None
    assert media_type_problem("application/vnd.elasticsearch+json; compatible-with=7", None) is None
    problem = media_type_problem("application/vnd.elasticsearch+json; compatible-with=9", None)
    assert problem is not None
    assert "found 9" in problem


# ---------------------------------------------------------------------- processes


def test_three_nodes_form_one_cluster_and_see_each_other(tmp_path: Path, nodes: list[DemoNodeProcess]) -> None:
    transports = [free_port() for _ in range(3)]
    names = ["n1", "n2", "n3"]
    for index, name in enumerate(names):
        settings = node_settings(
            tmp_path,
            name,
            [p for p in transports if p != transports[index]],
            **{"transport.port": str(transports[index])},
        )
        settings["cluster.initial_master_nodes"] = "[n1, n2, n3]"
        nodes.append(DemoNodeProcess(tmp_path / name, settings))
    for node in nodes:
        root = node.wait_http()
        assert root["tagline"] == TAGLINE
        assert root["version"]["number"] == "8.x-demo"

    def formed() -> set[str] | None:
        uuids = {get(n.url + "/")[1]["cluster_uuid"] for n in nodes}
        return uuids if len(uuids) == 1 and "_na_" not in uuids else None

    wait_until(formed, 10, "one cluster uuid on every node")
    for node in nodes:
        listed = wait_until(lambda n=node: len(get(n.url + "/_nodes")[1]["nodes"]) == 3, 10, "three nodes")
        assert listed
        status, health = get(node.url + "/_cluster/health")
        assert status == 200
        assert health["number_of_nodes"] == 3
        assert health["status"] == "green"
    assert "demo node" in nodes[0].log()


def test_uuid_persists_across_restart_and_followers_learn_it(tmp_path: Path, nodes: list[DemoNodeProcess]) -> None:
    t1, t2 = free_port(), free_port()
    first = node_settings(tmp_path, "n1", [t2], **{"transport.port": str(t1), "cluster.initial_master_nodes": "n1"})
    nodes.append(DemoNodeProcess(tmp_path / "n1", first))
    nodes[0].wait_http()
    uuid = wait_until(lambda: (u := get(nodes[0].url + "/")[1]["cluster_uuid"]) != "_na_" and u, 10, "a uuid")
    second = node_settings(tmp_path, "n2", [t1], **{"transport.port": str(t2)})
    nodes.append(DemoNodeProcess(tmp_path / "n2", second))
    nodes[1].wait_http()
    wait_until(lambda: get(nodes[1].url + "/")[1]["cluster_uuid"] == uuid, 10, "the follower to learn the uuid")
    assert nodes[0].stop() == 0
    assert "stopped demo node" in nodes[0].log()
    # Restart n1 with the same data and no initial masters: the uuid comes back from path.data.
    first.pop("cluster.initial_master_nodes")
    first["discovery.seed_hosts"] = "[]"
    nodes.append(DemoNodeProcess(tmp_path / "n1", first))
    assert nodes[2].wait_http()["cluster_uuid"] == uuid


def test_second_process_on_the_same_data_path_fails(tmp_path: Path, nodes: list[DemoNodeProcess]) -> None:
    settings = node_settings(tmp_path, "n1", [], **{"cluster.initial_master_nodes": "n1"})
    nodes.append(DemoNodeProcess(tmp_path / "a", settings))
    nodes[0].wait_http()
    clash = dict(settings, **{"http.port": str(free_port()), "transport.port": str(free_port())})
    second = DemoNodeProcess(tmp_path / "b", clash)
    assert second.process.wait(timeout=10) == 1
    assert "failed to obtain node locks" in second.log()


def test_bad_setting_exits_1_and_bootstrap_check_exits_78(tmp_path: Path) -> None:
    bad = DemoNodeProcess(tmp_path / "bad", node_settings(tmp_path, "bad", []), "-Ediscovery.zen.ping.unicast.hosts=x")
    assert bad.process.wait(timeout=10) == 1
    assert "unknown setting [discovery.zen.ping.unicast.hosts]" in bad.log()
    failing = DemoNodeProcess(
        tmp_path / "boot", node_settings(tmp_path, "boot", [], **{"demo.fail_bootstrap_check": "true"})
    )
    assert failing.process.wait(timeout=10) == 78
    assert "bootstrap check failure [1] of [1]: max virtual memory areas" in failing.log()


def test_http_checks_compatible_with_and_cluster_health_before_forming(
    tmp_path: Path, nodes: list[DemoNodeProcess]
) -> None:
    nodes.append(DemoNodeProcess(tmp_path / "n", node_settings(tmp_path, "n", [])))
    root = nodes[0].wait_http()
    assert root["cluster_uuid"] == "_na_"
    status, body = get(nodes[0].url + "/_cluster/health")
    assert status == 503
    assert body["error"]["type"] == "master_not_discovered_exception"
    status, body = get(nodes[0].url + "/", {"Accept": "application/vnd.elasticsearch+json; compatible-with=9"})
    assert status == 400
    assert body["error"]["type"] == "media_type_header_exception"
    status, _ = get(nodes[0].url + "/", {"Accept": "application/vnd.elasticsearch+json; compatible-with=8"})
    assert status == 200


def test_file_seed_provider_rereads_unicast_hosts(tmp_path: Path, nodes: list[DemoNodeProcess]) -> None:
    t1, t2 = free_port(), free_port()
    a = node_settings(tmp_path, "a", [], **{"transport.port": str(t1), "cluster.initial_master_nodes": "a"})
    nodes.append(DemoNodeProcess(tmp_path / "a", a))
    b = node_settings(tmp_path, "b", [], **{"transport.port": str(t2), "discovery.seed_providers": "file"})
    nodes.append(DemoNodeProcess(tmp_path / "b", b))
    for node in nodes:
        node.wait_http()
    assert len(get(nodes[1].url + "/_nodes")[1]["nodes"]) == 1
    (nodes[1].config / "unicast_hosts.txt").write_text(f"# seeds\n127.0.0.1:{t1}\n")
    wait_until(lambda: len(get(nodes[1].url + "/_nodes")[1]["nodes"]) == 2, 10, "b to find a through the file")
    assert "seed hosts from" in nodes[1].log()


def test_launcher_runs_the_demo_node(tmp_path: Path) -> None:
    launcher = write_launcher(tmp_path / "es-home")
    out = subprocess.run(
        [str(launcher), "-Ecluster.nmae=typo"], capture_output=True, text=True, timeout=20, check=False
    )
    assert out.returncode == 1
    assert "unknown setting [cluster.nmae]" in out.stderr


def test_nodes_known_to_a_seed_are_found_too(tmp_path: Path, nodes: list[DemoNodeProcess]) -> None:
    ta, tb, tc = free_port(), free_port(), free_port()
    chain: tuple[tuple[str, int, list[int], str], ...] = (("a", ta, [], "a"), ("b", tb, [ta], ""), ("c", tc, [tb], ""))
    for name, port, seeds, masters in chain:
        extra = {"transport.port": str(port)}
        if masters:
            extra["cluster.initial_master_nodes"] = masters
        nodes.append(DemoNodeProcess(tmp_path / name, node_settings(tmp_path, name, seeds, **extra)))
    for node in nodes:
        node.wait_http()
    wait_until(lambda: len(get(nodes[2].url + "/_nodes")[1]["nodes"]) == 3, 10, "c to reach a through b")
    names = {n["name"] for n in get(nodes[2].url + "/_nodes")[1]["nodes"].values()}
    assert names == {"a", "b", "c"}
