"""The operator's own ``elasticsearch.yml`` (``--elasticsearchSettingsLocation``), read once at start.

The scheduler fetches it (a path, ``file://`` or ``http(s)://``), parses it the way Elasticsearch
does (:func:`es_framework.core.es_settings.read_settings_yaml`), refuses it when a setting is invalid
for the target version (``--elasticsearchVersion``, else the image's tag or the distribution's name;
:attr:`es_framework.config.Config.target_version`) or, with no target known, for every supported
Elasticsearch major, warns for the rest, and drops — with one warning each —
the settings the framework owns (identity, roles, paths, ports, discovery, bootstrap, security).
What is left reaches every executor as ``ELASTICSEARCH_USER_SETTINGS`` (JSON), so a bad file stops
the scheduler at start instead of every node at launch.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

import requests

from es_framework.config import Config
from es_framework.config.versions import TargetVersion
from es_framework.core.es_settings import (
    SettingsFileError,
    UserValue,
    read_settings_yaml,
    split_user_settings,
    validate_user_settings,
)

#: A settings file larger than this is refused (it travels in every TaskInfo's environment).
MAX_BYTES = 64 * 1024
FETCH_TIMEOUT_S = 10.0


class UserSettingsError(Exception):
    """The settings file cannot be used; nothing was started."""


@dataclass(frozen=True)
class UserSettings:
    values: Mapping[str, UserValue] = field(default_factory=lambda: MappingProxyType({}))
    warnings: tuple[str, ...] = ()


def fetch(location: str) -> str:
    """The file's text, from a path, ``file://`` or ``http(s)://`` URL."""
    parts = urllib.parse.urlsplit(location)
    try:
        if parts.scheme in ("http", "https"):
            response = requests.get(location, timeout=FETCH_TIMEOUT_S)
            if response.status_code != 200:
                raise UserSettingsError(f"--elasticsearchSettingsLocation: HTTP {response.status_code} from the URL")
            raw = response.content
        else:
            path = Path(urllib.parse.unquote(parts.path) if parts.scheme == "file" else location)
            raw = path.read_bytes()
    except requests.RequestException as error:
        raise UserSettingsError(f"--elasticsearchSettingsLocation: cannot fetch it: {error}") from error
    except OSError as error:
        raise UserSettingsError(f"--elasticsearchSettingsLocation: cannot read it: {error.strerror}") from error
    if len(raw) > MAX_BYTES:
        raise UserSettingsError(f"--elasticsearchSettingsLocation: {len(raw)} bytes is over the {MAX_BYTES} limit")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UserSettingsError("--elasticsearchSettingsLocation: not a UTF-8 text file") from None


def parse(text: str, source: str, target: TargetVersion | None = None) -> UserSettings:
    """Pure: parse, validate (for the target version when it is known, else for every supported
    major) and split. Raises :class:`UserSettingsError` listing every problem."""
    try:
        values = read_settings_yaml(text, source)
    except SettingsFileError as error:
        raise UserSettingsError(str(error)) from error
    version = target.version if target is not None else None
    validation = validate_user_settings(values, version)
    if not validation.ok:
        refused_by = "" if version is None or target is None else f"refused by Elasticsearch {target}: "
        raise UserSettingsError(f"{source}: {refused_by}" + "; ".join(validation.errors))
    kept, dropped = split_user_settings(values)
    return UserSettings(MappingProxyType(kept), (*validation.warnings, *dropped))


def load(config: Config) -> Config:
    """The configuration with the operator's settings loaded (unchanged without a location)."""
    if not config.settings_location:
        return config
    settings = parse(fetch(config.settings_location), config.settings_location, config.target_version)
    return replace(config, user_settings=settings.values, warnings=(*config.warnings, *settings.warnings))
