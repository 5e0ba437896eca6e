"""Flag names, their ES_MESOS_* environment variables, and which source wins."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from es_framework.config import (
    ENV_PREFIX,
    FLAGS,
    FLAGS_BY_NAME,
    Config,
    ConfigError,
    Ports,
    resolve_config,
)
from tests.config.support import (
    BINARY_URL,
    CERTIFICATES_URL,
    MESOS_CONTAINERIZER,
    SECRET_KEY_TEXT,
    SECRET_TEXT,
    cfg,
    only_problem,
    problems,
    write_secret,
    write_secret_key,
)
from tests.harness.builders import MARATHON_GARBAGE

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
    "insecureApi",
    "externalVolumeAttribute",
    "volumeProfile",
    "volumeProfileFile",
    "volumeRetention",
    "constraints",
    "maxNodesPerAgent",
    "zoneAttribute",
    "maxUnavailable",
    "rolloutStepTimeout",
    "agentFailureBackoff",
    "permanentFailureTimeout",
    "markAgentGoneAfterTimeout",
    "replacementInterval",
    "elasticsearchCertificatesPasswordFile",
    "elasticsearchVersion",
    "elasticsearchSecurity",
    "elasticsearchSecuritySwitch",
    "secretKeyFile",
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
    "insecureApi": "ES_MESOS_INSECURE_API",
    "externalVolumeAttribute": "ES_MESOS_EXTERNAL_VOLUME_ATTRIBUTE",
    "volumeProfile": "ES_MESOS_VOLUME_PROFILE",
    "volumeProfileFile": "ES_MESOS_VOLUME_PROFILE_FILE",
    "volumeRetention": "ES_MESOS_VOLUME_RETENTION",
    "constraints": "ES_MESOS_CONSTRAINTS",
    "maxNodesPerAgent": "ES_MESOS_MAX_NODES_PER_AGENT",
    "zoneAttribute": "ES_MESOS_ZONE_ATTRIBUTE",
    "maxUnavailable": "ES_MESOS_MAX_UNAVAILABLE",
    "rolloutStepTimeout": "ES_MESOS_ROLLOUT_STEP_TIMEOUT",
    "agentFailureBackoff": "ES_MESOS_AGENT_FAILURE_BACKOFF",
    "permanentFailureTimeout": "ES_MESOS_PERMANENT_FAILURE_TIMEOUT",
    "markAgentGoneAfterTimeout": "ES_MESOS_MARK_AGENT_GONE_AFTER_TIMEOUT",
    "replacementInterval": "ES_MESOS_REPLACEMENT_INTERVAL",
    "elasticsearchCertificatesPasswordFile": "ES_MESOS_ELASTICSEARCH_CERTIFICATES_PASSWORD_FILE",
    "elasticsearchVersion": "ES_MESOS_ELASTICSEARCH_VERSION",
    "elasticsearchSecurity": "ES_MESOS_ELASTICSEARCH_SECURITY",
    "elasticsearchSecuritySwitch": "ES_MESOS_ELASTICSEARCH_SECURITY_SWITCH",
    "secretKeyFile": "ES_MESOS_SECRET_KEY_FILE",
}


def test_the_flags_are_exactly_the_java_names_plus_the_new_ones() -> None:
    assert sorted(FLAGS_BY_NAME) == sorted(JAVA_FLAGS + NEW_FLAGS)
    assert len(FLAGS) == len(FLAGS_BY_NAME) == len(JAVA_FLAGS + NEW_FLAGS)  # no flag defined twice


@pytest.mark.parametrize("name", sorted(EXPECTED_ENV))
def test_env_var_name_is_prefix_plus_upper_snake(name: str) -> None:
    assert FLAGS_BY_NAME[name].env_var == EXPECTED_ENV[name]
    assert FLAGS_BY_NAME[name].env_var.startswith(ENV_PREFIX)


# One valid, non-default value per flag: (value, getter, expected, other flags it needs).
# A value may be a callable taking tmp_path (for flags naming a file).
EnvCase = tuple[Any, Callable[[Config], Any], Any, dict[str, Any]]
DRIVER = {"externalVolumeDriver": "rexray"}
LOCAL = {"mesosMaster": "local"}


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
        write_secret,
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
        write_secret,
        lambda c: c.elastic_password.reveal() if c.elastic_password else None,
        SECRET_TEXT,
        {"elasticsearchCertificatesUrl": CERTIFICATES_URL},
    ),
    "elasticsearchCertificatesUrl": (
        CERTIFICATES_URL,
        lambda c: c.certificates_url,
        CERTIFICATES_URL,
        {"elasticsearchPasswordFile": write_secret},
    ),
    "apiTokenFile": (write_secret, lambda c: c.api_token.reveal() if c.api_token else None, SECRET_TEXT, {}),
    "insecureApi": ("true", lambda c: c.insecure_api, True, {}),
    "externalVolumeAttribute": (
        "rexray:true",
        lambda c: str(c.external_volume_attribute),
        "rexray:IS:true",
        DRIVER,
    ),
    "volumeProfile": ("data=gold", lambda c: c.volume_profile, (("data", "gold"),), DRIVER),
    "volumeProfileFile": (
        "/etc/es-mesos/profiles.yaml",
        lambda c: c.volume_profile_file,
        "/etc/es-mesos/profiles.yaml",
        DRIVER,
    ),
    "volumeRetention": ("delete", lambda c: c.volume_retention, "delete", DRIVER),
    "constraints": (
        "hostname:UNIQUE;rack:LIKE:r[12]",
        lambda c: tuple(map(str, c.constraints)),
        ("hostname:UNIQUE", "rack:LIKE:r[12]"),
        {},
    ),
    "maxNodesPerAgent": ("2", lambda c: c.max_nodes_per_agent, 2, DRIVER),
    "zoneAttribute": ("zone", lambda c: c.zone_attribute, "zone", {}),
    "maxUnavailable": ("2", lambda c: c.max_unavailable, 2, {}),
    "rolloutStepTimeout": ("600", lambda c: c.rollout_step_timeout_s, 600.0, {}),
    "agentFailureBackoff": ("120", lambda c: c.agent_failure_backoff_s, 120.0, {}),
    "permanentFailureTimeout": ("900", lambda c: c.permanent_failure_timeout_s, 900.0, {}),
    "markAgentGoneAfterTimeout": ("true", lambda c: c.mark_agent_gone_after_timeout, True, {}),
    "replacementInterval": ("60", lambda c: c.replacement_interval_s, 60.0, {}),
    "elasticsearchCertificatesPasswordFile": (
        write_secret,
        lambda c: c.certificates_password.reveal() if c.certificates_password else None,
        SECRET_TEXT,
        {"elasticsearchCertificatesUrl": CERTIFICATES_URL, "elasticsearchPasswordFile": write_secret},
    ),
    "elasticsearchVersion": ("8.15.1", lambda c: str(c.elasticsearch_version), "8.15.1", {}),
    "elasticsearchSecurity": ("off", lambda c: c.elasticsearch_security, "off", {}),
    "elasticsearchSecuritySwitch": (
        "fullRestart",
        lambda c: c.elasticsearch_security_switch,
        "fullRestart",
        {"elasticsearchSecurity": "auto"},
    ),
    "secretKeyFile": (
        write_secret_key,
        lambda c: c.secret_key.reveal() if c.secret_key else None,
        SECRET_KEY_TEXT,
        {"elasticsearchSecurity": "auto"},
    ),
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
    needs = {k: _env_value(v, tmp_path) for k, v in needs.items()}
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


def test_unknown_es_mesos_variables_are_reported_as_possible_typos() -> None:
    config = cfg({"ES_MESOS_ELASTICSEARCH_NODE": "5", "ES_MESOS_ELASTICSEARCH_NODES": "5", "PORT0": "1"})
    assert config.elasticsearch_nodes == 5
    assert [w for w in config.warnings if "ES_MESOS_ELASTICSEARCH_NODE " in w] == [
        "ES_MESOS_ELASTICSEARCH_NODE is set but is not one of es-framework's variables, so it is ignored; "
        "did you mean ES_MESOS_ELASTICSEARCH_NODES?"
    ]
    assert not any(w.startswith("ES_MESOS_ELASTICSEARCH_NODES ") or "PORT0" in w for w in config.warnings)


@pytest.mark.parametrize("bad", ["0", "-1", "1.5", "two", ""])
def test_max_unavailable_is_a_whole_number_of_at_least_one(bad: str) -> None:
    message = only_problem(maxUnavailable=bad)
    assert message.startswith(f"--maxUnavailable: {bad!r}")
    assert cfg().max_unavailable == 1
