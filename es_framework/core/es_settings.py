"""A node's ``elasticsearch.yml``: which settings es-mesos writes, which a user may add, and the YAML.

Pure functions, shared by the executor (which writes the file on every start of a node) and the
scheduler (which reads and checks the user's file, ``--elasticsearchSettingsLocation``, once at start):

- :func:`build_settings`: from a :class:`NodeConfig` and the Elasticsearch major version to the
  ordered settings of the node, and the warnings to log;
- :data:`FRAMEWORK_OWNED` / :func:`is_framework_owned` and :func:`split_user_settings`: the settings
  es-mesos decides (identity, roles, paths, network and ports, discovery and bootstrap, the security
  settings it manages); a user's value for one of them is dropped with a warning;
- :func:`validate_user_settings`: the user's settings against the catalogs of
  :mod:`es_framework.core.es_catalog` and, for a known version, the minors of
  :mod:`es_framework.core.es_versions` (errors for what Elasticsearch would refuse, warnings otherwise);
- :func:`read_settings_yaml`: an ``elasticsearch.yml`` flattened to dotted keys the way
  Elasticsearch does it (nested mappings joined with ``.``, scalars kept as the text written, lists
  kept as lists);
- :func:`render_yaml`: deterministic YAML in which every string is quoted, so that values YAML would
  misread (``yes``, ``on``, ``0.0.0.0``, ``"9200"``) come back as the intended type.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import yaml

from es_framework.config.versions import EsVersion
from es_framework.core.es_catalog import SUPPORTED_MAJORS, Verdict, check_setting
from es_framework.core.es_versions import check_setting_at

#: A value es-mesos writes: strings, ports (int), switches (bool) and lists of strings.
SettingValue = str | int | bool | list[str]
#: A value from a user's settings file: Elasticsearch keeps every scalar as the text written.
UserValue = str | list[str]

#: Where the executor puts the certificate bundle, relative to the config directory (Elasticsearch
#: resolves relative keystore paths against it).
CERTIFICATES_IN_CONFIG = "certs/elastic-certificates.p12"
#: ``--elasticsearchSecurity auto``: the node's key, its certificate and the cluster CA's, PEM, relative to
#: the config directory (Elasticsearch resolves relative ``ssl.key``/``certificate``/``certificate_authorities``
#: paths against it: "Transport TLS/SSL settings", "PEM encoded files").
NODE_KEY_IN_CONFIG = "certs/node.key"
NODE_CERTIFICATE_IN_CONFIG = "certs/node.crt"
CA_CERTIFICATE_IN_CONFIG = "certs/ca.crt"

#: Settings es-mesos always decides; exact names.
FRAMEWORK_OWNED_SETTINGS = frozenset(
    {
        "cluster.name",
        "node.name",
        "node.roles",
        # The legacy role switches: Elasticsearch 7 refuses them next to node.roles.
        "node.master",
        "node.data",
        "node.ingest",
        "node.ml",
        "node.transform",
        "node.voting_only",
        "node.remote_cluster_client",
        "path.data",
        "path.home",
        "http.port",
        "transport.port",
        "transport.tcp.port",
        "cluster.initial_master_nodes",
        "xpack.security.enabled",
        "xpack.security.autoconfiguration.enabled",
        "xpack.security.enrollment.enabled",
    }
)
#: Families of settings es-mesos always decides (prefixes).
FRAMEWORK_OWNED_PREFIXES = (
    "network.",
    "http.publish_",
    "transport.publish_",
    "discovery.",
    "xpack.security.transport.ssl.",
    "xpack.security.http.ssl.",
)
#: Both, as data (the README's table of what a user may not set is generated from nothing else).
FRAMEWORK_OWNED = (*sorted(FRAMEWORK_OWNED_SETTINGS), *(p + "*" for p in FRAMEWORK_OWNED_PREFIXES))


def is_framework_owned(key: str) -> bool:
    return key in FRAMEWORK_OWNED_SETTINGS or key.startswith(FRAMEWORK_OWNED_PREFIXES)


# ---------------------------------------------------------------------- the node's configuration


@dataclass(frozen=True)
class Security:
    """``enabled`` needs the certificate bundle (copied to :data:`CERTIFICATES_IN_CONFIG`) and the
    ``elastic`` password (in the keystore, never here). ``pem`` (``--elasticsearchSecurity auto``): the
    node's own PEM key and certificate of the cluster CA instead of a bundle, on the transport and on
    HTTP."""

    enabled: bool = False
    certificates: str = CERTIFICATES_IN_CONFIG
    pem: bool = False


def _pem_security() -> dict[str, SettingValue]:
    """Security with the node's PEM files: mutual TLS on the transport with ``full`` verification (the
    certificate's names must match the peer's address: the node name, the agent host and its IP are in
    it, :mod:`es_framework.core.certificates`), HTTPS with the same certificate. Elasticsearch 8
    reference, "Security settings": ``xpack.security.transport.ssl.*`` and ``xpack.security.http.ssl.*``
    (``key``, ``certificate``, ``certificate_authorities``, ``verification_mode``)."""
    settings: dict[str, SettingValue] = {
        "xpack.security.enabled": True,
        "xpack.security.transport.ssl.enabled": True,
        "xpack.security.transport.ssl.verification_mode": "full",
    }
    for layer in ("transport", "http"):
        settings.update(
            {
                f"xpack.security.{layer}.ssl.key": NODE_KEY_IN_CONFIG,
                f"xpack.security.{layer}.ssl.certificate": NODE_CERTIFICATE_IN_CONFIG,
                f"xpack.security.{layer}.ssl.certificate_authorities": [CA_CERTIFICATE_IN_CONFIG],
            }
        )
    settings["xpack.security.http.ssl.enabled"] = True
    return settings


@dataclass(frozen=True)
class NodeConfig:
    cluster_name: str
    node_name: str
    #: None: leave node.roles unset (Elasticsearch's default, every role).
    roles: tuple[str, ...] | None
    network_host: str
    publish_host: str
    http_port: int
    transport_port: int
    data_path: str
    seed_providers: tuple[str, ...] = ("file",)
    initial_master_nodes: tuple[str, ...] = ()
    security: Security = field(default_factory=Security)
    user_settings: Mapping[str, UserValue] = field(default_factory=dict)


@dataclass(frozen=True)
class GeneratedSettings:
    settings: dict[str, SettingValue]
    warnings: tuple[str, ...]


def split_user_settings(user: Mapping[str, UserValue]) -> tuple[dict[str, UserValue], tuple[str, ...]]:
    """The user's settings es-mesos keeps (sorted by key), and one warning per dropped framework-owned one."""
    kept: dict[str, UserValue] = {}
    warnings: list[str] = []
    for key in sorted(user):
        if is_framework_owned(key):
            warnings.append(f"ignoring [{key}] from the user's settings: es-mesos sets it")
        else:
            kept[key] = user[key]
    return kept, tuple(warnings)


