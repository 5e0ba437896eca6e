"""Defaults, the Config record and its public view, and the value each flag accepts: every message names
the flag, the value and what is allowed."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from es_framework.config import (
    DEFAULT_EXECUTOR_IMAGE,
    DEFAULT_FAILOVER_TIMEOUT_S,
    FLAGS,
    ConfigError,
    Ports,
    parse_ports,
    resolve_config,
)
from tests.config.support import (
    assert_rejected,
    cfg,
    no_db,
    only_problem,
    problems,
)

# --- defaults -------------------------------------------------------------------------------------


def test_defaults() -> None:
    c = cfg()
    assert c.mem_mb >= 2048 and c.mem_mb == 2048.0
    assert c.heap_mb == (2048 - 164) // 2 == 942  # half of what the executor and the launcher leave
    assert c.force_pull_image is False
    assert c.failover_timeout_s >= 14 * 24 * 3600
    assert c.failover_timeout_s == DEFAULT_FAILOVER_TIMEOUT_S == 28 * 24 * 3600
    assert c.web_ui_port == 31100
    assert c.cluster_name == "mesos-ha"
    assert c.framework_name == "elasticsearch"
    assert c.elasticsearch_nodes == 3
    assert c.strategy_name == "normal"
    assert c.cpus == 1.0
    assert c.disk_mb == 1024.0
    assert c.ports == Ports(0, 0) and c.ports.fixed == ()
    assert c.docker_image == DEFAULT_EXECUTOR_IMAGE and not c.docker_image.endswith(":latest")
    assert c.mesos_master is None
    assert c.zookeeper_mesos_timeout_ms == 20000
    assert c.role == "*"
    assert c.principal is None and c.secret is None
    assert c.use_docker is True and c.use_ip_address is False and c.allow_gpu_agents is False
    assert c.external_volume_driver is None
    assert c.external_volume_options == ()
    assert c.external_volume_config_options == ()
    assert c.external_volume_method == "dockerVolume"
    assert c.nofile == 65535
    assert c.elasticsearch_user == "elasticsearch"
    assert c.data_dir == "/var/lib/mesos/slave/elasticsearch"
    assert c.executor_labels == ()
    assert c.settings_location is None and c.binary_url is None
    assert c.warnings == ()


def test_strategy_is_external_with_a_driver() -> None:
    assert cfg(externalVolumeDriver="rexray").strategy_name == "external"
    assert cfg(externalVolumeDriver="rexray/ebs:latest").external_volume_driver == "rexray/ebs:latest"
    assert cfg(externalVolumeDriver="").strategy_name == "normal"


@pytest.mark.parametrize(
    ("ram", "heap"), [("2048", 942), ("4096", 1966), ("3000.5", 1418), ("1", 1), ("0.001", 1), ("200000", 31744)]
)
def test_heap_is_half_the_memory_left_by_the_executor_and_capped(ram: str, heap: int) -> None:
    assert cfg(elasticsearchRam=ram).heap_mb == heap


def test_small_memory_is_accepted_with_a_warning() -> None:
    c = cfg(elasticsearchRam="1000")
    assert c.warnings == (
        "--elasticsearchRam 1000 MB gives a heap of 418 MB (half of what is left after 164 MB for the executor and "
        "Elasticsearch's launcher); Elasticsearch needs 512 MB or more: give it 1188 MB or more",
    )
    assert cfg(elasticsearchRam="1187").warnings != ()
    assert cfg(elasticsearchRam="1188").warnings == ()


# --- frozen dataclass and public_dict -----------------------------------------------------------


def test_config_is_frozen() -> None:
    c = cfg(mesosMaster="zk://h:2181/mesos")
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.elasticsearch_nodes = 5  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.ports.http = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.mesos_master.url = "zk://x/y"  # type: ignore[misc,union-attr]
    assert c.elasticsearch_nodes == 3
    assert hash(c) == hash(cfg(mesosMaster="zk://h:2181/mesos"))


def test_public_dict_has_every_flag_once_as_json() -> None:
    c = cfg(
        mesosMaster="zk://zk1:2181/mesos",
        elasticsearchPorts="9200,9300",
        executorLabels="team=search",
        externalVolumeDriver="rexray",
        externalVolumeOptions="size=100,volumetype=io1,iops=3000",
    )
    public = c.public_dict()
    assert list(public) == [s.name for s in FLAGS if s.name != "zookeeperMesosUrl"]
    decoded = json.loads(json.dumps(public, allow_nan=False))
    assert decoded == public
    assert decoded["mesosMaster"] == "zk://zk1:2181/mesos"
    assert decoded["elasticsearchPorts"] == {"http": 9200, "transport": 9300}
    assert decoded["executorLabels"] == {"team": "search"}
    assert list(decoded["externalVolumeOptions"].items()) == [("size", "100"), ("volumetype", "io1"), ("iops", "3000")]
    assert decoded["externalVolumeConfigOptions"] == {}
    assert decoded["frameworkSecretPath"] is None
    assert decoded["elasticsearchNodes"] == 3 and decoded["frameworkUseDocker"] is True
    assert decoded["frameworkFailoverTimeout"] == DEFAULT_FAILOVER_TIMEOUT_S


# --- invalid values: every message names flag, value and what is allowed -------------------------

RESOURCE_FLAGS = ["elasticsearchCpu", "elasticsearchRam", "elasticsearchDisk", "frameworkFailoverTimeout"]


@pytest.mark.parametrize("flag", RESOURCE_FLAGS)
@pytest.mark.parametrize("value", ["0", "-1", "-0.5", "abc", "nan", "NaN", "inf", "-inf", "Infinity", "", "1,5"])
def test_resources_must_be_positive_finite_numbers(flag: str, value: str) -> None:
    assert_rejected(flag, value, "must be a number greater than 0")


@pytest.mark.parametrize("flag", RESOURCE_FLAGS)
def test_resources_below_mesos_precision_are_rejected(flag: str) -> None:
    assert_rejected(flag, "0.0001", "must be at least 0.001")


def test_resource_units_are_named() -> None:
    assert only_problem(elasticsearchRam="0").endswith("must be a number greater than 0 (MB)")
    assert only_problem(elasticsearchDisk="0").endswith("must be a number greater than 0 (MB)")
    assert only_problem(frameworkFailoverTimeout="0").endswith("must be a number greater than 0 (seconds)")


def test_resources_are_rounded_to_mesos_precision() -> None:
    c = cfg(
        elasticsearchCpu="0.5", elasticsearchRam="3000.12345", elasticsearchDisk=" 10 ", frameworkFailoverTimeout="1e6"
    )
    assert (c.cpus, c.mem_mb, c.disk_mb, c.failover_timeout_s) == (0.5, 3000.123, 10.0, 1e6)


@no_db
@given(st.floats(min_value=0.001, max_value=1e9, allow_nan=False, allow_infinity=False))
def test_any_positive_cpu_is_kept_to_three_places(value: float) -> None:
    c = resolve_config({"elasticsearchCpu": repr(value)}, {})
    assert c.cpus == round(value, 3)
    assert math.isfinite(c.cpus) and c.cpus > 0


@pytest.mark.parametrize("value", ["0", "-1", "abc", "2.5", "", "3 nodes"])
def test_node_count_must_be_a_positive_integer(value: str) -> None:
    assert_rejected("elasticsearchNodes", value, "must be a whole number of nodes of at least 1")


@pytest.mark.parametrize("nodes", ["1", "3", "5", "7"])
def test_odd_node_counts_give_no_warning(nodes: str) -> None:
    c = cfg(elasticsearchNodes=nodes)
    assert c.elasticsearch_nodes == int(nodes) and c.warnings == ()


@pytest.mark.parametrize("nodes", [2, 4, 10])
def test_even_node_count_is_allowed_with_a_warning(nodes: int) -> None:
    c = cfg(elasticsearchNodes=str(nodes))
    assert c.elasticsearch_nodes == nodes
    assert len(c.warnings) == 1
    assert c.warnings[0].startswith(f"--elasticsearchNodes {nodes}: an even number of nodes is allowed")


@pytest.mark.parametrize(
    ("flag", "value", "allowed"),
    [
        ("zookeeperMesosTimeout", "0", "must be a number of milliseconds of at least 1"),
        ("zookeeperMesosTimeout", "1.5", "must be a number of milliseconds of at least 1"),
        ("webUiPort", "0", "must be a port from 1 to 65535"),
        ("webUiPort", "65536", "must be a port from 1 to 65535"),
        ("webUiPort", "http", "must be a port from 1 to 65535"),
        ("elasticsearchNofile", "0", "must be a number of files of at least 1"),
        ("elasticsearchNofile", "many", "must be a number of files of at least 1"),
        ("executorForcePullImage", "maybe", "must be true or false"),
        ("frameworkUseDocker", "", "must be true or false"),
        ("useIpAddress", "2", "must be true or false"),
        ("allowGpuAgents", "yes please", "must be true or false"),
        ("executorName", "-exec", "must be letters, digits, '.', '_' or '-', starting with a letter or digit"),
        ("executorName", "exec utor", "must be letters, digits, '.', '_' or '-', starting with a letter or digit"),
        ("externalVolumeDriver", "rex ray", "must be a Docker volume driver name"),
        ("externalVolumeMethod", "nfs", "must be dockerVolume (docker/volume isolator) or dvdi (mesos-module-dvdi)"),
        ("elasticsearchBinaryUrl", "relative/es.tgz", "must be an absolute path without '.' or '..' parts"),
        ("elasticsearchBinaryUrl", "gopher://x/es.tgz", "must be a URL the Mesos fetcher understands"),
        ("elasticsearchBinaryUrl", "https:///es.tgz", "must be a URL the Mesos fetcher understands"),
        ("elasticsearchBinaryUrl", "http://[::1/es.tgz", "must be a URL the Mesos fetcher understands"),
    ],
)
def test_other_invalid_values(flag: str, value: str, allowed: str) -> None:
    assert_rejected(flag, value, allowed)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("TRUE", True), ("yes", True), ("on", True), ("1", True), (" false ", False), ("no", False)],
)
def test_booleans(text: str, expected: bool) -> None:
    assert cfg(useIpAddress=text).use_ip_address is expected
    assert cfg(executorForcePullImage=text).force_pull_image is expected


def test_all_invalid_flags_are_reported_together_in_flag_order() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_config(
            {
                "webUiPort": "0",
                "elasticsearchNodes": "0",
                "elasticsearchCpu": "nan",
                "frameworkName": "es1",
                "elasticsearchPorts": "9200",
            },
            {"ES_MESOS_ELASTICSEARCH_RAM": "-1"},
        )
    found = info.value.problems
    assert [p.split(":")[0].split(" ")[0] for p in found] == [
        "--elasticsearchNodes",
        "--elasticsearchCpu",
        "--elasticsearchRam",
        "--elasticsearchPorts",
        "--frameworkName",
        "--webUiPort",
    ]
    text = str(info.value)
    assert text.startswith("invalid configuration:\n  - --elasticsearchNodes: '0' ")
    assert text.count("\n  - ") == 6
    assert isinstance(info.value, ValueError)


# --- ports -------------------------------------------------------------------------------------------

PORTS_ALLOWED = "must be empty (both from the offer) or HTTP,TRANSPORT"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Ports(0, 0)),
        ("  ", Ports(0, 0)),
        ("9200,9300", Ports(9200, 9300)),
        (" 9200 , 9300 ", Ports(9200, 9300)),
        ("0,9300", Ports(0, 9300)),
        ("9200,0", Ports(9200, 0)),
        ("0,0", Ports(0, 0)),
        ("1,65535", Ports(1, 65535)),
    ],
)
def test_ports_accepted(text: str, expected: Ports) -> None:
    assert parse_ports(text) == expected
    assert cfg(elasticsearchPorts=text).ports == expected


def test_fixed_ports() -> None:
    assert Ports(9200, 9300).fixed == (9200, 9300)
    assert Ports(0, 9300).fixed == (9300,)
    assert Ports(9200, 0).fixed == (9200,)


@pytest.mark.parametrize(
    "text", ["9200", "9200,9300,9400", "a,b", "-1,9300", "70000,9300", "9200,65536", "9200;9300", ",9300", "9200,"]
)
def test_ports_rejected(text: str) -> None:
    assert_rejected("elasticsearchPorts", text, PORTS_ALLOWED)


def test_equal_ports_rejected() -> None:
    assert_rejected("elasticsearchPorts", "9200,9200", "the HTTP and transport ports must differ")


port_numbers = st.integers(min_value=0, max_value=65535)


@no_db
@given(port_numbers, port_numbers, st.sampled_from(["", " "]))
def test_parse_ports_round_trip(http: int, transport: int, pad: str) -> None:
    text = f"{pad}{http}{pad},{pad}{transport}{pad}"
    if http and http == transport:
        with pytest.raises(ValueError, match="must differ"):
            parse_ports(text)
    else:
        ports = parse_ports(text)
        assert ports == Ports(http, transport)
        assert parse_ports(f"{ports.http},{ports.transport}") == ports
        assert ports.fixed == tuple(p for p in (http, transport) if p)


@no_db
@given(st.integers().filter(lambda p: not 0 <= p <= 65535), port_numbers)
def test_parse_ports_rejects_out_of_range(bad: int, good: int) -> None:
    for text in (f"{bad},{good}", f"{good},{bad}"):
        with pytest.raises(ValueError, match="two integers, each 0"):
            parse_ports(text)


# --- user, nofile, settings location, data directory -----------------------------------------------


def test_root_user_is_rejected() -> None:
    assert_rejected("elasticsearchUser", "root", "must not be root: Elasticsearch refuses to run as root")
    assert_rejected("elasticsearchUser", "Elastic", "must be a Unix user name")
    assert_rejected("elasticsearchUser", "", "must be a Unix user name")
    assert cfg(elasticsearchUser="es_user").elasticsearch_user == "es_user"


def test_low_nofile_is_allowed_with_a_warning() -> None:
    c = cfg(elasticsearchNofile="20000")
    assert c.nofile == 20000
    assert len(c.warnings) == 1
    assert c.warnings[0].startswith("--elasticsearchNofile 20000 is below 65535: Elasticsearch's bootstrap check")
    assert cfg(elasticsearchNofile="65535").warnings == ()
    assert cfg(elasticsearchNofile="1048576").warnings == ()


def test_settings_location(tmp_path: Path) -> None:
    existing = tmp_path / "elasticsearch.yml"
    existing.write_text("indices.memory.index_buffer_size: 20%\n")
    assert cfg(elasticsearchSettingsLocation=str(existing)).settings_location == str(existing)
    assert cfg(elasticsearchSettingsLocation=f"file://{existing}").settings_location == f"file://{existing}"
    for url in ("http://config.example.com/es.yml", "https://config.example.com:8443/es.yml"):
        assert cfg(elasticsearchSettingsLocation=url).settings_location == url
    assert cfg(elasticsearchSettingsLocation="").settings_location is None
    missing = str(tmp_path / "missing.yml")
    assert_rejected("elasticsearchSettingsLocation", missing, "is neither an existing file nor a URL")
    assert_rejected("elasticsearchSettingsLocation", str(tmp_path), "is neither an existing file nor a URL")
    assert_rejected("elasticsearchSettingsLocation", f"file://{missing}", f"names the file {missing!r}, which does not")
    for bad in ("ftp://x/es.yml", "http:///es.yml", "http://[::1/es.yml"):
        assert_rejected("elasticsearchSettingsLocation", bad, "must be a path or a URL with scheme http, https, file")


@pytest.mark.parametrize("value", ["relative/dir", "data", "./data", "/data/../etc", "/data/./es", ""])
def test_data_dir_must_be_absolute(value: str) -> None:
    assert_rejected("dataDir", value, "must be an absolute path without '.' or '..' parts")


def test_data_dir_loses_trailing_slashes() -> None:
    assert cfg(dataDir="/srv/es/").data_dir == "/srv/es"
    assert cfg(dataDir="/").data_dir == "/"


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("elasticsearchNodes", "３"),
        ("elasticsearchNodes", "1_0"),
        ("webUiPort", "３１１００"),
        ("elasticsearchCpu", "１.５"),
        ("elasticsearchCpu", "1_0"),
        ("elasticsearchRam", "infinity"),
        ("elasticsearchPorts", "９２００,9300"),
        ("mesosMaster", "zk://zk1:2181/mes\nos"),
    ],
)
def test_only_plain_ascii_numbers_and_hosts_are_accepted(flag: str, value: str) -> None:
    found = problems(**{flag: value})
    assert len(found) == 1 and f"--{flag}: {value!r}" in found[0]


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_master_nodes_must_be_a_positive_whole_number(value: str) -> None:
    with pytest.raises(ConfigError, match="elasticsearchMasterNodes"):
        resolve_config({"elasticsearchMasterNodes": value})
