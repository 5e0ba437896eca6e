"""Storage profiles: what a volume of each role is created with, per volume driver.

A node's two volumes each get the profile ``--volumeProfile`` names for their role (``default`` when
none), looked up in the driver's table (:mod:`es_framework.core.profile_tables`: shipped, or defined in
``--volumeProfileFile``, :mod:`es_framework.core.profile_schema`). The options a volume is created with:

1. the profile's options for that role (its options for both roles, then its role's own);
2. then the explicit ``--externalVolumeOptions`` (data) / ``--externalVolumeConfigOptions`` (config),
   which win on a conflict (the same option, compared as the driver compares names: REX-Ray's are
   case-insensitive and ``type`` is its ``volumetype``). :func:`profile_overrides` lists each such
   override, for the scheduler to log once at start.

A driver whose table reads the profile from the volume name (seed 000's ``name@profile``) receives
``<framework><id>data@<profile>``; ``name@default`` is ``name`` (as the seed says). The node's identity,
the inventory and every other driver keep the bare name (:func:`received_name` is the only place
that adds the suffix).

Everything is checked once at start (:func:`check_profiles`, called by the shell's profile-file
loader): an unknown profile, a non-default profile for a driver without a table, an option value of the
wrong kind, an option a closed driver refuses, a combination the backend refuses (EBS io1 without iops).
After that :func:`volume_specs` cannot fail for the same configuration. A volume keeps the profile and
options it was created with (:mod:`es_framework.core.volumes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from es_framework.config import Config
from es_framework.config.parsers import VOLUME_ROLES
from es_framework.core.profile_tables import (
    DEFAULT_PROFILE,
    SHIPPED,
    DriverTable,
    Profile,
    VolumeProfileError,
    base_driver_name,
    check_value,
    free_form_table,
    kind_text,
    normalised,
    shipped_table_for,
)
from es_framework.core.volumes import Options, VolumeSpec
from identity.naming import volume_names

#: The flag that gives each role's explicit options.
OPTIONS_FLAG = {"config": "--externalVolumeConfigOptions", "data": "--externalVolumeOptions"}


@dataclass(frozen=True)
class Override:
    """An explicit option that replaced the profile's value for the same option."""

    role: str
    profile: str
    key: str
    profile_value: str
    value: str

    @property
    def flag(self) -> str:
        return OPTIONS_FLAG[self.role]

    def message(self) -> str:
        return (
            f"{self.flag} {self.key}={self.value} overrides {self.key}={self.profile_value} of storage profile "
            f"{self.profile!r} for every {self.role} volume"
        )


@dataclass(frozen=True)
class RoleVolume:
    """What every volume of one role is created with."""

    role: str
    profile: str
    options: Options
    overrides: tuple[Override, ...] = ()


@dataclass(frozen=True)
class _Resolution:
    roles: tuple[RoleVolume, ...]
    problems: tuple[str, ...]
    warnings: tuple[str, ...]


def table_for(config: Config) -> DriverTable:
    """The configured driver's table: the profile file's entry for it, else a shipped one, else free-form."""
    driver = config.external_volume_driver or ""
    wanted = base_driver_name(driver).lower()
    for name, table in config.volume_profiles.items():
        if isinstance(table, DriverTable) and base_driver_name(name).lower() == wanted:
            return table
    return shipped_table_for(driver) or free_form_table(driver)


def profile_name(config: Config, role: str) -> str:
    return dict(config.volume_profile).get(role, DEFAULT_PROFILE)


def explicit_options(config: Config, role: str) -> Options:
    return config.external_volume_config_options if role == "config" else config.external_volume_options


def resolve_role(table: DriverTable, profile: Profile, role: str, explicit: Options) -> RoleVolume:
    """The profile's options for ``role``, then ``explicit`` (winning on the same option)."""
    given = {table.canonical(k): (k, v) for k, v in explicit}
    kept: list[tuple[str, str]] = []
    overrides: list[Override] = []
    for key, value in profile.options_for(role):
        hit = given.get(table.canonical(key))
        if hit is None:
            kept.append((key, value))
        elif hit[1] != value:
            overrides.append(Override(role, profile.name, hit[0], value, hit[1]))
    return RoleVolume(role, profile.name, (*kept, *normalised(table, explicit)), tuple(overrides))