def build_settings(config: NodeConfig, major: int) -> GeneratedSettings:
    """The node's settings in file order (es-mesos' own first, then the user's) and the warnings to log."""
    if major not in SUPPORTED_MAJORS:
        raise ValueError(f"unsupported Elasticsearch major version {major}; supported: {SUPPORTED_MAJORS}")
    settings: dict[str, SettingValue] = {
        "cluster.name": config.cluster_name,
        "node.name": config.node_name,
    }
    if config.roles is not None:
        settings["node.roles"] = list(config.roles)
    settings.update(
        {
            "network.host": config.network_host,
            "network.publish_host": config.publish_host,
            "http.port": config.http_port,
            "transport.port": config.transport_port,
            "path.data": config.data_path,
            "discovery.seed_providers": list(config.seed_providers),
        }
    )
    warnings: list[str] = []
    if config.initial_master_nodes:
        if config.roles is None or "master" in config.roles:
            settings["cluster.initial_master_nodes"] = list(config.initial_master_nodes)
        else:
            # Meaningless on a node that cannot be elected, and Elasticsearch 8 complains about it.
            warnings.append(f"not writing cluster.initial_master_nodes: {config.node_name} is not master-eligible")
    if config.security.enabled and config.security.pem:
        settings.update(_pem_security())
    elif config.security.enabled:
        settings.update(
            {
                "xpack.security.enabled": True,
                "xpack.security.transport.ssl.enabled": True,
                "xpack.security.transport.ssl.verification_mode": "certificate",
                "xpack.security.transport.ssl.keystore.path": config.security.certificates,
                "xpack.security.transport.ssl.truststore.path": config.security.certificates,
                # The bundle holds the transport certificate; HTTP stays plain (clients use the password).
                "xpack.security.http.ssl.enabled": False,
            }
        )
    else:
        settings["xpack.security.enabled"] = False
        warnings.append(
            "security is disabled: the cluster is open to anyone who can reach its ports (no password, no TLS)"
        )
    kept, overridden = split_user_settings(config.user_settings)
    warnings.extend(overridden)
    for key, value in kept.items():
        settings[key] = list(value) if isinstance(value, list) else value
    return GeneratedSettings(settings, tuple(warnings))


# ---------------------------------------------------------------------- checking a user's settings


@dataclass(frozen=True)
class Validation:
    errors: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.errors


