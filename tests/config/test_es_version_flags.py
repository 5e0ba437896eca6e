"""--elasticsearchVersion and --elasticsearchCertificatesPasswordFile: what they accept, what they
refuse (exit 2, naming the flag), and the settings file checked against the target version by
``es-framework config`` exactly as by the scheduler."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from es_framework.cli import main
from es_framework.config import Secret
from es_framework.config.versions import EsVersion
from tests.config.support import BINARY_URL, CERTIFICATES_URL, SECRET_TEXT, assert_rejected, cfg, only_problem

# ---------------------------------------------------------------------- --elasticsearchVersion


def test_the_version_flag_and_the_target_it_gives() -> None:
    c = cfg(elasticsearchVersion="7.17.24")
    assert c.elasticsearch_version == EsVersion(7, 17, 24)
    assert c.target_version.version == EsVersion(7, 17, 24) and c.target_version.source == "--elasticsearchVersion"
    assert c.public_dict()["elasticsearchVersion"] == "7.17.24"
    assert cfg().elasticsearch_version is None and cfg().public_dict()["elasticsearchVersion"] is None


@pytest.mark.parametrize("value", ["8", "latest", "8.15.1-SNAPSHOT", "eight"])
def test_a_version_that_is_not_one_is_refused(value: str) -> None:
    assert_rejected("elasticsearchVersion", value, "e.g. 8.15.1")


@pytest.mark.parametrize("value", ["6.8.23", "7.8.0", "9.1.0"])
def test_an_unsupported_version_is_refused(value: str) -> None:
    assert_rejected("elasticsearchVersion", value, "es-mesos runs Elasticsearch 7.9 or later and 8.x")


def test_without_the_flag_the_target_is_the_image_tag_or_the_distribution() -> None:
    image = cfg(elasticsearchDockerImage="docker.elastic.co/elasticsearch/elasticsearch:8.15.1")
    assert image.target_version.version == EsVersion(8, 15, 1)
    assert cfg().target_version.version is None  # the default image's tag is es-mesos' release
    mesos = cfg(frameworkUseDocker="false", elasticsearchBinaryUrl=BINARY_URL)
    assert mesos.target_version.version == EsVersion(8, 13)
    both = cfg(elasticsearchVersion="8.14.0", elasticsearchDockerImage="elasticsearch:8.15.1")
    assert both.target_version.version == EsVersion(8, 14, 0)


# ---------------------------------------------------------------------- --elasticsearchCertificatesPasswordFile


def _secured(tmp_path: Path, **flags: str) -> dict[str, str]:
    password = tmp_path / "elastic-password"
    password.write_text("elastic-pw")
    return {"elasticsearchPasswordFile": str(password), "elasticsearchCertificatesUrl": CERTIFICATES_URL, **flags}


def test_the_bundle_password_is_read_like_the_elastic_password_and_never_shown(tmp_path: Path) -> None:
    path = tmp_path / "bundle-password"
    path.write_text(SECRET_TEXT + "\n")
    c = cfg(**_secured(tmp_path, elasticsearchCertificatesPasswordFile=str(path)))
    assert isinstance(c.certificates_password, Secret) and c.certificates_password.reveal() == SECRET_TEXT
    assert c.warnings == (
        f"--elasticsearchCertificatesPasswordFile: {path} ends with a newline; it was stripped from the secret",
    )
    public = c.public_dict()
    assert public["elasticsearchCertificatesPasswordFile"] == "****"
    for shown in (repr(c), str(c), json.dumps(public)):
        assert SECRET_TEXT not in shown


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "names a file that does not exist"),
        ("directory", "cannot be read: Is a directory"),
        (b"", "names an empty file"),
        (b"\n", "names an empty file"),
        (b"\xff\xfe", "is not a UTF-8 text file"),
        (b"first\nsecond\n", "holds more than one line; a secret is one line"),
        (b"first\r\nsecond", "holds more than one line; a secret is one line"),
    ],
)
def test_an_unreadable_or_empty_password_file_is_refused_naming_the_flag(
    tmp_path: Path, content: bytes | str | None, reason: str
) -> None:
    path = tmp_path / "bundle-password"
    if content == "directory":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    message = only_problem(**_secured(tmp_path, elasticsearchCertificatesPasswordFile=str(path)))
    assert message == f"--elasticsearchCertificatesPasswordFile: '****' {reason}"


def test_the_bundle_password_without_the_bundle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bundle-password"
    path.write_text("pw")
    message = only_problem(elasticsearchCertificatesPasswordFile=str(path))
    assert message.startswith("--elasticsearchCertificatesPasswordFile is given without --elasticsearchCertificatesUrl")


def test_a_refused_password_file_stops_es_framework_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = _secured(tmp_path, elasticsearchCertificatesPasswordFile=str(tmp_path / "missing"))
    argv = ["config", *(part for name, value in flags.items() for part in (f"--{name}", value))]
    assert main(argv, env={}) == 2
    assert "--elasticsearchCertificatesPasswordFile: '****' names a file that does not exist" in capsys.readouterr().err


# ---------------------------------------------------------------------- the settings file against the target


#: A ZooKeeper master is not resolved at start, so ``config`` can accept a configuration offline.
MASTER = ("--mesosMaster", "zk://127.0.0.1:2181/mesos", "--insecureApi", "true")


def _config(tmp_path: Path, settings: str, *flags: str) -> list[str]:
    path = tmp_path / "es.yml"
    path.write_text(settings)
    return ["config", *MASTER, "--elasticsearchSettingsLocation", str(path), *flags]


def test_a_setting_8_removed_is_refused_for_an_8_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = _config(tmp_path, "xpack.monitoring.exporters.my_remote.use_ingest: false\n")
    assert main([*argv, "--elasticsearchVersion", "8.15.1"], env={}) == 2
    err = capsys.readouterr().err
    assert "refused by Elasticsearch 8.15.1 (from --elasticsearchVersion)" in err
    assert "[xpack.monitoring.exporters.my_remote.use_ingest] was removed in Elasticsearch 8" in err
    # The same file for a 7.17 target, or an unknown one, starts (with a warning).
    assert main([*argv, "--elasticsearchVersion", "7.17.24"], env={}) == 0
    capsys.readouterr()
    assert main(argv, env={}) == 0


def test_the_image_tag_is_the_target_when_the_flag_is_absent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _config(tmp_path, "xpack.monitoring.exporters.my_remote.use_ingest: false\n")
    image = "docker.elastic.co/elasticsearch/elasticsearch:8.15.1"
    assert main([*argv, "--elasticsearchDockerImage", image], env={}) == 2
    assert "(from the tag of --elasticsearchDockerImage)" in capsys.readouterr().err


def test_a_setting_newer_than_the_target_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = _config(tmp_path, "ingest:\n  geoip:\n    downloader:\n      enabled: false\n")
    assert main([*argv, "--elasticsearchVersion", "7.10.2"], env={}) == 2
    err = capsys.readouterr().err
    assert "refused by Elasticsearch 7.10.2 (from --elasticsearchVersion)" in err
    assert "[ingest.geoip.downloader.enabled] was added in Elasticsearch 7.13" in err
    assert main([*argv, "--elasticsearchVersion", "7.17.24"], env={}) == 0
