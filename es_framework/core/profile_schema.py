"""The ``--volumeProfileFile`` document (already parsed from YAML or JSON) turned into profile tables.

The format::

    drivers:                       # one entry per volume driver
      rexray:                      # a shipped table's name (rexray, rexray/ebs, scaleio, local, ...):
        profiles:                  #   its profiles are added; one of the same name is replaced
          platinum:
            description: io1, 10000 IOPS, encrypted
            options: {volumetype: io1, encrypted: true}   # both volume roles
            config: {size: 4, iops: 200}                  # the config volume only
            data: {size: 500, iops: 10000}                # the data volume only (wins over options)
      rexray/ebs:0.11.4:           # another driver name ...
        table: rexray              #   ... that takes what a shipped table says (a plugin alias)
      pxd:                         # any other driver: free-form
        description: Portworx
        options: {repl: int, io_priority: [high, medium, low], encrypted: bool, snap_schedule: text}
        zonal: false               # true: its volumes attach in their zone only
        profile_in_name: false     # true: it reads the profile from the volume name, <name>@<profile>
        closed: false              # true: it refuses options its ``options`` does not list
        profiles:
          gold: {options: {repl: 3, io_priority: high}}

Option kinds: ``int``, ``bool``, ``text`` or a list of the allowed values. A free-form driver without
``options`` takes any option name. Values may be YAML strings, integers or booleans. A shipped table's
kinds and facts (zonal, name@profile) are the driver's and cannot be changed here; its profiles can.
Every problem is reported at once, each with its path in the document.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from es_framework.config.parsers import VOLUME_ROLES
from es_framework.core.profile_tables import (
    OPTION_NAME,
    PROFILE_NAME,
    SHIPPED,
    DriverTable,
    OptionKind,
    Profile,
    VolumeProfileError,
    base_driver_name,
    check_options,
    free_form_table,
    normalised,
    shipped_table_for,
)
from es_framework.core.volumes import Options

_DRIVER_KEYS = frozenset({"table", "description", "options", "zonal", "profile_in_name", "closed", "profiles"})
_SHIPPED_DRIVER_KEYS = frozenset({"table", "profiles"})
_PROFILE_KEYS = frozenset({"description", "options", *VOLUME_ROLES})
_KINDS = ("int", "bool", "text")


def _unknown_keys(value: Mapping[str, Any], allowed: frozenset[str], where: str) -> list[str]:
    return [
        f"{where}.{key}: not a field here (fields: {', '.join(sorted(allowed))})" for key in value if key not in allowed
    ]


def _text(value: Any) -> str | None:
    """A scalar option value as text; None for anything else (a float, a list, null)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    return None


def _options(value: Any, where: str, problems: list[str]) -> Options:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        problems.append(f"{where}: must be a mapping of option name to value")
        return ()
    pairs: list[tuple[str, str]] = []
    for key, raw in value.items():
        text = _text(raw)
        if not isinstance(key, str) or not OPTION_NAME.fullmatch(key):
            problems.append(f"{where}: {key!r} is not an option name (letters, digits, '_', '.', '-')")
        elif text is None:
            problems.append(f"{where}.{key}: {raw!r} is not a string, a whole number or a boolean (quote it)")
        else:
            pairs.append((key, text))
    return tuple(pairs)


def _kinds(value: Any, where: str, problems: list[str]) -> Mapping[str, OptionKind] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        problems.append(f"{where}: must be a mapping of option name to kind (int, bool, text or a list of values)")
        return None
    kinds: dict[str, OptionKind] = {}
    for key, kind in value.items():
        if not isinstance(key, str) or not OPTION_NAME.fullmatch(key):
            problems.append(f"{where}: {key!r} is not an option name")
        elif isinstance(kind, str) and kind in _KINDS:
            kinds[key] = kind  # type: ignore[assignment]  # narrowed by the membership test
        elif isinstance(kind, list) and kind and all(_text(v) is not None for v in kind):
            kinds[key] = tuple(str(_text(v)) for v in kind)
        else:
            problems.append(f"{where}.{key}: {kind!r} is not a kind (int, bool, text or a non-empty list of values)")
    return MappingProxyType(kinds)


def _bool(value: Any, where: str, problems: list[str]) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        problems.append(f"{where}: must be true or false")
        return False
    return value


