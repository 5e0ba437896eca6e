"""Settings of the demo Elasticsearch node (development tool, not Elasticsearch).

Configured only the ways Elasticsearch is: ``$ES_PATH_CONF/elasticsearch.yml`` and ``-Ekey=value``
arguments (which win). The YAML reader handles the subset Elasticsearch configs use: nested
mappings (flattened to dotted keys), ``key: value``, flow lists ``[a, b]``, block lists
``- item``, quoted strings and comments. Every setting must be in :data:`KNOWN_SETTINGS` (or
match a known prefix); anything else is rejected the way Elasticsearch 8 rejects it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

SettingValue = str | list[str]

#: Settings the demo node knows (an explicit allow-list, as Elasticsearch's registered settings).
KNOWN_SETTINGS = frozenset(
    {
        "cluster.name",
        "node.name",
        "node.roles",
        "network.host",
        "network.bind_host",
        "network.publish_host",
        "http.port",
        "http.host",
        "http.publish_host",
        "transport.port",
        "transport.host",
        "transport.publish_host",
        "path.data",
        "path.logs",
        "path.repo",
        "discovery.seed_hosts",
        "discovery.seed_providers",
        "discovery.type",
        "cluster.initial_master_nodes",
        "bootstrap.memory_lock",
        "node.store.allow_mmap",
        "xpack.security.enabled",
        # TLS of the transport and HTTP layers (see ssl_config.py); the passwords are secure settings (keystore.py).
        *(
            f"xpack.security.{layer}.ssl.{name}"
            for layer in ("transport", "http")
            for name in (
                "enabled",
                "verification_mode",
                "key",
                "certificate",
                "certificate_authorities",
                "keystore.path",
                "truststore.path",
            )
        ),
        "http.bind_host",
        "http.publish_port",
        "http.max_content_length",
        "http.compression",
        "transport.bind_host",
        "transport.publish_port",
        "transport.compress",
        "transport.ping_schedule",
        "path.home",
        "action.auto_create_index",
        "cluster.max_shards_per_node",
        "search.max_buckets",
        "node.processors",
        "ingest.geoip.downloader.enabled",
        "gateway.recover_after_data_nodes",
        "gateway.expected_data_nodes",
        "gateway.recover_after_time",
        "xpack.ml.enabled",
        "action.destructive_requires_name",
        "cluster.routing.allocation.awareness.attributes",
        # The demo node's own switches (development only).
        "demo.fail_bootstrap_check",
        "demo.shutdown_delay",
        "demo.relocation_delay",
    }
)
KNOWN_PREFIXES = ("node.attr.",)
#: Settings removed in Elasticsearch 7/8 that people still carry over, with what replaced them.
REMOVED_PREFIXES = {
    "discovery.zen.": "discovery.seed_hosts / cluster.initial_master_nodes",
    "node.master": "node.roles",
    "node.data": "node.roles",
    "node.ingest": "node.roles",
    "node.ml": "node.roles",
}
KNOWN_ROLES = frozenset(
    {
        "master",
        "data",
        "data_content",
        "data_hot",
        "data_warm",
        "data_cold",
        "data_frozen",
        "ingest",
        "ml",
        "remote_cluster_client",
        "transform",
        "voting_only",
    }
)
TRUE_VALUES = frozenset({"true"})
FALSE_VALUES = frozenset({"false"})


class SettingsError(Exception):
    """A configuration Elasticsearch would refuse to start with (the message mimics its wording)."""


@dataclass(frozen=True)
class Settings:
    values: dict[str, SettingValue]
    config_dir: Path | None

    def get(self, key: str, default: str = "") -> str:
        value = self.values.get(key)
        if value is None:
            return default
        return ",".join(value) if isinstance(value, list) else value

    def get_list(self, key: str) -> list[str]:
        value = self.values.get(key)
        if value is None:
            return []
        items = value if isinstance(value, list) else value.split(",")
        return [item.strip() for item in items if item.strip()]

    def get_bool(self, key: str, default: bool = False) -> bool:
        raw = self.get(key)
        if not raw:
            return default
        if raw in TRUE_VALUES:
            return True
        if raw in FALSE_VALUES:
            return False
        raise SettingsError(f"Failed to parse value [{raw}] as only [true] or [false] are allowed.")

    def get_port(self, key: str, default: int) -> int:
        raw = self.get(key)
        if not raw:
            return default
        try:
            port = int(raw)
        except ValueError:
            raise SettingsError(f"Failed to parse value [{raw}] for setting [{key}]") from None
        if not 0 <= port <= 65535:
            raise SettingsError(f"Failed to parse value [{raw}] for setting [{key}] must be between 0 and 65535")
        return port


# ---------------------------------------------------------------------- YAML subset


def _scalar(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return str(json.loads(text)) if text[0] == '"' else text[1:-1].replace("''", "'")
    return text


def _strip_comment(line: str) -> str:
    quote: str | None = None
    for index, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1] in " \t"):
            return line[:index]
    return line


def _value(text: str) -> SettingValue:
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].strip()
        return [_scalar(item) for item in inner.split(",")] if inner else []
    return _scalar(text)


def parse_yaml(text: str, source: str = "elasticsearch.yml") -> dict[str, SettingValue]:
    """Flatten the YAML subset Elasticsearch configs use into dotted keys."""
    result: dict[str, SettingValue] = {}
    stack: list[tuple[int, str]] = []  # (indent, dotted prefix) of open mappings
    list_key: str | None = None
    list_indent = -1
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = _strip_comment(raw_line).rstrip()
        if not line.strip() or line.strip() == "---":
            continue
        indent = len(line) - len(line.lstrip(" "))
        if line.startswith("\t"):
            raise SettingsError(f"Failed to load settings from [{source}]: tab in indentation at line {number}")
        body = line.strip()
        if body.startswith("- "):
            if list_key is None or indent < list_indent:
                raise SettingsError(f"Failed to load settings from [{source}]: unexpected list item at line {number}")
            existing = result.setdefault(list_key, [])
            if isinstance(existing, list):
                existing.append(_scalar(body[2:]))
            continue
        list_key = None
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if ":" not in body:
            raise SettingsError(f"Failed to load settings from [{source}]: expected 'key: value' at line {number}")
        key, _, rest = body.partition(":")
        key = _scalar(key)
        full_key = f"{stack[-1][1]}.{key}" if stack else key
        if rest.strip():
            if full_key in result:
                raise SettingsError(f"Failed to load settings from [{source}]: duplicate setting [{full_key}]")
            result[full_key] = _value(rest)
        else:
            stack.append((indent, full_key))
            list_key, list_indent = full_key, indent
    # A key opened as a mapping that only held a list is a list setting; empty mappings vanish.
    return result


# ---------------------------------------------------------------------- loading and validation


def validate(values: dict[str, SettingValue]) -> None:
    """Raise :class:`SettingsError` for the first setting Elasticsearch 8 would refuse."""
    for key in sorted(values):
        if key.startswith("index."):
            raise SettingsError(
                "node settings must not contain any index level settings "
                f"(found [{key}]); use index templates or the index settings API instead"
            )
        for prefix, replacement in REMOVED_PREFIXES.items():
            if key == prefix or key.startswith(prefix):
                raise SettingsError(
                    f"unknown setting [{key}] please check that any required plugins are installed, or check the "
                    f"breaking changes documentation for removed settings (replaced by {replacement})"
                )
        if key not in KNOWN_SETTINGS and not key.startswith(KNOWN_PREFIXES):
            raise SettingsError(
                f"unknown setting [{key}] please check that any required plugins are installed, or check the "
                "breaking changes documentation for removed settings"
            )
    for key in sorted(k for k in values if k.startswith(KNOWN_PREFIXES)):
        _check_node_attribute(key, values[key])
    roles = values.get("node.roles")
    if roles is not None:
        items = roles if isinstance(roles, list) else [r for r in roles.split(",") if r]
        for role in items:
            if role.strip() not in KNOWN_ROLES:
                raise SettingsError(f"unknown role [{role.strip()}]")
    providers = values.get("discovery.seed_providers")
    if providers is not None:
        items = providers if isinstance(providers, list) else providers.split(",")
        for provider in items:
            if provider.strip() not in ("file", "settings", ""):
                raise SettingsError(f"Unknown seed providers [{provider.strip()}]")


def _check_node_attribute(key: str, value: SettingValue) -> None:
    """``node.attr.*`` as Elasticsearch checks it (``Node.NODE_ATTRIBUTES`` in elastic/elasticsearch,
    server/src/main/java/org/elasticsearch/node/Node.java): a single string without leading or
    trailing whitespace; ``node.attr.server_name`` must also be a valid SNI host name (approximated
    here by the DNS host name syntax)."""
    if isinstance(value, list):
        raise SettingsError(f"Found list type value for setting [{key}] but but did not expect a list for it.")
    if value and (value[0].isspace() or value[-1].isspace()):
        raise SettingsError(f"{key} cannot have leading or trailing whitespace [{value}]")
    if value and key == "node.attr.server_name" and not _SNI_HOST.fullmatch(value):
        raise SettingsError(f"invalid node.attr.server_name [{value}]")


_SNI_HOST = re.compile(
    r"(?=.{1,255}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)


def parse_e_arguments(argv: list[str]) -> dict[str, SettingValue]:
    """``-Ekey=value`` / ``-E key=value`` arguments; anything else is refused like Elasticsearch's CLI."""
    result: dict[str, SettingValue] = {}
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "-E" and index + 1 < len(argv):
            arg = "-E" + argv[index + 1]
            index += 1
        if not arg.startswith("-E") or "=" not in arg[2:]:
            raise SettingsError(
                f"Positional arguments not allowed, found [{arg}]"
                if not arg.startswith("-")
                else f"{arg} is not a recognized option"
            )
        key, _, value = arg[2:].partition("=")
        if not key:
            raise SettingsError(f"setting [{arg}] must be of the form -Ekey=value")
        result[key] = _value(value) if value.startswith("[") else value
        index += 1
    return result


def load_settings(argv: list[str], environ: dict[str, str] | None = None) -> Settings:
    """``$ES_PATH_CONF/elasticsearch.yml`` (if ES_PATH_CONF is set) overlaid with ``-E`` arguments."""
    env = dict(os.environ) if environ is None else environ
    values: dict[str, SettingValue] = {}
    config_dir: Path | None = None
    conf = env.get("ES_PATH_CONF")
    if conf:
        config_dir = Path(conf)
        config_file = config_dir / "elasticsearch.yml"
        if not config_dir.is_dir():
            raise SettingsError(f"ES_PATH_CONF [{conf}] is not a directory")
        if config_file.exists():
            values.update(parse_yaml(config_file.read_text(encoding="utf-8"), str(config_file)))
    values.update(parse_e_arguments(argv))
    validate(values)
    return Settings(values, config_dir)