def validate_user_settings(settings: Mapping[str, UserValue], target: int | EsVersion | None) -> Validation:
    """Check the user's settings for the target: an Elasticsearch version (its major's rules, and the
    settings newer than it), a major alone (the executor with ``ELASTICSEARCH_VERSION=8``), or nothing
    (the scheduler without a target version): then only a setting refused by every supported major is
    an error."""
    judges: list[tuple[int, Callable[[str], Verdict]]]
    if isinstance(target, EsVersion):
        version = target
        judges = [(version.major, lambda key: check_setting_at(key, version))]
    else:
        majors = SUPPORTED_MAJORS if target is None else (target,)
        judges = [(m, functools.partial(check_setting, major=m)) for m in majors]
    errors: list[str] = []
    warnings: list[str] = []
    for key in sorted(settings):
        verdicts = [(m, judge(key)) for m, judge in judges]
        refused = [(m, v.error) for m, v in verdicts if v.error]
        if len(refused) == len(verdicts):
            # Every major refuses it: one message (the newest major's reason).
            errors.append(refused[-1][1] or "")
            continue
        for m, reason in refused:
            warnings.append(f"Elasticsearch {m} would refuse to start: {reason}")
        unknown = [m for m, v in verdicts if v.unknown]
        if unknown:
            names = " or ".join(str(m) for m in unknown)
            warnings.append(
                f"[{key}] is not in es-mesos' catalog of Elasticsearch {names} settings; Elasticsearch refuses "
                "to start with a setting it does not know (unless a plugin registers it)"
            )
        warnings.extend(v.warning for _, v in verdicts if v.warning and not v.unknown)
    return Validation(tuple(errors), tuple(warnings))


# ---------------------------------------------------------------------- reading a user's elasticsearch.yml


class SettingsFileError(ValueError):
    """The user's settings file is not something Elasticsearch would read."""


def read_settings_yaml(text: str, source: str = "elasticsearch.yml") -> dict[str, UserValue]:
    """Flatten an ``elasticsearch.yml`` the way Elasticsearch does.

    Nested mappings become dotted keys; a scalar keeps the text written (Elasticsearch reads
    ``yes`` as the string ``yes``, ``1.0`` as ``1.0``); lists stay lists of such strings; ``null``
    values are left out (Elasticsearch's default applies). A key given twice, also once nested and
    once dotted, is an error, as in Elasticsearch.
    """
    try:
        documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as error:
        raise SettingsFileError(f"{source}: not valid YAML: {error}") from error
    documents = [d for d in documents if d is not None]
    if not documents:
        return {}
    if len(documents) > 1:
        raise SettingsFileError(f"{source}: holds {len(documents)} YAML documents; Elasticsearch reads one")
    root = documents[0]
    if _is_null(root):
        return {}
    if not isinstance(root, yaml.MappingNode):
        raise SettingsFileError(f"{source}: the top level must be a mapping of settings")
    result: dict[str, UserValue] = {}
    _flatten(root, "", result, source)
    return result


_NULL_TAG = "tag:yaml.org,2002:null"


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG


def _flatten(node: yaml.MappingNode, prefix: str, out: dict[str, UserValue], source: str) -> None:
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
            line = key_node.start_mark.line + 1
            raise SettingsFileError(f"{source}: line {line}: setting names must be plain text")
        key = f"{prefix}{key_node.value}"
        where = f"{source}: line {key_node.start_mark.line + 1}"
        if isinstance(value_node, yaml.MappingNode):
            _flatten(value_node, key + ".", out, source)
            continue
        if key in out:
            raise SettingsFileError(f"{where}: duplicate setting [{key}]")
        if isinstance(value_node, yaml.SequenceNode):
            items: list[str] = []
            for item in value_node.value:
                if not isinstance(item, yaml.ScalarNode) or _is_null(item):
                    raise SettingsFileError(f"{where}: [{key}] may only list plain values")
                items.append(str(item.value))
            out[key] = items
        elif _is_null(value_node):
            continue
        else:
            # "logger.org.elasticsearch" next to "logger.org.elasticsearch.transport" is fine: both are kept.
            out[key] = str(value_node.value)


# ---------------------------------------------------------------------- writing YAML

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*")


def _quote(text: str) -> str:
    """A YAML double-quoted scalar: always read back as exactly ``text``, as a string."""
    out = ['"']
    for char in text:
        if char == '"':
            out.append('\\"')
        elif char == "\\":
            out.append("\\\\")
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char.isprintable():
            out.append(char)
        elif ord(char) <= 0xFF:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    out.append('"')
    return "".join(out)


def _key(key: str) -> str:
    return key if _PLAIN_KEY.fullmatch(key) and "." in key else _quote(key)


def _value(value: SettingValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_quote(str(item)) for item in value) + "]"
    return _quote(value)


def render_yaml(settings: Mapping[str, SettingValue], header: tuple[str, ...] = ()) -> str:
    """One ``key: value`` line per setting, in the mapping's order, after ``header`` as comments."""
    lines = [f"# {line}" for line in header]
    lines.extend(f"{_key(key)}: {_value(value)}" for key, value in settings.items())
    return "\n".join(lines) + "\n"