def _profile(name: Any, value: Any, table: DriverTable, where: str, problems: list[str]) -> Profile | None:
    if not isinstance(name, str) or not PROFILE_NAME.fullmatch(name):
        problems.append(f"{where}: {name!r} is not a profile name (letters, digits, '_', '.', '-')")
        return None
    where = f"{where}.{name}"
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        problems.append(f"{where}: must be a mapping (description, options, config, data)")
        return None
    problems.extend(_unknown_keys(value, _PROFILE_KEYS, where))
    description = value.get("description", "")
    if not isinstance(description, str):
        problems.append(f"{where}.description: must be text")
        description = ""
    parts = {part: _options(value.get(part), f"{where}.{part}", problems) for part in ("options", *VOLUME_ROLES)}
    before = len(problems)
    for part, options in parts.items():
        problems.extend(check_options(table, options, f"{where}.{part}"))
        names: dict[str, str] = {}
        for key, _ in options:
            if table.canonical(key) in names:
                problems.append(
                    f"{where}.{part}: {names[table.canonical(key)]} and {key} are one option to {table.name}"
                )
            names[table.canonical(key)] = key
    if len(problems) > before:
        return None
    # Spelled as the table spells them, so that a role's option replaces the same option for both roles.
    canonical = {
        part: tuple((table.canonical(k), v) for k, v in normalised(table, opts)) for part, opts in parts.items()
    }
    return Profile(name, description, canonical["options"], canonical["config"], canonical["data"], source="file")


def _driver_table(name: str, value: Mapping[str, Any], where: str, problems: list[str]) -> DriverTable | None:
    table_name = value.get("table")
    base: DriverTable | None
    if table_name is not None:
        base = SHIPPED.get(table_name) if isinstance(table_name, str) else None
        if base is None:
            problems.append(f"{where}.table: {table_name!r} is not a shipped table ({', '.join(SHIPPED)})")
            return None
    else:
        base = shipped_table_for(name)
    if base is not None:
        problems.extend(_unknown_keys(value, _SHIPPED_DRIVER_KEYS, f"{where} ({base.name}'s table)"))
        table = base
    else:
        problems.extend(_unknown_keys(value, _DRIVER_KEYS, where))
        description = value.get("description")
        if description is not None and not isinstance(description, str):
            problems.append(f"{where}.description: must be text")
            description = None
        free = free_form_table(name)
        table = DriverTable(
            name=name,
            description=description or free.description,
            kinds=_kinds(value.get("options"), f"{where}.options", problems),
            profiles=free.profiles,
            zonal=_bool(value.get("zonal"), f"{where}.zonal", problems),
            profile_in_name=_bool(value.get("profile_in_name"), f"{where}.profile_in_name", problems),
            closed=_bool(value.get("closed"), f"{where}.closed", problems),
            source="file",
        )
    raw_profiles = value.get("profiles")
    if raw_profiles is None:
        raw_profiles = {}
    if not isinstance(raw_profiles, Mapping):
        problems.append(f"{where}.profiles: must be a mapping of profile name to profile")
        return None
    profiles = [_profile(p, v, table, f"{where}.profiles", problems) for p, v in raw_profiles.items()]
    return table.with_profiles((p for p in profiles if p is not None), name=name)


def tables_from_document(document: Any, source: str) -> Mapping[str, DriverTable]:
    """The tables ``document`` defines, keyed by driver name as written (a ``:tag`` kept).

    Raises :class:`VolumeProfileError` listing every problem, each prefixed with
    ``--volumeProfileFile <source>``.
    """
    problems: list[str] = []
    tables: dict[str, DriverTable] = {}
    if not isinstance(document, Mapping):
        problems.append("the file must be a mapping with a 'drivers' mapping")
    else:
        problems.extend(_unknown_keys(document, frozenset({"drivers"}), "(top level)"))
        drivers = document.get("drivers")
        if not isinstance(drivers, Mapping):
            problems.append("drivers: must be a mapping of volume driver name to its profiles")
            drivers = {}
        keys: dict[str, str] = {}
        for name, value in drivers.items():
            where = f"drivers.{name}"
            if not isinstance(name, str) or not name:
                problems.append(f"{where}: a driver name must be text")
                continue
            if not isinstance(value, Mapping):
                problems.append(f"{where}: must be a mapping (profiles, ...)")
                continue
            # Two spellings of one driver (rexray/ebs and rexray/ebs:latest) would make the answer depend
            # on which one the lookup tries first.
            key = base_driver_name(name).lower()
            if key in keys:
                problems.append(f"{where}: the same driver as drivers.{keys[key]}; define it once")
                continue
            keys[key] = name
            table = _driver_table(name, value, where, problems)
            if table is not None:
                tables[name] = table
    if problems:
        raise VolumeProfileError([f"--volumeProfileFile {source}: {p}" for p in problems])
    return MappingProxyType(tables)
