"""The catalogs of Elasticsearch 7/8 node settings: what each major accepts, refuses, and deprecates."""

from __future__ import annotations

import pytest

from es_framework.core.es_catalog import CATALOGS, GENERATED_SETTINGS, REMOVED, SUPPORTED_MAJORS, check_setting, removal


@pytest.mark.parametrize("major", SUPPORTED_MAJORS)
def test_every_setting_es_mesos_writes_is_valid_without_warning(major: int) -> None:
    for key in GENERATED_SETTINGS:
        assert check_setting(key, major) == check_setting(key, major).__class__(), key


@pytest.mark.parametrize(
    ("key", "replacement"),
    [
        ("node.master", "node.roles"),
        ("node.data", "node.roles"),
        ("discovery.zen.ping.unicast.hosts", "discovery.seed_hosts"),
        ("discovery.zen.minimum_master_nodes", "voting masters"),
        ("discovery.zen.fd.ping_timeout", "discovery.*"),
        ("transport.tcp.port", "transport.port"),
        ("gateway.recover_after_nodes", "gateway.recover_after_data_nodes"),
    ],
)
def test_settings_removed_in_8_are_errors_for_8_and_deprecations_for_7(key: str, replacement: str) -> None:
    eight = check_setting(key, 8)
    assert eight.error is not None and "removed in Elasticsearch 8" in eight.error and replacement in eight.error
    seven = check_setting(key, 7)
    assert seven.error is None
    assert seven.warning is not None and "deprecated in Elasticsearch 7" in seven.warning


@pytest.mark.parametrize("major", SUPPORTED_MAJORS)
def test_settings_removed_before_7_and_index_settings_are_errors_everywhere(major: int) -> None:
    assert "removed in Elasticsearch 7" in (check_setting("http.enabled", major).error or "")
    index = check_setting("index.number_of_replicas", major).error
    assert index is not None and "index template" in index


@pytest.mark.parametrize("major", SUPPORTED_MAJORS)
def test_security_and_common_settings_are_valid_in_both(major: int) -> None:
    for key in (
        "xpack.security.authc.realms.native.native1.order",
        "xpack.security.audit.enabled",
        "indices.memory.index_buffer_size",
        "node.attr.zone",
        "cluster.routing.allocation.awareness.attributes",
        "path.repo",
    ):
        verdict = check_setting(key, major)
        assert verdict.error is None and verdict.warning is None, key


def test_unknown_settings_are_warnings_not_errors() -> None:
    verdict = check_setting("indicse.memory.index_buffer_size", 8)
    assert verdict.error is None and verdict.unknown
    assert "not in es-mesos' catalog of Elasticsearch 8" in (verdict.warning or "")


def test_exact_removals_win_over_their_prefix_and_unsupported_majors_raise() -> None:
    entry = removal("discovery.zen.ping.unicast.hosts")
    assert entry is not None and entry.replacement == "discovery.seed_hosts"
    assert removal("discovery.seed_hosts") is None
    assert all(entry.removed_in in (7, 8) for entry in REMOVED)
    assert set(CATALOGS) == set(SUPPORTED_MAJORS)
    with pytest.raises(ValueError, match="unsupported"):
        check_setting("cluster.name", 6)
