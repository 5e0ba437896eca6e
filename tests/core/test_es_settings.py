"""es_settings: the node's settings per major, the user's settings (owned, validated, read), and the YAML."""

from __future__ import annotations

import pytest
import yaml

from es_framework.core.es_catalog import check_setting
from es_framework.core.es_settings import (
    FRAMEWORK_OWNED,
    NodeConfig,
    Security,
    SettingsFileError,
    SettingValue,
    UserValue,
    build_settings,
    is_framework_owned,
    read_settings_yaml,
    render_yaml,
    split_user_settings,
    validate_user_settings,
)


def config(**changes: object) -> NodeConfig:
    base: dict[str, object] = {
        "cluster_name": "mesos-ha",
        "node_name": "elasticsearch2",
        "roles": ("master", "data"),
        "network_host": "0.0.0.0",
        "publish_host": "agent2.example.com",
        "http_port": 31000,
        "transport_port": 31001,
        "data_path": "/usr/share/elasticsearch/data",
        "initial_master_nodes": ("elasticsearch1", "elasticsearch2", "elasticsearch3"),
    }
    base.update(changes)
    return NodeConfig(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("major", [7, 8])
@pytest.mark.parametrize("security", [Security(enabled=False), Security(enabled=True)])
def test_every_generated_setting_is_in_the_catalog_of_its_major(major: int, security: Security) -> None:
    generated = build_settings(config(security=security), major)
    for key in generated.settings:
        verdict = check_setting(key, major)
        assert verdict.error is None and verdict.warning is None, key


def test_identity_roles_ports_and_bootstrap_in_a_fixed_order() -> None:
    settings = build_settings(config(), 8).settings
    assert list(settings)[:10] == [
        "cluster.name",
        "node.name",
        "node.roles",
        "network.host",
        "network.publish_host",
        "http.port",
        "transport.port",
        "path.data",
        "discovery.seed_providers",
        "cluster.initial_master_nodes",
    ]
    assert settings["node.roles"] == ["master", "data"]
    assert settings["http.port"] == 31000
    assert settings["cluster.initial_master_nodes"] == ["elasticsearch1", "elasticsearch2", "elasticsearch3"]


def test_no_roles_and_no_initial_masters_leave_those_settings_out() -> None:
    settings = build_settings(config(roles=None, initial_master_nodes=()), 7).settings
    assert "node.roles" not in settings and "cluster.initial_master_nodes" not in settings
    assert build_settings(config(roles=()), 8).settings["node.roles"] == []


def test_a_data_only_node_never_gets_initial_masters() -> None:
    generated = build_settings(config(roles=("data",)), 8)
    assert "cluster.initial_master_nodes" not in generated.settings
    assert any("not master-eligible" in w for w in generated.warnings)


def test_security_disabled_is_written_and_warned_about() -> None:
    generated = build_settings(config(), 8)
    assert generated.settings["xpack.security.enabled"] is False
    assert not any(k.startswith("xpack.security.transport") for k in generated.settings)
    assert any("security is disabled" in w and "open" in w for w in generated.warnings)


def test_security_enabled_configures_transport_tls_and_keeps_http_plain() -> None:
    generated = build_settings(config(security=Security(enabled=True)), 8)
    settings = generated.settings
    assert settings["xpack.security.enabled"] is True
    assert settings["xpack.security.transport.ssl.enabled"] is True
    assert settings["xpack.security.transport.ssl.verification_mode"] == "certificate"
    assert settings["xpack.security.transport.ssl.keystore.path"] == "certs/elastic-certificates.p12"
    assert settings["xpack.security.transport.ssl.truststore.path"] == "certs/elastic-certificates.p12"
    assert settings["xpack.security.http.ssl.enabled"] is False
    assert not any("security is disabled" in w for w in generated.warnings)


def test_framework_owned_settings_win_with_one_warning_each() -> None:
    user: dict[str, UserValue] = {
        "cluster.name": "theirs",
        "network.host": "_site_",
        "discovery.seed_hosts": ["a:9300"],
        "http.publish_port": "80",
        "node.master": "false",
        "xpack.security.enabled": "true",
        "xpack.security.transport.ssl.verification_mode": "none",
        "indices.memory.index_buffer_size": "20%",
        "xpack.security.audit.enabled": "true",
        "path.repo": ["/snapshots"],
    }
    generated = build_settings(config(user_settings=user), 8)
    assert generated.settings["cluster.name"] == "mesos-ha"
    assert generated.settings["network.host"] == "0.0.0.0"
    assert generated.settings["xpack.security.enabled"] is False
    assert "discovery.seed_hosts" not in generated.settings and "http.publish_port" not in generated.settings
    assert generated.settings["indices.memory.index_buffer_size"] == "20%"
    assert generated.settings["path.repo"] == ["/snapshots"]
    assert generated.settings["xpack.security.audit.enabled"] == "true"
    overridden = [w for w in generated.warnings if w.startswith("ignoring")]
    assert len(overridden) == 7
    kept, warnings = split_user_settings(user)
    assert set(kept) == {"indices.memory.index_buffer_size", "xpack.security.audit.enabled", "path.repo"}
    assert warnings == tuple(overridden)
    # User settings come after es-mesos' own, sorted.
    assert list(generated.settings)[-3:] == sorted(kept)


def test_framework_owned_as_data() -> None:
    assert "cluster.name" in FRAMEWORK_OWNED and "discovery.*" in FRAMEWORK_OWNED
    for key in ("node.name", "path.data", "transport.port", "network.bind_host", "transport.publish_host"):
        assert is_framework_owned(key), key
    for key in ("path.repo", "node.attr.zone", "xpack.security.authc.realms.native.n.order", "http.cors.enabled"):
        assert not is_framework_owned(key), key


def test_user_settings_checked_for_a_known_major() -> None:
    eight = validate_user_settings({"node.master": "true", "discovery.zen.minimum_master_nodes": "2"}, 8)
    assert not eight.ok
    assert any("[node.master] was removed in Elasticsearch 8; use node.roles" in e for e in eight.errors)
    assert any("discovery.zen.minimum_master_nodes" in e for e in eight.errors)
    seven = validate_user_settings({"node.master": "true"}, 7)
    assert seven.ok and any("deprecated in Elasticsearch 7" in w for w in seven.warnings)


def test_user_settings_with_the_major_unknown_fail_only_when_every_major_refuses() -> None:
    result = validate_user_settings(
        {"node.data": "true", "index.number_of_shards": "3", "http.enabled": "true", "typo.setting": "x"}, None
    )
    assert len(result.errors) == 2
    assert any("index.number_of_shards" in e for e in result.errors)
    assert any("http.enabled" in e for e in result.errors)
    assert any(w.startswith("Elasticsearch 8 would refuse to start: [node.data]") for w in result.warnings)
    unknown = [w for w in result.warnings if "typo.setting" in w]
    assert unknown == [
        "[typo.setting] is not in es-mesos' catalog of Elasticsearch 7 or 8 settings; Elasticsearch refuses to "
        "start with a setting it does not know (unless a plugin registers it)"
    ]
    assert validate_user_settings({"indices.memory.index_buffer_size": "20%"}, None) == validate_user_settings({}, 8)


# ---------------------------------------------------------------------- reading YAML


def test_nested_and_dotted_keys_flatten_and_scalars_keep_their_text() -> None:
    text = """
cluster:
  routing:
    allocation.awareness.attributes: zone
indices.memory.index_buffer_size: 20%
bootstrap.memory_lock: yes
thread_pool.write.queue_size: 1000
x.ratio: 1.50
x.quoted: "on"
x.list: [a, 1, true]
x.block:
  - one
  - 2
x.unset: ~
logger.org.elasticsearch: debug
logger.org.elasticsearch.transport: trace
"""
    assert read_settings_yaml(text) == {
        "cluster.routing.allocation.awareness.attributes": "zone",
        "indices.memory.index_buffer_size": "20%",
        "bootstrap.memory_lock": "yes",
        "thread_pool.write.queue_size": "1000",
        "x.ratio": "1.50",
        "x.quoted": "on",
        "x.list": ["a", "1", "true"],
        "x.block": ["one", "2"],
        "logger.org.elasticsearch": "debug",
        "logger.org.elasticsearch.transport": "trace",
    }


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n", "~\n"])
def test_empty_files_hold_no_settings(text: str) -> None:
    assert read_settings_yaml(text) == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a.b: 1\na:\n  b: 2\n", "duplicate setting [a.b]"),
        ("a.b: 1\na.b: 2\n", "duplicate setting [a.b]"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("a.b: [{c: 1}]\n", "may only list plain values"),
        ("a: [b\n", "not valid YAML"),
        ("a: 1\n---\nb: 2\n", "2 YAML documents"),
        ("? [a, b]\n: c\n", "plain text"),
    ],
)
def test_files_elasticsearch_would_refuse(text: str, message: str) -> None:
    with pytest.raises(SettingsFileError, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_settings_yaml(text, "user.yml")


# ---------------------------------------------------------------------- writing YAML


def test_rendered_yaml_reads_back_as_the_intended_types() -> None:
    settings: dict[str, SettingValue] = {
        "a.yes": "yes",
        "a.on": "on",
        "a.no": "No",
        "a.null": "null",
        "a.tilde": "~",
        "a.any": "0.0.0.0",
        "a.port_text": "9200",
        "a.float_text": "1.0",
        "a.empty": "",
        "a.hash": "x # not a comment",
        "a.colon": "key: value",
        "a.quotes": "say \"hi\" and 'bye'\\",
        "a.newline": "two\nlines\ttab",
        "a.control": "\x00\x07\x85\u2028",
        "a.unicode": "é💡",
        "a.port": 9200,
        "a.flag": True,
        "a.off": False,
        "a.list": ["yes", "0.0.0.0", "9300"],
        "a.empty_list": [],
        "plain": "top-level key",
        "1.5": "numeric-looking key",
    }
    text = render_yaml(settings, ("header line",))
    assert text.startswith("# header line\n")
    assert yaml.safe_load(text) == settings
    assert read_settings_yaml(text)["a.yes"] == "yes"
    assert render_yaml(settings) == render_yaml(dict(settings))


@pytest.mark.parametrize("major", [7, 8])
def test_a_whole_node_file_round_trips(major: int) -> None:
    generated = build_settings(config(user_settings={"node.attr.zone": "on", "path.repo": ["/a", "/b"]}), major)
    assert yaml.safe_load(render_yaml(generated.settings)) == generated.settings


def test_unsupported_major_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        build_settings(config(), 6)
