"""The rules between flags, Elasticsearch security among them."""

from __future__ import annotations

from pathlib import Path

import pytest

from es_framework.config import (
    ConfigError,
    resolve_config,
)
from tests.config.support import (
    BINARY_URL,
    CERTIFICATES_URL,
    MESOS_CONTAINERIZER,
    SECRET_TEXT,
    cfg,
    problems,
    write_secret,
)

# --- cross-flag rules -------------------------------------------------------------------------------


def test_volume_options_need_a_driver() -> None:
    assert problems(externalVolumeOptions="size=100") == ("--externalVolumeOptions needs --externalVolumeDriver",)
    assert problems({"ES_MESOS_EXTERNAL_VOLUME_CONFIG_OPTIONS": "size=5"}) == (
        "--externalVolumeConfigOptions needs --externalVolumeDriver",
    )
    # no default config options (the driver's profile table supplies them), nor an explicitly empty value
    assert cfg(externalVolumeOptions="").external_volume_options == ()
    assert cfg().external_volume_config_options == ()
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


# --- Elasticsearch security ----------------------------------------------------------------------


def test_security_off_says_so_and_without_the_flag_the_mode_waits_for_the_state() -> None:
    config = resolve_config({"elasticsearchSecurity": "off"}, {})
    assert not config.security_enabled
    assert config.security_warning is not None and "security is OFF" in config.security_warning
    # Not given: decided at leadership from the state (core/security_mode.py), which says it then.
    undecided = resolve_config({}, {})
    assert undecided.elasticsearch_security is None and undecided.security_warning is None
    assert not undecided.creates_ca


def test_security_needs_the_password_and_the_certificates(tmp_path: Path) -> None:
    password = write_secret(tmp_path)
    config = resolve_config({"elasticsearchPasswordFile": password, "elasticsearchCertificatesUrl": CERTIFICATES_URL})
    assert config.security_enabled and config.security_warning is None
    assert "****" in repr(config.elastic_password) and SECRET_TEXT not in repr(config)
    with pytest.raises(ConfigError, match="PasswordFile is given without --elasticsearchCertificatesUrl"):
        resolve_config({"elasticsearchPasswordFile": password})
    with pytest.raises(ConfigError, match="CertificatesUrl is given without --elasticsearchPasswordFile"):
        resolve_config({"elasticsearchCertificatesUrl": CERTIFICATES_URL})


def test_several_nodes_per_agent_need_external_volumes() -> None:
    with pytest.raises(ConfigError, match="--maxNodesPerAgent above 1 needs --externalVolumeDriver"):
        cfg(maxNodesPerAgent="2")
    assert cfg(maxNodesPerAgent="2", externalVolumeDriver="rexray").max_nodes_per_agent == 2
    assert cfg(maxNodesPerAgent="1").max_nodes_per_agent == 1
