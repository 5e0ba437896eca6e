"""The agent's zone reaches Elasticsearch as node.attr.zone with shard allocation awareness over it,
and the demo node accepts exactly what Elasticsearch accepts of it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from es_framework.dev.demo_es.settings import SettingsError, load_settings
from es_framework.executor.settings import NodeSettings, with_zone
from es_framework.executor.volumes import render_elasticsearch_yml
from tests.executor.test_executor import node_env, task_info


def test_the_zone_becomes_a_node_attribute_and_awareness() -> None:
    assert with_zone({}, "eu-1a") == {
        "node.attr.zone": "eu-1a",
        "cluster.routing.allocation.awareness.attributes": "zone",
    }
    assert with_zone({"path.repo": "/r"}, "") == {"path.repo": "/r"}
    # The user's awareness attributes are kept, zone added once.
    key = "cluster.routing.allocation.awareness.attributes"
    assert with_zone({key: "rack"}, "a")[key] == ["rack", "zone"]
    assert with_zone({key: ["rack", "zone"]}, "a")[key] == ["rack", "zone"]
    assert with_zone({key: "rack, zone"}, "a")[key] == ["rack", "zone"]


def test_the_agents_zone_wins_over_the_users(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert with_zone({"node.attr.zone": "mine"}, "a", "node 2 task t-2")["node.attr.zone"] == "a"
    assert "node 2 task t-2: replacing node.attr.zone 'mine'" in caplog.text


def test_the_generated_file_starts_the_demo_node(tmp_path: Path) -> None:
    env = node_env(9200, 9300, ELASTICSEARCH_NODE_ZONE="eu-west-1a")
    settings = NodeSettings.from_task(task_info(env), {"MESOS_SANDBOX": str(tmp_path)})
    text, _ = render_elasticsearch_yml(settings, 8)
    assert 'node.attr.zone: "eu-west-1a"' in text
    assert 'cluster.routing.allocation.awareness.attributes: "zone"' in text
    (tmp_path / "elasticsearch.yml").write_text(text)
    loaded = load_settings([], {"ES_PATH_CONF": str(tmp_path)})
    assert loaded.get("node.attr.zone") == "eu-west-1a"
    assert loaded.get_list("cluster.routing.allocation.awareness.attributes") == ["zone"]
    without = NodeSettings.from_task(task_info(node_env(9200, 9300)), {"MESOS_SANDBOX": str(tmp_path)})
    assert "node.attr" not in render_elasticsearch_yml(without, 8)[0]


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("-Enode.attr.zone= a", "node.attr.zone cannot have leading or trailing whitespace [ a]"),
        ("-Enode.attr.zone=a ", "node.attr.zone cannot have leading or trailing whitespace [a ]"),
        ("-Enode.attr.zone=[a, b]", "Found list type value for setting [node.attr.zone] but but did not expect a list"),
        ("-Enode.attr.server_name=not a host", "invalid node.attr.server_name [not a host]"),
    ],
)
def test_the_demo_node_refuses_node_attributes_elasticsearch_refuses(argument: str, message: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings([argument], {})
    assert message in str(info.value)
    assert load_settings(["-Enode.attr.zone=eu-west-1a", "-Enode.attr.server_name=es.example.com"], {})