def _explicit_problems(table: DriverTable, role: str, explicit: Options) -> tuple[list[str], list[str]]:
    problems: list[str] = []
    warnings: list[str] = []
    flag = OPTIONS_FLAG[role]
    seen: dict[str, str] = {}
    listed = ", ".join(sorted(table.kinds or ()))
    for key, value in explicit:
        canonical = table.canonical(key)
        if canonical in seen:
            problems.append(f"{flag}: {seen[canonical]} and {key} are one option to {table.name}; give it once")
        seen[canonical] = key
        kind = table.kind_of(key)
        if kind is None:
            if table.closed:
                problems.append(f"{flag} {key}={value}: {table.name} refuses options it does not take ({listed})")
            else:
                warnings.append(
                    f"{flag} {key}={value}: not an option {table.name}'s profile table lists ({listed}); "
                    "passed to the driver unchecked"
                )
            continue
        try:
            check_value(kind, value)
        except ValueError as exc:
            problems.append(f"{flag} {key}={value}: {exc} ({table.name} takes {kind_text(kind)} for {key})")
        note = table.notes.get(canonical)
        if note:
            warnings.append(f"{flag} {key}={value}: {note}")
    return problems, warnings


def _resolve(config: Config) -> _Resolution:
    table = table_for(config)
    roles: list[RoleVolume] = []
    problems: list[str] = []
    warnings: list[str] = []
    for role in VOLUME_ROLES:
        name = profile_name(config, role)
        explicit = explicit_options(config, role)
        profile = table.profiles.get(name)
        if profile is None:
            known = ", ".join(table.profiles)
            if table.source == "free-form":
                problems.append(
                    f"--volumeProfile {role}={name}: driver {table.name!r} has no profile table, so it has only "
                    f"'default' (no options); define {name!r} for it in --volumeProfileFile"
                )
            else:
                problems.append(
                    f"--volumeProfile {role}={name}: {table.name} has no profile {name!r} (its profiles: {known}); "
                    "define it in --volumeProfileFile"
                )
            continue
        role_problems, role_warnings = _explicit_problems(table, role, explicit)
        problems.extend(role_problems)
        warnings.extend(role_warnings)
        if role_problems:
            continue
        resolved = resolve_role(table, profile, role, explicit)
        if table.check is not None:
            final = {table.canonical(k): v for k, v in resolved.options}
            shown = ",".join(f"{k}={v}" for k, v in resolved.options)
            problems.extend(
                f"the {role} volume (--volumeProfile {role}={name}, options {shown}): {p}" for p in table.check(final)
            )
        roles.append(resolved)
    return _Resolution(tuple(roles), tuple(problems), tuple(warnings))


def check_profiles(config: Config) -> tuple[str, ...]:
    """Check the storage profiles of ``config`` (external strategy); return its warnings.

    Raises :class:`VolumeProfileError` listing every problem. Without a volume driver there is nothing
    to check (the flags' own rules refuse profiles without one).
    """
    if not config.external_volume_driver:
        return ()
    resolution = _resolve(config)
    if resolution.problems:
        raise VolumeProfileError(resolution.problems)
    return resolution.warnings


def role_volumes(config: Config) -> tuple[RoleVolume, RoleVolume]:
    """The config and data volume's profile and options. Raises :class:`VolumeProfileError` for a
    configuration :func:`check_profiles` refuses."""
    if not config.external_volume_driver:
        return (
            RoleVolume("config", profile_name(config, "config"), config.external_volume_config_options),
            RoleVolume("data", profile_name(config, "data"), config.external_volume_options),
        )
    resolution = _resolve(config)
    if resolution.problems:
        raise VolumeProfileError(resolution.problems)
    config_role, data_role = resolution.roles
    return config_role, data_role


