"""``--mesosMaster local`` and the flags of local mode."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from es_framework.config import (
    MesosMaster,
)
from tests.config.support import (
    assert_rejected,
    cfg,
    only_problem,
)

# --- local mode ---------------------------------------------------------------------------------------


def test_local_master_is_accepted_and_has_its_own_kind() -> None:
    c = cfg(mesosMaster="local")
    assert c.mesos_master == MesosMaster(kind="local", url="local", hosts=())
    assert c.mesos_master.is_local and c.local_mode
    assert str(c.mesos_master) == "local" and c.public_dict()["mesosMaster"] == "local"
    assert cfg(mesosMaster=" local ").local_mode
    assert cfg({"ES_MESOS_MESOS_MASTER": "local"}).local_mode


def test_local_mode_stays_local_mode_once_it_points_the_scheduler_at_its_development_master() -> None:
    # es_framework/dev/local.py replaces the master with the development master's HTTP address; the
    # scheduler's logs, API and web UI must still say local mode.
    development_master = MesosMaster(kind="http", url="http://127.0.0.1:40000", hosts=(("127.0.0.1", 40000),))
    scheduler_config = replace(cfg(mesosMaster="local"), mesos_master=development_master)
    assert scheduler_config.local_mode
    assert not replace(cfg(mesosMaster="h:5050"), mesos_master=development_master).local_mode


@pytest.mark.parametrize("value", ["zk://h:2181/mesos", "h:5050", "http://h:5050"])
def test_other_masters_are_not_local(value: str) -> None:
    c = cfg(mesosMaster=value)
    assert c.mesos_master is not None and not c.mesos_master.is_local and not c.local_mode
    assert not cfg().local_mode


@pytest.mark.parametrize("value", ["LOCAL", "local:5050", "http://local", "localx"])
def test_only_the_exact_word_local_means_local_mode(value: str) -> None:
    # "LOCAL" or "localx" are a host named so; "http://local" an HTTP master on host "local".
    master = cfg(mesosMaster=value).mesos_master
    assert master is not None and master.kind == "http"


def test_local_mode_defaults() -> None:
    c = cfg(mesosMaster="local")
    assert c.local_agents == 4 and c.local_work_dir == "./.es-mesos-local"
    assert not c.warnings


def test_local_master_and_a_zookeeper_url_disagree() -> None:
    message = only_problem(mesosMaster="local", zookeeperMesosUrl="zk://a:2181/mesos")
    assert "disagree; give one of them" in message


@pytest.mark.parametrize("value", ["0", "255", "-1", "x", "1.5"])
def test_local_agents_must_be_1_to_254(value: str) -> None:
    assert_rejected("localAgents", value, "must be a number of agents from 1 to 254", mesosMaster="local")


def test_local_work_dir_must_not_be_empty() -> None:
    assert_rejected("localWorkDir", " ", "must be a directory path", mesosMaster="local")


@pytest.mark.parametrize(("flag", "value"), [("localAgents", "2"), ("localWorkDir", "/tmp/x")])
def test_local_flags_without_local_mode_are_ignored_with_a_warning(flag: str, value: str) -> None:
    c = cfg(**{flag: value})
    assert c.warnings == (f"--{flag} applies to local mode only (--mesosMaster local); it is ignored",)


def test_local_mode_warns_when_there_are_fewer_agents_than_nodes() -> None:
    c = cfg(mesosMaster="local", localAgents="2", elasticsearchNodes="3")
    assert any("--localAgents 2 is fewer than --elasticsearchNodes 3" in w for w in c.warnings)


def test_local_mode_refuses_fixed_ports() -> None:
    message = only_problem(mesosMaster="local", elasticsearchPorts="9200,9300")
    assert message.startswith("--elasticsearchPorts must be empty in local mode")
    assert cfg(mesosMaster="local", elasticsearchPorts="0,0").local_mode


def test_local_mode_takes_elasticsearch_from_a_local_directory_or_tarball(tmp_path: Path) -> None:
    home = tmp_path / "elasticsearch-8.15.0"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "elasticsearch").write_text("#!/bin/sh\n")
    tarball = tmp_path / "elasticsearch.tar.gz"
    tarball.write_bytes(b"")
    for location in (str(home), f"file://{home}", str(tarball)):
        assert cfg(mesosMaster="local", elasticsearchBinaryUrl=location).binary_url == location
    remote = only_problem(mesosMaster="local", elasticsearchBinaryUrl="https://artifacts.example.com/es.tar.gz")
    assert "local mode runs Elasticsearch from this machine" in remote
    missing = only_problem(mesosMaster="local", elasticsearchBinaryUrl=str(tmp_path / "nothing"))
    assert "neither a directory with bin/elasticsearch nor a tarball" in missing
