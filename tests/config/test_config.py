"""The configuration: flag names, ES_MESOS_* environment, validation messages, defaults, secrets."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from es_framework.config import (
    DEFAULT_EXECUTOR_IMAGE,
    DEFAULT_FAILOVER_TIMEOUT_S,
    ENV_PREFIX,
    FLAGS,
    FLAGS_BY_NAME,
    Config,
    ConfigError,
    MesosMaster,
    Ports,
    Secret,
    parse_key_values,
    parse_labels,
    parse_ports,
    resolve_config,
)
from tests.harness.builders import MARATHON_GARBAGE

# Hypothesis must not write its example database into the repository.
no_db = settings(database=None, deadline=None)

SECRET_TEXT = "hunter2-Zq9-very-secret"
BINARY_URL = "https://artifacts.example.com/elasticsearch-8.13.tar.gz"


def cfg(env: dict[str, str] | None = None, /, **flags: str) -> Config:
    return resolve_config(flags, env or {})


def problems(env: dict[str, str] | None = None, /, **flags: str) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        resolve_config(flags, env or {})
    return info.value.problems


def only_problem(**flags: str) -> str:
    found = problems(**flags)
    assert len(found) == 1, found
    return found[0]


def assert_rejected(flag: str, value: str, allowed: str, **other: str) -> str:
    """``--flag value`` is the one problem; the message names the flag, the value and what is allowed."""
    message = only_problem(**{flag: value}, **other)
    assert message.startswith(f"--{flag}: {value!r} "), message
    assert allowed in message, message
    return message


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret"
    path.write_text(SECRET_TEXT)
    return path


# --- flag names and environment -----------------------------------------------------------------

JAVA_FLAGS = [
    "zookeeperMesosUrl",
    "zookeeperMesosTimeout",
    "elasticsearchNodes",
    "elasticsearchClusterName",
    "elasticsearchSettingsLocation",
    "elasticsearchCpu",
    "elasticsearchRam",
    "elasticsearchDisk",
    "elasticsearchPorts",
    "elasticsearchDockerImage",
    "elasticsearchBinaryUrl",
    "executorForcePullImage",
    "executorName",
    "executorLabels",
    "dataDir",
    "frameworkName",
    "frameworkFailoverTimeout",
    "frameworkRole",
    "frameworkPrincipal",
    "frameworkSecretPath",
    "frameworkUseDocker",
    "useIpAddress",
    "webUiPort",
    "externalVolumeDriver",
    "externalVolumeOptions",
]
NEW_FLAGS = [
    "mesosMaster",
    "externalVolumeConfigOptions",
    "externalVolumeMethod",
    "elasticsearchNofile",
    "elasticsearchUser",
    "allowGpuAgents",
    "frameworkStateUrl",
    "localAgents",
    "localWorkDir",
    "elasticsearchMasterNodes",
    "elasticsearchPasswordFile",
    "elasticsearchCertificatesUrl",
    "apiTokenFile",
]

EXPECTED_ENV = {
    "mesosMaster": "ES_MESOS_MESOS_MASTER",
    "zookeeperMesosUrl": "ES_MESOS_ZOOKEEPER_MESOS_URL",
    "zookeeperMesosTimeout": "ES_MESOS_ZOOKEEPER_MESOS_TIMEOUT",
    "elasticsearchNodes": "ES_MESOS_ELASTICSEARCH_NODES",
    "elasticsearchClusterName": "ES_MESOS_ELASTICSEARCH_CLUSTER_NAME",
    "elasticsearchSettingsLocation": "ES_MESOS_ELASTICSEARCH_SETTINGS_LOCATION",
    "elasticsearchCpu": "ES_MESOS_ELASTICSEARCH_CPU",
    "elasticsearchRam": "ES_MESOS_ELASTICSEARCH_RAM",
    "elasticsearchDisk": "ES_MESOS_ELASTICSEARCH_DISK",
    "elasticsearchPorts": "ES_MESOS_ELASTICSEARCH_PORTS",
    "elasticsearchDockerImage": "ES_MESOS_ELASTICSEARCH_DOCKER_IMAGE",
    "elasticsearchBinaryUrl": "ES_MESOS_ELASTICSEARCH_BINARY_URL",
    "executorForcePullImage": "ES_MESOS_EXECUTOR_FORCE_PULL_IMAGE",
    "executorName": "ES_MESOS_EXECUTOR_NAME",
    "executorLabels": "ES_MESOS_EXECUTOR_LABELS",
    "dataDir": "ES_MESOS_DATA_DIR",
    "frameworkName": "ES_MESOS_FRAMEWORK_NAME",
    "frameworkFailoverTimeout": "ES_MESOS_FRAMEWORK_FAILOVER_TIMEOUT",
    "frameworkRole": "ES_MESOS_FRAMEWORK_ROLE",
    "frameworkPrincipal": "ES_MESOS_FRAMEWORK_PRINCIPAL",
    "frameworkSecretPath": "ES_MESOS_FRAMEWORK_SECRET_PATH",
    "frameworkUseDocker": "ES_MESOS_FRAMEWORK_USE_DOCKER",
    "useIpAddress": "ES_MESOS_USE_IP_ADDRESS",
    "webUiPort": "ES_MESOS_WEB_UI_PORT",
    "externalVolumeDriver": "ES_MESOS_EXTERNAL_VOLUME_DRIVER",
    "externalVolumeOptions": "ES_MESOS_EXTERNAL_VOLUME_OPTIONS",
    "externalVolumeConfigOptions": "ES_MESOS_EXTERNAL_VOLUME_CONFIG_OPTIONS",
    "externalVolumeMethod": "ES_MESOS_EXTERNAL_VOLUME_METHOD",
    "elasticsearchNofile": "ES_MESOS_ELASTICSEARCH_NOFILE",
    "elasticsearchUser": "ES_MESOS_ELASTICSEARCH_USER",
    "allowGpuAgents": "ES_MESOS_ALLOW_GPU_AGENTS",
    "frameworkStateUrl": "ES_MESOS_FRAMEWORK_STATE_URL",
    "localAgents": "ES_MESOS_LOCAL_AGENTS",
    "localWorkDir": "ES_MESOS_LOCAL_WORK_DIR",
    "elasticsearchMasterNodes": "ES_MESOS_ELASTICSEARCH_MASTER_NODES",
    "elasticsearchPasswordFile": "ES_MESOS_ELASTICSEARCH_PASSWORD_FILE",
    "elasticsearchCertificatesUrl": "ES_MESOS_ELASTICSEARCH_CERTIFICATES_URL",
    "apiTokenFile": "ES_MESOS_API_TOKEN_FILE",
}


def test_the_flags_are_exactly_the_java_names_plus_the_new_ones() -> None:
    assert sorted(FLAGS_BY_NAME) == sorted(JAVA_FLAGS + NEW_FLAGS)
    assert len(FLAGS) == len(FLAGS_BY_NAME) == 38  # no flag defined twice


@pytest.mark.parametrize("name", sorted(EXPECTED_ENV))
def test_env_var_name_is_prefix_plus_upper_snake(name: str) -> None:
    assert FLAGS_BY_NAME[name].env_var == EXPECTED_ENV[name]
    assert FLAGS_BY_NAME[name].env_var.startswith(ENV_PREFIX)


# One valid, non-default value per flag: (value, getter, expected, other flags it needs).
# A value may be a callable taking tmp_path (for flags naming a file).
EnvCase = tuple[Any, Callable[[Config], Any], Any, dict[str, Any]]
DRIVER = {"externalVolumeDriver": "rexray"}
LOCAL = {"mesosMaster": "local"}
MESOS_CONTAINERIZER = {"frameworkUseDocker": "false", "elasticsearchBinaryUrl": BINARY_URL}


def _write_secret(tmp_path: Path) -> str:
    path = tmp_path / "env-secret"
    path.write_text(SECRET_TEXT)
    return str(path)


CERTIFICATES_URL = "https://certs.example.com/elastic-certificates.p12"


def _master_url(c: Config) -> str | None:
    return c.mesos_master.url if c.mesos_master else None


ENV_CASES: dict[str, EnvCase] = {
    "mesosMaster": ("http://master.example.com:5050", _master_url, "http://master.example.com:5050", {}),
    "zookeeperMesosUrl": ("zk://zk1:2181,zk2/mesos", _master_url, "zk://zk1:2181,zk2:2181/mesos", {}),
    "zookeeperMesosTimeout": ("30000", lambda c: c.zookeeper_mesos_timeout_ms, 30000, {}),
    "elasticsearchNodes": ("5", lambda c: c.elasticsearch_nodes, 5, {}),
    "elasticsearchClusterName": ("prod-logs", lambda c: c.cluster_name, "prod-logs", {}),
    "elasticsearchSettingsLocation": (
        "https://config.example.com/es.yml",
        lambda c: c.settings_location,
        "https://config.example.com/es.yml",
        {},
    ),
    "elasticsearchCpu": ("2.5", lambda c: c.cpus, 2.5, {}),
    "elasticsearchRam": ("4096", lambda c: c.mem_mb, 4096.0, {}),
    "elasticsearchDisk": ("5000", lambda c: c.disk_mb, 5000.0, {}),
    "elasticsearchPorts": ("9200,9300", lambda c: c.ports, Ports(9200, 9300), {}),
    "elasticsearchDockerImage": (
        "registry.example.com/es/executor:2.0",
        lambda c: c.docker_image,
        "registry.example.com/es/executor:2.0",
        {},
    ),
    "elasticsearchBinaryUrl": (BINARY_URL, lambda c: c.binary_url, BINARY_URL, {}),
    "executorForcePullImage": ("true", lambda c: c.force_pull_image, True, {}),
    "executorName": ("es-exec", lambda c: c.executor_name, "es-exec", {}),
    "executorLabels": ("team=search env=prod", lambda c: c.executor_labels, (("team", "search"), ("env", "prod")), {}),
    "dataDir": ("/srv/es", lambda c: c.data_dir, "/srv/es", {}),
    "frameworkName": ("es-prod", lambda c: c.framework_name, "es-prod", {}),
    "frameworkFailoverTimeout": ("3600", lambda c: c.failover_timeout_s, 3600.0, {}),
    "frameworkRole": ("eng/es", lambda c: c.role, "eng/es", {}),
    "frameworkStateUrl": (
        "zk://zk1:2181,zk2:2181/es",
        lambda c: c.state_url.reveal() if c.state_url else None,
        "zk://zk1:2181,zk2:2181/es",
        {},
    ),
    "frameworkPrincipal": ("ops", lambda c: c.principal, "ops", {}),
    "frameworkSecretPath": (
        _write_secret,
        lambda c: c.secret.reveal() if c.secret else None,
        SECRET_TEXT,
        {"frameworkPrincipal": "ops"},
    ),
    "frameworkUseDocker": ("false", lambda c: c.use_docker, False, {"elasticsearchBinaryUrl": BINARY_URL}),
    "useIpAddress": ("true", lambda c: c.use_ip_address, True, {}),
    "webUiPort": ("8080", lambda c: c.web_ui_port, 8080, {}),
    "externalVolumeDriver": ("rexray", lambda c: c.external_volume_driver, "rexray", {}),
    "externalVolumeOptions": (
        "size=100,volumetype=io1",
        lambda c: c.external_volume_options,
        (("size", "100"), ("volumetype", "io1")),
        DRIVER,
    ),
    "externalVolumeConfigOptions": ("size=2", lambda c: c.external_volume_config_options, (("size", "2"),), DRIVER),
    "externalVolumeMethod": (
        "dvdi",
        lambda c: c.external_volume_method,
        "dvdi",
        {**DRIVER, **MESOS_CONTAINERIZER},
    ),
    "elasticsearchNofile": ("100000", lambda c: c.nofile, 100000, {}),
    "elasticsearchUser": ("esuser", lambda c: c.elasticsearch_user, "esuser", {}),
    "allowGpuAgents": ("true", lambda c: c.allow_gpu_agents, True, {}),
    "localAgents": ("7", lambda c: c.local_agents, 7, LOCAL),
    "localWorkDir": ("/tmp/es-local", lambda c: c.local_work_dir, "/tmp/es-local", LOCAL),
    "elasticsearchMasterNodes": ("5", lambda c: c.master_nodes, 5, {}),
    "elasticsearchPasswordFile": (
        _write_secret,
        lambda c: c.elastic_password.reveal() if c.elastic_password else None,
        SECRET_TEXT,
        {"elasticsearchCertificatesUrl": CERTIFICATES_URL},
    ),
    "elasticsearchCertificatesUrl": (
        CERTIFICATES_URL,
        lambda c: c.certificates_url,
        CERTIFICATES_URL,
        {"elasticsearchPasswordFile": _write_secret},
    ),
    "apiTokenFile": (_write_secret, lambda c: c.api_token.reveal() if c.api_token else None, SECRET_TEXT, {}),
}
#: Flags that are valid only together: giving one of them empty on the command line is an error.
PAIRED = {"elasticsearchPasswordFile", "elasticsearchCertificatesUrl"}


def test_env_cases_cover_every_flag() -> None:
    assert set(ENV_CASES) == set(FLAGS_BY_NAME)


def _env_value(value: Any, tmp_path: Path) -> str:
    return value(tmp_path) if callable(value) else str(value)


@pytest.mark.parametrize("name", sorted(ENV_CASES))
def test_every_flag_is_read_from_its_env_var(name: str, tmp_path: Path) -> None:
    raw, getter, expected, needs = ENV_CASES[name]
    value = _env_value(raw, tmp_path)
    needs = {k: _env_value(v, tmp_path) for k, v in needs.items()}
    if name not in PAIRED:
        assert getter(resolve_config(needs, {})) != expected  # the value is not the default
    assert getter(resolve_config(needs, {EXPECTED_ENV[name]: value})) == expected


@pytest.mark.parametrize("name", sorted(set(ENV_CASES) - PAIRED))
def test_the_command_line_flag_wins_over_env(name: str, tmp_path: Path) -> None:
    raw, getter, expected, needs = ENV_CASES[name]
    value = _env_value(raw, tmp_path)
    default_text = FLAGS_BY_NAME[name].default
    from_flag = getter(resolve_config({**needs, name: default_text}, {}))
    assert from_flag != expected
    assert getter(resolve_config({**needs, name: default_text}, {EXPECTED_ENV[name]: value})) == from_flag


def test_command_line_wins_even_when_the_env_value_is_invalid_and_vice_versa() -> None:
    assert cfg({"ES_MESOS_ELASTICSEARCH_NODES": "abc"}, elasticsearchNodes="5").elasticsearch_nodes == 5
    message = only_problem(elasticsearchNodes="abc", **{})
    assert message.startswith("--elasticsearchNodes: 'abc'")
    with pytest.raises(ConfigError) as info:
        resolve_config({"elasticsearchNodes": "abc"}, {"ES_MESOS_ELASTICSEARCH_NODES": "5"})
    assert info.value.problems[0].startswith("--elasticsearchNodes: 'abc' ")


def test_an_invalid_env_value_names_flag_and_env_var() -> None:
    found = problems({"ES_MESOS_ELASTICSEARCH_NODES": "abc", "ES_MESOS_WEB_UI_PORT": "70000"})
    assert found == (
        "--elasticsearchNodes (from ES_MESOS_ELASTICSEARCH_NODES): 'abc' must be a whole number of nodes of at least 1",
        "--webUiPort (from ES_MESOS_WEB_UI_PORT): '70000' must be a port from 1 to 65535",
    )


def test_marathon_and_other_env_vars_are_never_read() -> None:
    assert cfg(MARATHON_GARBAGE) == cfg()
    assert cfg(MARATHON_GARBAGE).public_dict() == cfg().public_dict()
    assert cfg(MARATHON_GARBAGE).warnings == ()
    # ... also when mixed with real ES_MESOS_ variables
    mixed = cfg({**MARATHON_GARBAGE, "ES_MESOS_ELASTICSEARCH_NODES": "5"})
    assert mixed == cfg(elasticsearchNodes="5")


def test_resolve_config_without_env_uses_defaults() -> None:
    assert resolve_config({}) == resolve_config({}, {})


def test_unknown_flags_are_rejected_all_together() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_config({"bogus": "1", "elasticsearchNode": "3"}, {})
    assert info.value.problems == ("unknown flag --bogus", "unknown flag --elasticsearchNode")


# --- defaults -------------------------------------------------------------------------------------


def test_defaults() -> None:
    c = cfg()
    assert c.mem_mb >= 2048 and c.mem_mb == 2048.0
    assert c.heap_mb == 1024
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
    assert c.external_volume_config_options == (("size", "1"),)
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


@pytest.mark.parametrize(("ram", "heap"), [("2048", 1024), ("4096", 2048), ("3000.5", 1500), ("1", 1), ("0.001", 1)])
def test_heap_is_half_the_memory(ram: str, heap: int) -> None:
    assert cfg(elasticsearchRam=ram).heap_mb == heap


def test_small_memory_is_accepted_with_a_warning() -> None:
    c = cfg(elasticsearchRam="1000")
    assert c.warnings == ("--elasticsearchRam 1000 MB gives a heap of 500 MB; Elasticsearch needs 512 MB or more",)
    assert cfg(elasticsearchRam="1024").warnings == ()


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
    assert decoded["externalVolumeConfigOptions"] == {"size": "1"}
    assert decoded["frameworkSecretPath"] is None
    assert decoded["elasticsearchNodes"] == 3 and decoded["frameworkUseDocker"] is True
    assert decoded["frameworkFailoverTimeout"] == DEFAULT_FAILOVER_TIMEOUT_S


# --- secrets ----------------------------------------------------------------------------------------


def test_secret_is_read_and_never_shown(secret_file: Path) -> None:
    c = cfg(frameworkPrincipal="ops", frameworkSecretPath=str(secret_file))
    assert c.principal == "ops"
    assert isinstance(c.secret, Secret) and c.secret.reveal() == SECRET_TEXT
    assert c.warnings == ()
    public = c.public_dict()
    assert public["frameworkSecretPath"] == "****"
    for shown in (repr(c), str(c), json.dumps(public), repr(c.secret), str(c.secret), f"{c.secret}"):
        assert SECRET_TEXT not in shown
    assert repr(c.secret) == "Secret('****')"


def test_secret_never_appears_in_error_messages(secret_file: Path) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_config(
            {"frameworkPrincipal": "ops", "frameworkSecretPath": str(secret_file), "elasticsearchNodes": "0"}, {}
        )
    assert len(info.value.problems) == 1
    assert SECRET_TEXT not in str(info.value) and SECRET_TEXT not in repr(info.value)
    found = problems(frameworkSecretPath=str(secret_file))
    assert found == ("--frameworkSecretPath is given without --frameworkPrincipal; Mesos needs both",)


def test_secret_passed_instead_of_a_path_is_masked_in_the_message() -> None:
    # Someone who puts the secret itself into the path flag must not see it echoed in logs.
    message = only_problem(frameworkPrincipal="ops", frameworkSecretPath=SECRET_TEXT)
    assert message == "--frameworkSecretPath: '****' names a file that does not exist"


def test_missing_secret_file_is_an_error(tmp_path: Path) -> None:
    message = only_problem(frameworkPrincipal="ops", frameworkSecretPath=str(tmp_path / "missing"))
    assert message == "--frameworkSecretPath: '****' names a file that does not exist"


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\n\n"])
def test_trailing_newline_is_stripped_with_a_warning(tmp_path: Path, ending: str) -> None:
    path = tmp_path / "secret"
    path.write_bytes((SECRET_TEXT + ending).encode())
    c = cfg(frameworkPrincipal="ops", frameworkSecretPath=str(path))
    assert c.secret is not None and c.secret.reveal() == SECRET_TEXT
    assert c.warnings == (f"--frameworkSecretPath: {path} ends with a newline; it was stripped from the secret",)
    assert SECRET_TEXT not in " ".join(c.warnings)


@pytest.mark.parametrize("content", [b"", b"\n"])
def test_empty_secret_file_is_an_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "secret"
    path.write_bytes(content)
    assert only_problem(frameworkPrincipal="ops", frameworkSecretPath=str(path)) == (
        "--frameworkSecretPath: '****' names an empty file"
    )


def test_unreadable_secret_files_are_errors(tmp_path: Path) -> None:
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe\x00secret")
    assert only_problem(frameworkPrincipal="ops", frameworkSecretPath=str(binary)) == (
        "--frameworkSecretPath: '****' is not a UTF-8 text file"
    )
    assert only_problem(frameworkPrincipal="ops", frameworkSecretPath=str(tmp_path)) == (
        "--frameworkSecretPath: '****' cannot be read: Is a directory"
    )


def test_principal_without_secret_is_allowed_and_validated() -> None:
    assert cfg(frameworkPrincipal="ops").principal == "ops"
    assert_rejected("frameworkPrincipal", "a b", "must be a non-empty name without whitespace")


ZK_PASSWORD = "zkPa55word"


def test_zookeeper_credentials_are_kept_secret() -> None:
    c = cfg(mesosMaster=f"zk://super:{ZK_PASSWORD}@zk1:2181,zk2:2182/mesos")
    assert c.mesos_master is not None
    assert c.mesos_master.url == "zk://zk1:2181,zk2:2182/mesos"
    assert c.mesos_master.zk_auth == Secret(f"super:{ZK_PASSWORD}")
    assert c.mesos_master.zk_auth.reveal() == f"super:{ZK_PASSWORD}"
    for shown in (repr(c), str(c), json.dumps(c.public_dict()), str(c.mesos_master)):
        assert ZK_PASSWORD not in shown


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("mesosMaster", f"zk://super:{ZK_PASSWORD}@zk1:2181"),
        ("zookeeperMesosUrl", f"zk://super:{ZK_PASSWORD}@zk1:99999/mesos"),
        ("mesosMaster", f"http://super:{ZK_PASSWORD}@master:5050"),
    ],
)
def test_url_credentials_never_appear_in_error_messages(flag: str, value: str) -> None:
    message = only_problem(**{flag: value})
    assert ZK_PASSWORD not in message
    assert message.startswith(f"--{flag}: '") and "****@" in message


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


# --- ZooKeeper and Mesos master ---------------------------------------------------------------------

ZK_ALLOWED = "must be zk://[user:password@]host:port[,host:port...]/path"
MASTER_ALLOWED = "must be host:port, http(s)://host:port or zk://host:port[,...]/path"


@pytest.mark.parametrize("flag", ["zookeeperMesosUrl", "mesosMaster"])
@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("zk://h:2181", "(the path, e.g. /mesos, is missing)"),
        ("zk://h:2181/", "(the path, e.g. /mesos, is missing)"),
        ("zk://h:2181///", "(the path, e.g. /mesos, is missing)"),
        ("zk:///mesos", "(no host given)"),
        ("zk://h:99999/mesos", "(port 99999 is outside 1-65535)"),
        ("zk://h:0/mesos", "(port 0 is outside 1-65535)"),
        ("zk://h:abc/mesos", "('h:abc' is not host[:port])"),
        ("zk://h1:2181,,h2/mesos", "('' is not host[:port])"),
        ("zk://h:2181/a//b", "(the path '/a//b' is not a valid znode path)"),
        ("zk://h:2181/mesos/../x", "is not a valid znode path"),
    ],
)
def test_bad_zookeeper_urls(flag: str, value: str, detail: str) -> None:
    message = assert_rejected(flag, value, ZK_ALLOWED)
    assert detail in message


@pytest.mark.parametrize("value", ["http://h:5050", "h:2181/mesos", "zk:/h:2181/mesos"])
def test_zookeeper_flag_takes_only_zk_urls(value: str) -> None:
    assert_rejected("zookeeperMesosUrl", value, ZK_ALLOWED)


@pytest.mark.parametrize("flag", ["zookeeperMesosUrl", "mesosMaster"])
@pytest.mark.parametrize(
    ("value", "url", "hosts", "path"),
    [
        ("zk://h:2181/mesos", "zk://h:2181/mesos", (("h", 2181),), "/mesos"),
        ("zk://h/mesos/", "zk://h:2181/mesos", (("h", 2181),), "/mesos"),
        (
            "zk://a:1,b:2,10.0.0.3/x/mesos",
            "zk://a:1,b:2,10.0.0.3:2181/x/mesos",
            (("a", 1), ("b", 2), ("10.0.0.3", 2181)),
            "/x/mesos",
        ),
        ("zk://[::1]:2181/mesos", "zk://[::1]:2181/mesos", (("[::1]", 2181),), "/mesos"),
    ],
)
def test_good_zookeeper_urls(flag: str, value: str, url: str, hosts: tuple[tuple[str, int], ...], path: str) -> None:
    master = cfg(**{flag: value}).mesos_master
    assert master == MesosMaster(kind="zk", url=url, hosts=hosts, path=path)
    assert str(master) == url


@pytest.mark.parametrize(
    ("value", "url", "host"),
    [
        ("h:5050", "http://h:5050", ("h", 5050)),
        ("master.example.com:5051", "http://master.example.com:5051", ("master.example.com", 5051)),
        ("h", "http://h:5050", ("h", 5050)),
        ("http://h", "http://h:5050", ("h", 5050)),
        ("http://h:5050/", "http://h:5050", ("h", 5050)),
        ("https://h:5051", "https://h:5051", ("h", 5051)),
        (" https://h ", "https://h:5050", ("h", 5050)),
        ("[::1]:5050", "http://[::1]:5050", ("[::1]", 5050)),
    ],
)
def test_mesos_master_http_forms(value: str, url: str, host: tuple[str, int]) -> None:
    master = cfg(mesosMaster=value).mesos_master
    assert master == MesosMaster(kind="http", url=url, hosts=(host,))
    assert master.path == "" and master.zk_auth is None


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("ftp://x", ""),
        ("http://h:99999", "(port 99999 is outside 1-65535)"),
        ("http://h/api", ""),
        ("http://h:5050?x=1", ""),
        ("http://h:5050#frag", ""),
        ("h:abc", "('h:abc' is not host[:port])"),
        ("-h:5050", "is not host[:port]"),
        ("http://[::1", ""),
        ("http://", "('' is not host[:port])"),
    ],
)
def test_mesos_master_junk(value: str, detail: str) -> None:
    message = assert_rejected("mesosMaster", value, MASTER_ALLOWED)
    assert detail in message


def test_mesos_master_is_optional_and_falls_back_to_zookeeper_url() -> None:
    assert cfg(mesosMaster="").mesos_master is None
    assert cfg(mesosMaster="   ").mesos_master is None
    master = cfg(zookeeperMesosUrl="zk://h:2181/mesos").mesos_master
    assert master is not None and master.kind == "zk" and master.url == "zk://h:2181/mesos"


@pytest.mark.parametrize(
    ("master", "zk"),
    [
        ("zk://a:2181/mesos", "zk://b:2181/mesos"),
        ("zk://a:2181/mesos", "zk://a:2181/other"),
        ("a:5050", "zk://a:2181/mesos"),
    ],
)
def test_mesos_master_and_zookeeper_url_must_agree(master: str, zk: str) -> None:
    message = only_problem(mesosMaster=master, zookeeperMesosUrl=zk)
    assert message.startswith("--mesosMaster '")
    assert "--zookeeperMesosUrl" in message and "disagree; give one of them" in message


def test_mesos_master_and_zookeeper_url_agreeing_is_fine() -> None:
    c = cfg(mesosMaster="zk://a/mesos/", zookeeperMesosUrl="zk://a:2181/mesos")
    assert c.mesos_master is not None and c.mesos_master.url == "zk://a:2181/mesos"


def test_no_disagreement_noise_when_one_side_is_invalid() -> None:
    found = problems(mesosMaster="ftp://x", zookeeperMesosUrl="zk://a:2181/mesos")
    assert len(found) == 1 and found[0].startswith("--mesosMaster: 'ftp://x' ")


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


# --- names ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["elasticsearch", "es-prod", "a", "es-prod-eu-west-b", "x" * 63])
def test_framework_names_accepted(name: str) -> None:
    assert cfg(frameworkName=name).framework_name == name


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("es1", "it ends with a digit, which makes volume names ambiguous"),
        ("es-2", "it ends with a digit"),
        ("Es", "use lowercase letters, digits and '-', starting and ending with a letter"),
        ("-es", "use lowercase letters, digits and '-', starting and ending with a letter"),
        ("es-", "use lowercase letters, digits and '-', starting and ending with a letter"),
        ("1es", "use lowercase letters, digits and '-', starting and ending with a letter"),
        ("es_prod", "use lowercase letters, digits and '-', starting and ending with a letter"),
        ("", "it is empty"),
        ("x" * 64, "it is 64 characters long; at most 63 are allowed"),
    ],
)
def test_framework_names_rejected(name: str, why: str) -> None:
    message = assert_rejected("frameworkName", name, "is not allowed: ")
    assert why in message


def test_ambiguity_is_explained_for_names_ending_with_a_digit() -> None:
    assert "'es112data'" in only_problem(frameworkName="es1")


@no_db
@given(st.from_regex(r"[a-z](?:[a-z0-9-]{0,61}[a-z])?", fullmatch=True))
def test_any_name_of_the_documented_form_is_accepted(name: str) -> None:
    assert resolve_config({"frameworkName": name}, {}).framework_name == name


@no_db
@given(st.from_regex(r"[a-z][a-z0-9-]{0,40}[0-9]", fullmatch=True))
def test_any_name_ending_with_a_digit_is_rejected(name: str) -> None:
    with pytest.raises(ConfigError, match="ends with a digit"):
        resolve_config({"frameworkName": name}, {})


@pytest.mark.parametrize("name", ["mesos-ha", "prod_logs.2", "A1", "x" * 255])
def test_cluster_names_accepted(name: str) -> None:
    assert cfg(elasticsearchClusterName=name).cluster_name == name


@pytest.mark.parametrize("name", ["a/b", "a:b", "", "-a", ".a", "a b", "x" * 256, "../etc"])
def test_cluster_names_rejected(name: str) -> None:
    assert_rejected("elasticsearchClusterName", name, "must be letters, digits, '.', '_' or '-', starting with")


@pytest.mark.parametrize("role", ["*", "eng", "eng/es", "eng-team/es.search", "a.b"])
def test_roles_accepted(role: str) -> None:
    assert cfg(frameworkRole=role).role == role


@pytest.mark.parametrize(
    "role", ["-x", "a b", ".", "..", "a//b", "", "a/", "/a", "a/../b", "a/-b", "eng*", "a\\b", "a\tb"]
)
def test_roles_rejected(role: str) -> None:
    assert_rejected("frameworkRole", role, "must be '*' or a Mesos role name")


@pytest.mark.parametrize(
    "image",
    [
        "busybox",
        "es-mesos/elasticsearch-executor:0.1.0",
        "registry.example.com/es-mesos/executor:1.0",
        "registry.example.com:5000/team/es__exec:v1.2_rc-3",
        "es@sha256:" + "a" * 64,
        "es:1.0@sha256:" + "0123456789abcdef" * 4,
    ],
)
def test_docker_images_accepted(image: str) -> None:
    assert cfg(elasticsearchDockerImage=image).docker_image == image


@pytest.mark.parametrize(
    "image",
    [
        "",
        "Es/Executor",
        "es:",
        "es:tag with space",
        "es:-tag",
        "http://registry/es",
        "es@sha256:abc",
        "es//exec",
        "es/",
        "es:" + "t" * 129,
    ],
)
def test_docker_images_rejected(image: str) -> None:
    assert_rejected("elasticsearchDockerImage", image, "must be a Docker image reference")


# --- labels and volume options --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a=b c=d", (("a", "b"), ("c", "d"))),
        ("a=b,c=d", (("a", "b"), ("c", "d"))),
        ("  a=b ,  c=d\tx=y=z ", (("a", "b"), ("c", "d"), ("x", "y=z"))),
        ("a=", (("a", ""),)),
        ("", ()),
        ("es-mesosx=1", (("es-mesosx", "1"),)),
    ],
)
def test_labels_accepted(text: str, expected: tuple[tuple[str, str], ...]) -> None:
    assert parse_labels(text) == expected
    assert cfg(executorLabels=text).executor_labels == expected


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("a=b a=c", "label 'a' is given twice"),
        ("a=b,a=b", "label 'a' is given twice"),
        ("es-mesos.node-id=1", "label keys starting with 'es-mesos.' belong to the framework; 'es-mesos.node-id'"),
        ("team=x es-mesos.cluster=y", "'es-mesos.cluster' is not allowed"),
        ("novalue", "must be key=value items separated by spaces or commas; 'novalue' is not"),
        ("=b", "must be key=value items separated by spaces or commas; '=b' is not"),
    ],
)
def test_labels_rejected(text: str, detail: str) -> None:
    assert_rejected("executorLabels", text, detail)


label_keys = st.from_regex(r"[A-Za-z0-9_.-][A-Za-z0-9_./-]{0,15}", fullmatch=True).filter(
    lambda k: not k.startswith("es-mesos.")
)
label_values = st.from_regex(r"[A-Za-z0-9_.:/=-]{0,12}", fullmatch=True)


@no_db
@given(st.dictionaries(label_keys, label_values, max_size=6), st.sampled_from([" ", ",", " , ", "\n"]))
def test_parse_labels_round_trip(labels: dict[str, str], sep: str) -> None:
    text = sep.join(f"{k}={v}" for k, v in labels.items())
    assert parse_labels(text) == tuple(labels.items())


VOLUME_ALLOWED = "must be a comma-separated list of key=value"


def test_volume_options_keep_their_order() -> None:
    c = cfg(externalVolumeDriver="rexray", externalVolumeOptions="size=100,volumetype=io1,iops=3000")
    assert c.external_volume_options == (("size", "100"), ("volumetype", "io1"), ("iops", "3000"))
    assert parse_key_values(" iops=3000 , size=100 ") == (("iops", "3000"), ("size", "100"))
    assert parse_key_values("") == ()


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("size=1,size=2", "'size' is given twice"),
        ("size", "'size' is not"),
        ("size=", "'size=' is not"),
        ("size=100,,iops=1", "'' is not"),
        ("=100", "'=100' is not"),
        ("si ze=100", "'si ze=100' is not"),
        ("name='x'", """"name='x'" is not"""),
        ('name="x"', """'name="x"' is not"""),
    ],
)
@pytest.mark.parametrize("flag", ["externalVolumeOptions", "externalVolumeConfigOptions"])
def test_volume_options_rejected(flag: str, text: str, detail: str) -> None:
    message = assert_rejected(flag, text, VOLUME_ALLOWED, externalVolumeDriver="rexray")
    assert detail in message


option_keys = st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True)
option_values = st.text(
    alphabet=st.characters(exclude_characters=",'\"", exclude_categories=["Cs"]), min_size=1, max_size=12
).filter(lambda v: v == v.strip() and v != "")


@no_db
@given(st.dictionaries(option_keys, option_values, max_size=6))
def test_parse_key_values_round_trip(options: dict[str, str]) -> None:
    text = ",".join(f"{k}={v}" for k, v in options.items())
    parsed = parse_key_values(text)
    assert parsed == tuple(options.items())
    assert parse_key_values(",".join(f"{k}={v}" for k, v in parsed)) == parsed


# --- cross-flag rules -------------------------------------------------------------------------------


def test_volume_options_need_a_driver() -> None:
    assert problems(externalVolumeOptions="size=100") == ("--externalVolumeOptions needs --externalVolumeDriver",)
    assert problems({"ES_MESOS_EXTERNAL_VOLUME_CONFIG_OPTIONS": "size=5"}) == (
        "--externalVolumeConfigOptions needs --externalVolumeDriver",
    )
    # the default config options (size=1) are no reason to complain, nor an explicitly empty value
    assert cfg(externalVolumeOptions="").external_volume_options == ()
    assert cfg().external_volume_config_options == (("size", "1"),)
    assert cfg(externalVolumeDriver="rexray", externalVolumeOptions="size=100").external_volume_options == (
        ("size", "100"),
    )


def test_volume_method_only_with_the_mesos_containerizer() -> None:
    found = problems(externalVolumeDriver="rexray", externalVolumeMethod="dvdi")
    assert found == (
        "--externalVolumeMethod applies to the Mesos containerizer only (--frameworkUseDocker false); "
        "with Docker the volumes always go through docker parameters",
    )
    assert len(problems(externalVolumeDriver="rexray", externalVolumeMethod="dockerVolume")) == 1
    c = cfg(externalVolumeDriver="rexray", externalVolumeMethod="dvdi", **MESOS_CONTAINERIZER)
    assert c.external_volume_method == "dvdi" and c.use_docker is False and c.binary_url == BINARY_URL


def test_cross_flag_rules_stay_quiet_when_a_side_is_invalid() -> None:
    assert problems(externalVolumeDriver="rex ray", externalVolumeOptions="size=1") == (
        "--externalVolumeDriver: 'rex ray' must be a Docker volume driver name such as rexray or rexray/ebs:latest",
    )
    assert problems(externalVolumeMethod="nfs", externalVolumeDriver="rexray") == (
        "--externalVolumeMethod: 'nfs' must be dockerVolume (docker/volume isolator) or dvdi (mesos-module-dvdi)",
    )
    assert problems(frameworkUseDocker="false", elasticsearchBinaryUrl="relative.tgz") == (
        "--elasticsearchBinaryUrl: 'relative.tgz' must be an absolute path without '.' or '..' parts",
    )
    found = problems(frameworkPrincipal="a b", frameworkSecretPath="/nonexistent/secret")
    assert [p.split(":")[0] for p in found] == ["--frameworkPrincipal", "--frameworkSecretPath"]


def test_volume_method_without_driver_is_reported_too() -> None:
    found = problems(externalVolumeMethod="dvdi", **MESOS_CONTAINERIZER)
    assert found == ("--externalVolumeMethod needs --externalVolumeDriver",)


def test_mesos_containerizer_needs_a_binary_url() -> None:
    assert problems(frameworkUseDocker="false") == (
        "--frameworkUseDocker false needs --elasticsearchBinaryUrl (the Mesos containerizer has no image)",
    )
    assert cfg(frameworkUseDocker="false", elasticsearchBinaryUrl="/opt/es.tar.gz").binary_url == "/opt/es.tar.gz"
    assert cfg(frameworkUseDocker="false", elasticsearchBinaryUrl="s3://bucket/es.tgz").use_docker is False


def test_disk_with_a_driver_warns_that_it_is_ignored() -> None:
    c = cfg(externalVolumeDriver="rexray", elasticsearchDisk="5000")
    assert c.warnings == (
        "--elasticsearchDisk is ignored with --externalVolumeDriver: the volume driver manages storage",
    )
    assert cfg(externalVolumeDriver="rexray").warnings == ()


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


def test_unknown_es_mesos_variables_are_reported_as_possible_typos() -> None:
    config = cfg({"ES_MESOS_ELASTICSEARCH_NODE": "5", "ES_MESOS_ELASTICSEARCH_NODES": "5", "PORT0": "1"})
    assert config.elasticsearch_nodes == 5
    assert [w for w in config.warnings if "ES_MESOS_ELASTICSEARCH_NODE " in w] == [
        "ES_MESOS_ELASTICSEARCH_NODE is set but is not one of es-framework's variables (a typo?); it is ignored"
    ]
    assert not any("ES_MESOS_ELASTICSEARCH_NODES" in w or "PORT0" in w for w in config.warnings)


def test_url_credentials_are_masked_in_the_public_configuration(tmp_path: Path) -> None:
    config = cfg(
        frameworkUseDocker="false",
        elasticsearchBinaryUrl="https://deploy:hunter2@artifacts.example.com/elasticsearch.tar.gz",
    )
    assert config.binary_url == "https://deploy:hunter2@artifacts.example.com/elasticsearch.tar.gz"
    shown = config.public_dict()["elasticsearchBinaryUrl"]
    assert shown == "https://****@artifacts.example.com/elasticsearch.tar.gz"


def test_state_url_is_validated_and_its_credentials_never_shown() -> None:
    config = cfg(frameworkStateUrl="zk://es:s3cret@zk1:2181/es")
    assert "s3cret" not in repr(config) and "s3cret" not in str(config.public_dict())
    assert config.public_dict()["frameworkStateUrl"] == "zk://****@zk1:2181/es"
    assert_rejected("frameworkStateUrl", "ftp://x", "state URL scheme 'ftp' is not supported")
    message = only_problem(frameworkStateUrl="zk://es:s3cret@zk1:99999/es")
    assert "s3cret" not in message and "must be 1-65535" in message


# --- local mode ---------------------------------------------------------------------------------------


def test_local_master_is_accepted_and_has_its_own_kind() -> None:
    c = cfg(mesosMaster="local")
    assert c.mesos_master == MesosMaster(kind="local", url="local", hosts=())
    assert c.mesos_master.is_local and c.local_mode
    assert str(c.mesos_master) == "local" and c.public_dict()["mesosMaster"] == "local"
    assert cfg(mesosMaster=" local ").local_mode
    assert cfg({"ES_MESOS_MESOS_MASTER": "local"}).local_mode


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


# --- Elasticsearch security ----------------------------------------------------------------------


def test_security_is_off_by_default_and_says_so() -> None:
    config = resolve_config({}, {})
    assert not config.security_enabled
    assert config.security_warning is not None and "security is OFF" in config.security_warning


def test_security_needs_the_password_and_the_certificates(tmp_path: Path) -> None:
    password = _write_secret(tmp_path)
    config = resolve_config({"elasticsearchPasswordFile": password, "elasticsearchCertificatesUrl": CERTIFICATES_URL})
    assert config.security_enabled and config.security_warning is None
    assert "****" in repr(config.elastic_password) and SECRET_TEXT not in repr(config)
    with pytest.raises(ConfigError, match="PasswordFile is given without --elasticsearchCertificatesUrl"):
        resolve_config({"elasticsearchPasswordFile": password})
    with pytest.raises(ConfigError, match="CertificatesUrl is given without --elasticsearchPasswordFile"):
        resolve_config({"elasticsearchCertificatesUrl": CERTIFICATES_URL})


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_master_nodes_must_be_a_positive_whole_number(value: str) -> None:
    with pytest.raises(ConfigError, match="elasticsearchMasterNodes"):
        resolve_config({"elasticsearchMasterNodes": value})
