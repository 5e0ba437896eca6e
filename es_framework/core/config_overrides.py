"""The operator's runtime configuration changes, as the state keeps them (data and JSON; pure).

``PUT /v1/cluster/configuration`` (:mod:`es_framework.core.config_change`) changes flags of a running
scheduler. The change must outlive the scheduler: a new leader started with the old flags would
otherwise roll the cluster back. So each changed flag is stored in the cluster state with the text its
parser reads (as on the command line) and the flag's value it was made over (the value at the
scheduler's start), and every leader applies the stored overrides to its own flags
(:func:`es_framework.core.config_change.at_start`).

Stored in the state document as ``config_overrides``::

    {"flags": {"elasticsearchRam": {"value": "4096", "over": 2048.0, "at": 1765130000.0}},
     "user_settings": null}

``user_settings`` is the operator's ``elasticsearch.yml`` as read when ``--elasticsearchSettingsLocation``
was changed (null when it was not): a new leader starts from what was checked, not from a file that
may have changed since. A document written before overrides existed has none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class Override:
    """One flag changed through the API."""

    #: The text the flag's parser reads, exactly as on the command line.
    value: str
    #: The flag's value (its JSON form, :func:`es_framework.core.config_change.flag_value`) at the
    #: scheduler's start when the override was made: a later start with another value drops it.
    over: Any
    #: When it was made (Unix seconds).
    at: float


@dataclass(frozen=True)
class ConfigOverrides:
    """Every flag changed through the API, by flag name, and the settings file read for it."""

    flags: Mapping[str, Override] = field(default_factory=lambda: MappingProxyType({}))
    #: The user settings read from an overridden ``--elasticsearchSettingsLocation``; None when that
    #: flag is not overridden.
    user_settings: Mapping[str, str | list[str]] | None = None

    @property
    def empty(self) -> bool:
        return not self.flags


NO_OVERRIDES = ConfigOverrides()


def overrides_to_json(overrides: ConfigOverrides) -> dict[str, Any]:
    return {
        "flags": {name: {"value": o.value, "over": o.over, "at": o.at} for name, o in sorted(overrides.flags.items())},
        "user_settings": dict(overrides.user_settings) if overrides.user_settings is not None else None,
    }


def overrides_from_json(raw: object) -> ConfigOverrides:
    """The stored overrides (absent or null: none). Raises :class:`ValueError` saying what is wrong."""
    if raw is None:
        return NO_OVERRIDES
    if not isinstance(raw, Mapping):
        raise ValueError("config_overrides must be an object")
    flags = raw.get("flags") or {}
    if not isinstance(flags, Mapping):
        raise ValueError("config_overrides.flags must be an object")
    out: dict[str, Override] = {}
    for name, entry in flags.items():
        value = entry.get("value") if isinstance(entry, Mapping) else None
        at = entry.get("at") if isinstance(entry, Mapping) else None
        if not isinstance(value, str) or not isinstance(at, (int, float)) or isinstance(at, bool):
            raise ValueError(f"config_overrides.flags.{name} needs a text value and a time")
        out[str(name)] = Override(value, entry.get("over"), float(at))
    settings = raw.get("user_settings")
    if settings is not None and (
        not isinstance(settings, Mapping)
        or not all(
            isinstance(v, str) or (isinstance(v, list) and all(isinstance(i, str) for i in v))
            for v in settings.values()
        )
    ):
        raise ValueError("config_overrides.user_settings must be an object of texts or lists of texts, or null")
    return ConfigOverrides(
        MappingProxyType(out),
        MappingProxyType({str(k): v for k, v in settings.items()}) if settings is not None else None,
    )
