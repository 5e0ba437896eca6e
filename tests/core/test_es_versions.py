"""Elasticsearch versions: reading one, the target version, and the settings a version refuses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from es_framework.config import DEFAULT_EXECUTOR_IMAGE
from es_framework.config.versions import (
    EsVersion,
    TargetVersion,
    binary_url_version,
    image_version,
    parse_es_version,
    target_version,
    version_in_text,
)
from es_framework.core.es_catalog import REMOVED, check_setting, pattern_matches
from es_framework.core.es_settings import validate_user_settings
from es_framework.core.es_versions import INTRODUCED, check_setting_at, version_news
from tests.config.support import no_db

#: Every supported release line (7.9 to 7.17, 8.0 to 8.19), with or without a patch.
supported_versions = st.one_of(
    st.builds(EsVersion, st.just(7), st.integers(9, 17), st.none() | st.integers(0, 30)),
    st.builds(EsVersion, st.just(8), st.integers(0, 19), st.none() | st.integers(0, 30)),
)


# ---------------------------------------------------------------------- reading versions


@pytest.mark.parametrize(
    ("text", "expected"),
    [("8.15.1", EsVersion(8, 15, 1)), ("7.17", EsVersion(7, 17)), (" 7.9.0 ", EsVersion(7, 9, 0))],
)
def test_the_flag_takes_major_minor_and_optional_patch(text: str, expected: EsVersion) -> None:
    assert parse_es_version(text) == expected


@pytest.mark.parametrize("text", ["8", "latest", "8.15.1-SNAPSHOT", "v8.15.1", "8.x", "8.15.1.2", ""])
def test_the_flag_refuses_what_is_not_a_version(text: str) -> None:
    with pytest.raises(ValueError, match=r"MAJOR\.MINOR\[\.PATCH\], e\.g\. 8\.15\.1"):
        parse_es_version(text)


@pytest.mark.parametrize("text", ["6.8.23", "7.8.1", "9.0.0", "5.6"])
def test_the_flag_refuses_unsupported_versions(text: str) -> None:
    with pytest.raises(ValueError, match=r"7\.9 or later and 8\.x"):
        parse_es_version(text)


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("docker.elastic.co/elasticsearch/elasticsearch:8.15.1", EsVersion(8, 15, 1)),
        ("registry.example.com:5000/es/executor:7.17.24", EsVersion(7, 17, 24)),
        ("elasticsearch:8.15.1@sha256:" + "a" * 64, EsVersion(8, 15, 1)),
        (DEFAULT_EXECUTOR_IMAGE, None),  # es-mesos' own release, not Elasticsearch's
        ("docker.elastic.co/elasticsearch/elasticsearch:latest", None),
        ("docker.elastic.co/elasticsearch/elasticsearch:8.15", None),  # a moving tag
        ("docker.elastic.co/elasticsearch/elasticsearch:8.15.1-custom", None),
        ("docker.elastic.co/elasticsearch/elasticsearch:6.8.23", None),
        ("registry.example.com:5000/elasticsearch", None),  # the port is no tag
    ],
)
def test_an_image_tag_is_a_version_only_when_it_names_a_supported_release(image: str, expected: object) -> None:
    assert image_version(image) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://artifacts.elastic.co/downloads/elasticsearch/elasticsearch-8.15.1-linux-x86_64.tar.gz", "8.15.1"),
        ("https://artifacts.example.com/elasticsearch-8.13.tar.gz", "8.13"),
        ("file:///opt/dist/elasticsearch-7.17.24.tar.gz?x=1", "7.17.24"),
        ("/opt/elasticsearch-7.10.2", "7.10.2"),
        ("https://artifacts.example.com/es.tar.gz", None),
        ("https://artifacts.example.com/elasticsearch-6.8.0.tar.gz", None),
        ("https://artifacts.example.com/elasticsearch-oss-7.10.2.tar.gz", None),
    ],
)
def test_a_distribution_names_its_version(url: str, expected: str | None) -> None:
    found = binary_url_version(url)
    assert (str(found) if found else None) == expected


def test_the_target_is_the_flag_else_the_image_or_the_distribution_of_the_containerizer() -> None:
    image = "docker.elastic.co/elasticsearch/elasticsearch:8.15.1"
    url = "https://a.example.com/elasticsearch-7.17.24-linux-x86_64.tar.gz"
    flag = EsVersion(8, 14, 0)
    assert target_version(flag, use_docker=True, docker_image=image, binary_url=url) == TargetVersion(
        flag, "--elasticsearchVersion"
    )
    docker = target_version(None, use_docker=True, docker_image=image, binary_url=url)
    assert docker.version == EsVersion(8, 15, 1) and "--elasticsearchDockerImage" in docker.source
    mesos = target_version(None, use_docker=False, docker_image=image, binary_url=url)
    assert mesos.version == EsVersion(7, 17, 24) and "--elasticsearchBinaryUrl" in mesos.source
    unknown = target_version(None, use_docker=True, docker_image=DEFAULT_EXECUTOR_IMAGE, binary_url=None)
    assert unknown.version is None and str(unknown).startswith("unknown")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8.15.1", EsVersion(8, 15, 1)),
        ("7.17.0-SNAPSHOT", EsVersion(7, 17, 0)),
        ("8", EsVersion(8)),
        ("8 (assumed for ELASTICSEARCH_COMMAND)", EsVersion(8)),
        ("latest", None),
    ],
)
def test_the_executor_reads_the_version_at_the_start_of_a_text(text: str, expected: EsVersion | None) -> None:
    assert version_in_text(text) == expected


@no_db
@given(a=supported_versions, b=supported_versions)
def test_at_least_is_the_release_order_when_both_minors_are_known(a: EsVersion, b: EsVersion) -> None:
    key = (a.major, a.minor, a.patch if a.patch is not None and b.patch is not None else 0)
    other = (b.major, b.minor, b.patch if a.patch is not None and b.patch is not None else 0)
    if b.patch is not None and a.patch is None and (a.major, a.minor) == (b.major, b.minor):
        assert a.at_least(b) is None  # the patch needed to tell is unknown
    else:
        assert a.at_least(b) is (key >= other)


def test_at_least_says_unknown_rather_than_guess() -> None:
    assert EsVersion(8).at_least(EsVersion(8, 5)) is None
    assert EsVersion(8).at_least(EsVersion(7, 13)) is True
    assert EsVersion(7).at_least(EsVersion(8, 0)) is False


# ---------------------------------------------------------------------- what a version refuses


def test_the_examples_of_the_issue() -> None:
    removed = check_setting_at("xpack.monitoring.exporters.my_remote.use_ingest", EsVersion(8, 15, 1))
    assert removed.error is not None and "[xpack.monitoring.exporters.my_remote.use_ingest]" in removed.error
    assert "removed in Elasticsearch 8" in removed.error
    too_new = check_setting_at("ingest.geoip.downloader.enabled", EsVersion(7, 10, 2))
    assert too_new.error is not None and "[ingest.geoip.downloader.enabled] was added in Elasticsearch 7.13" in (
        too_new.error
    )
    assert "7.10.2 does not know it" in too_new.error
    assert check_setting_at("ingest.geoip.downloader.enabled", EsVersion(7, 17, 24)).error is None


@no_db
@given(version=supported_versions)
def test_a_setting_is_refused_exactly_by_the_versions_before_its_introduction(version: EsVersion) -> None:
    for entry in INTRODUCED:
        verdict = check_setting_at(entry.key, version)
        assert (verdict.error is None) == version.at_least(entry.since), (entry.key, str(version))


@no_db
@given(version=supported_versions)
def test_every_setting_8_removed_is_refused_by_every_8_and_accepted_with_a_warning_by_every_7(
    version: EsVersion,
) -> None:
    for entry in REMOVED:
        key = entry.key.replace("*", "my_name") + ("some_setting" if entry.key.endswith(".") else "")
        verdict = check_setting_at(key, version)
        if entry.removed_in <= version.major:
            assert verdict.error is not None and f"[{key}]" in verdict.error, key
        else:
            assert verdict.error is None and verdict.warning is not None and "deprecated" in verdict.warning, key


def test_an_unknown_minor_checks_the_major_only() -> None:
    assert check_setting_at("ingest.geoip.downloader.enabled", EsVersion(7)).error is None
    assert check_setting_at("cluster.routing.allocation.disk.watermark.low.max_headroom", EsVersion(8)).error is None
    assert check_setting_at("node.master", EsVersion(8)).error is not None


@pytest.mark.parametrize(
    ("pattern", "key", "matches"),
    [
        ("xpack.monitoring.exporters.*.use_ingest", "xpack.monitoring.exporters.a-1.use_ingest", True),
        ("xpack.monitoring.exporters.*.use_ingest", "xpack.monitoring.exporters.a.b.use_ingest", False),
        ("xpack.monitoring.exporters.*.use_ingest", "xpack.monitoring.exporters.use_ingest", False),
        ("discovery.zen.", "discovery.zen.fd.ping_timeout", True),
        ("discovery.zen.", "discovery.zen", False),
        ("discovery.zen.", "discovery.zenith.x", False),
        ("transport.profiles.*.tcp_no_delay", "transport.profiles.client.tcp_no_delay", True),
        ("processors", "node.processors", False),
        ("http.enabled", "http_enabled", False),
    ],
)
def test_patterns(pattern: str, key: str, matches: bool) -> None:
    assert pattern_matches(pattern, key) is matches


def test_the_catalog_of_a_major_is_unchanged_by_the_minor_rules() -> None:
    assert check_setting("cluster.routing.allocation.disk.watermark.low.max_headroom", 8).error is None
    assert check_setting("processors", 7).error is None and check_setting("processors", 8).error is not None


def test_validating_for_a_version_is_stricter_than_for_its_major() -> None:
    settings = {"cluster.max_shards_per_node.frozen": "3000", "xpack.monitoring.exporters.x.use_ingest": "false"}
    assert validate_user_settings(settings, 7).errors == ()
    old = validate_user_settings(settings, EsVersion(7, 12, 1))
    assert len(old.errors) == 1 and "[cluster.max_shards_per_node.frozen]" in old.errors[0]
    assert any("use_ingest" in w and "deprecated" in w for w in old.warnings)
    eight = validate_user_settings(settings, EsVersion(8, 15, 1))
    assert len(eight.errors) == 1 and "[xpack.monitoring.exporters.x.use_ingest]" in eight.errors[0]
    unknown = validate_user_settings(settings, None)
    assert unknown.errors == () and any("Elasticsearch 8 would refuse" in w for w in unknown.warnings)


# ---------------------------------------------------------------------- confirmed by the nodes

TARGET = TargetVersion(EsVersion(8, 15, 1), "--elasticsearchVersion")


def test_a_node_running_another_version_is_news_once() -> None:
    news = version_news("8.15.3", None, TARGET)
    assert news is not None and "8.15.3" in news and "8.15.1 (from --elasticsearchVersion)" in news
    assert version_news("8.15.3", "8.15.3", TARGET) is None  # already said for this task
    assert version_news("8.15.1", None, TARGET) is None
    assert version_news("8.15.1", None, TargetVersion(EsVersion(8, 15), "x")) is None
    assert version_news("7.17.24", None, TargetVersion(None, "x")) is None  # unknown target: nothing to compare
    assert version_news(None, None, TARGET) is None
    assert "not a version" in (version_news("banana", None, TARGET) or "")
