"""The executor checks the user's settings against the Elasticsearch it found, minor included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from es_framework.executor.logs import NodeLog
from es_framework.executor.settings import ExecutorError
from es_framework.executor.volumes import prepare_node, render_elasticsearch_yml
from tests.executor.test_executor_node import make_home, settings_for

LOG = NodeLog("1", "t")
GEOIP = json.dumps({"ingest.geoip.downloader.enabled": "false"})


def test_a_setting_newer_than_the_distribution_fails_the_node_naming_the_version(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, ELASTICSEARCH_USER_SETTINGS=GEOIP)
    with pytest.raises(ExecutorError) as error:
        prepare_node(settings, make_home(tmp_path / "old", "7.10.2"), LOG)
    assert "refused by Elasticsearch 7.10.2, the version this node runs" in str(error.value)
    assert "[ingest.geoip.downloader.enabled] was added in Elasticsearch 7.13" in str(error.value)
    assert prepare_node(settings, make_home(tmp_path / "new", "7.17.24"), LOG) == 7
    assert "ingest.geoip.downloader.enabled" in (settings.config_path / "elasticsearch.yml").read_text()


def test_the_version_override_is_the_version_checked(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, ELASTICSEARCH_USER_SETTINGS=GEOIP, ELASTICSEARCH_VERSION="7.12.1")
    with pytest.raises(ExecutorError, match=r"refused by Elasticsearch 7\.12\.1"):
        prepare_node(settings, make_home(tmp_path, "7.17.24"), LOG)


def test_a_major_alone_checks_only_the_major(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, ELASTICSEARCH_USER_SETTINGS=GEOIP)
    text, _ = render_elasticsearch_yml(settings, 7, version="7")
    assert 'ingest.geoip.downloader.enabled: "false"' in text
    with pytest.raises(ExecutorError, match=r"refused by Elasticsearch 7\.9\.3"):
        render_elasticsearch_yml(settings, 7, version="7.9.3")