def profile_overrides(config: Config) -> tuple[Override, ...]:
    """Every explicit option that overrides a profile's value (log each once at start)."""
    if not config.external_volume_driver:
        return ()
    return tuple(o for role in role_volumes(config) for o in role.overrides)


def volume_specs(config: Config, node_id: int) -> tuple[VolumeSpec, VolumeSpec]:
    """The config and data volume of node ``node_id`` as the driver is asked for them (bare names)."""
    config_name, data_name = volume_names(config.framework_name, node_id)
    config_role, data_role = role_volumes(config)
    return (
        VolumeSpec(config_name, "config", config_role.profile, config_role.options),
        VolumeSpec(data_name, "data", data_role.profile, data_role.options),
    )


def received_name(config: Config, spec: VolumeSpec) -> str:
    """The name the driver receives for ``spec``: ``name@profile`` for a driver that reads the profile
    from the name (never ``@default``: ``name@default`` is ``name``), the bare name otherwise."""
    if spec.profile != DEFAULT_PROFILE and table_for(config).profile_in_name:
        return f"{spec.name}@{spec.profile}"
    return spec.name


def volumes_are_zonal(config: Config) -> bool:
    """Whether the driver's volumes can only be attached in the zone they were created in."""
    return bool(config.external_volume_driver) and table_for(config).zonal


def _known_tables(config: Config) -> list[DriverTable]:
    tables: dict[str, DriverTable] = dict(SHIPPED)
    for table in config.volume_profiles.values():
        if isinstance(table, DriverTable):
            tables[table.name] = table
    if config.external_volume_driver:
        in_use = table_for(config)
        tables.setdefault(in_use.name, in_use)
    return list(tables.values())


def profile_catalog(config: Config) -> list[dict[str, Any]]:
    """What ``GET /v1/profiles`` lists: every profile and what it means per driver (seed 000: "the
    details made available to schedulers upon request").

    One entry per profile name, ``default`` first, then by name::

        {"name": "gold",
         "selected_for": ["data"],          # roles the configuration gives this profile (in-use driver)
         "drivers": {
            "rexray": {"description": "...", "source": "shipped" | "file",
                       "in_use": true,      # the configured --externalVolumeDriver's table
                       "zonal": true, "scope": "global", "profile_in_name": false,
                       "options": {"config": {"size": "4", ...}, "data": {...}},   # the profile's own
                       "effective": {"data": {...}}}}}   # in-use and selected roles only: with the
                                                         # explicit options applied, as volumes get them
    """
    in_use = table_for(config).name if config.external_volume_driver else None
    selected = {role: profile_name(config, role) for role in VOLUME_ROLES} if in_use else {}
    effective: dict[str, Options] = {}
    if in_use:
        try:
            effective = {r.role: r.options for r in role_volumes(config)}
        except VolumeProfileError:
            effective = {}
    entries: dict[str, dict[str, Any]] = {}
    for table in _known_tables(config):
        for profile in table.profiles.values():
            entry = entries.setdefault(profile.name, {"name": profile.name, "selected_for": [], "drivers": {}})
            driver: dict[str, Any] = {
                "description": profile.description,
                "source": profile.source,
                "in_use": table.name == in_use,
                "zonal": table.zonal,
                "scope": table.scope,
                "profile_in_name": table.profile_in_name,
                "options": {role: dict(profile.options_for(role)) for role in VOLUME_ROLES},
            }
            if table.name == in_use:
                roles = [role for role in VOLUME_ROLES if selected.get(role) == profile.name]
                entry["selected_for"] = roles
                if roles and effective:
                    driver["effective"] = {role: dict(effective[role]) for role in roles}
            entry["drivers"][table.name] = driver
    ordered = sorted(entries.values(), key=lambda e: (e["name"] != DEFAULT_PROFILE, e["name"]))
    return ordered
