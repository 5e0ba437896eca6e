"""The storage-profile tables: per volume driver, which options it takes and what each profile means.

A *profile* (FlockerProfiles, seed 000) is a name for the storage features a volume needs —
``default`` (the application does not care: the cheapest storage, no options), ``gold`` (high IOPS)
— translated per backend into the driver options of ``docker volume create -o``. A *table* says, for
one driver, which option names it takes and their kinds (int, bool, text or one of listed values),
whether its volumes are zonal (EBS: attachable only in their availability zone), whether it reads the
profile from the volume name (the seed's ``name@profile``), and its profiles, each with options for
both volume roles and per role (``config``, ``data``).

Shipped tables, from the drivers' own sources (REX-Ray 0.11, ``rexray/rexray`` at
``362035816046e87f7bc5a6ca745760d09a69a40c``; moby's ``volume/local``):

- ``rexray`` (REX-Ray with EBS; also ``rexray/ebs``): its Docker endpoint
  (``agent/csi/mod_csi_docker_legacy.go``, ``Create``) reads ``size`` (GiB, int64), ``iops`` (int64),
  ``type`` or ``volumetype``, ``availabilityZone``, ``encrypted`` (bool) from the request's options;
  the options store lower-cases keys (``libstorage/api/utils/utils_store.go``), so ``volumeType`` is
  ``volumetype``. The EBS driver passes ``encryptionKey`` as the KMS key
  (``libstorage/drivers/storage/ebs/storage/ebs_storage.go``). Without ``size`` REX-Ray creates its
  configured default, 16 GiB (``libstorage/drivers/integration/linux/linux.go``,
  ``defaultVolumeSize``). EBS: ``iops`` is taken by gp3, io1 and io2 only and required by io1 and io2;
  io1 allows at most 50 IOPS per GiB (EC2 ``CreateVolume``/``EbsBlockDevice`` reference).
- ``scaleio`` (REX-Ray's ScaleIO driver; also ``rexray/scaleio``): ``VolumeCreate``
  (``libstorage/drivers/storage/scaleio/storage/scaleio_storage.go``) takes ``size`` (GiB, at least 1),
  ``volumetype`` as the storage pool and ``availabilityZone`` as the protection domain; thin or thick
  provisioning is the driver's configuration (``scaleio.thinOrThick``), not a volume option, and the
  IOPS it records are not applied at create — so the table does not list ``iops``. Pool names are the
  site's own: only ``default`` ships; define ``gold`` etc. as pools in ``--volumeProfileFile``.
- ``local`` (Docker's built-in driver): ``validateOpts`` (moby ``volume/local/local_unix.go``) accepts
  ``type``, ``device``, ``o`` and ``size`` and refuses any other ("invalid option"); ``size`` only on
  a daemon whose filesystem has project quotas, otherwise "quota size requested but no quota support".
  Its volumes live on one host (Docker's ``local`` scope). ``default`` only.
- any other driver: a free-form table, ``default`` (no options) only unless the profile file defines
  more; any option name passes.

``default`` means "cheapest, no options" wherever a table says nothing else; the ``rexray`` and
``scaleio`` tables give the config volume ``size=1`` (1 GiB), which every REX-Ray config volume got
before profiles existed (the old global ``--externalVolumeConfigOptions`` default).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal

from es_framework.config.values import ConfigError
from es_framework.core.volumes import Options

#: An option's kind: ``int`` (a non-negative integer), ``bool`` (true/false), ``text``, or the tuple of
#: the values it may take (an enum).
OptionKind = Literal["int", "bool", "text"] | tuple[str, ...]
#: A check over one volume's final options (lower-cased canonical names -> values): its problems.
OptionsCheck = Callable[[Mapping[str, str]], list[str]]

DEFAULT_PROFILE = "default"
#: What an option name and a value may look like: they travel comma-separated (Docker's ``--mount``
#: ``volume-opt=k=v``, ``DVDI_VOLUME_OPTS``), so neither may hold a comma or a quote.
OPTION_NAME = re.compile(r"[A-Za-z0-9_.-]+")
PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


class VolumeProfileError(ConfigError):
    """A storage profile, a profile table or a volume option cannot be used; nothing was started."""


def kind_text(kind: OptionKind) -> str:
    return kind if isinstance(kind, str) else "one of " + "|".join(kind)


def check_value(kind: OptionKind, value: str) -> str:
    """``value`` as the driver should receive it (bools as ``true``/``false``), or ValueError."""
    if not value or "," in value or '"' in value or "'" in value:
        raise ValueError(f"{value!r} is not a driver option value (it must be non-empty, without commas or quotes)")
    if kind == "int":
        if not re.fullmatch(r"[0-9]+", value):
            raise ValueError(f"{value!r} is not a whole number")
        return str(int(value))
    if kind == "bool":
        lowered = value.lower()
        if lowered in _TRUE:
            return "true"
        if lowered in _FALSE:
            return "false"
        raise ValueError(f"{value!r} is not true or false")
    if isinstance(kind, tuple) and value not in kind:
        raise ValueError(f"{value!r} is not {kind_text(kind)}")
    return value


@dataclass(frozen=True)
class Profile:
    """One profile of one driver: options for both roles, then per role (the role's win)."""

    name: str
    description: str = ""
    options: Options = ()
    config: Options = ()
    data: Options = ()
    #: ``shipped`` or ``file`` (the operator's --volumeProfileFile).
    source: str = "shipped"

    def options_for(self, role: str) -> Options:
        own = self.config if role == "config" else self.data
        names = {k for k, _ in own}
        return (*((k, v) for k, v in self.options if k not in names), *own)


@dataclass(frozen=True)
class DriverTable:
    """What one volume driver takes, and its profiles."""

    name: str
    description: str
    #: Option name -> kind; None: free-form (any option name, any value).
    kinds: Mapping[str, OptionKind] | None
    profiles: Mapping[str, Profile]
    #: A volume can only be attached in the zone it was created in (EBS: its availability zone).
    zonal: bool = False
    #: Docker's plugin scope: ``global`` (every host sees the same volume) or ``local`` (per host).
    scope: Literal["global", "local"] = "global"
    #: The driver reads the profile from the volume name (``<name>@<profile>``, seed 000).
    profile_in_name: bool = False
    #: The driver refuses options it does not know (Docker's ``local``): an unlisted one is an error.
    closed: bool = False
    #: Option names are case-insensitive to the driver (REX-Ray lower-cases them).
    case_insensitive: bool = False
    #: Other names of one option (REX-Ray: ``type`` is ``volumetype``), canonical name per alias.
    aliases: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    check: OptionsCheck | None = None
    #: What an operator should know when a volume gets one of these options (a warning at start).
    notes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: ``shipped``, ``file`` or ``free-form``.
    source: str = "shipped"

    def canonical(self, key: str) -> str:
        name = key.lower() if self.case_insensitive else key
        return self.aliases.get(name, name)

    def kind_of(self, key: str) -> OptionKind | None:
        """The kind of option ``key``; None when the table does not list it."""
        if self.kinds is None:
            return "text"
        return self.kinds.get(self.canonical(key))

    def with_profiles(self, profiles: Iterable[Profile], *, name: str | None = None) -> DriverTable:
        merged = {**self.profiles, **{p.name: p for p in profiles}}
        return replace(self, name=name or self.name, profiles=MappingProxyType(merged))


def _profiles(*profiles: Profile) -> Mapping[str, Profile]:
    return MappingProxyType({p.name: p for p in profiles})


EBS_TYPES = ("standard", "gp2", "gp3", "io1", "io2", "st1", "sc1")
_EBS_IOPS_TYPES = ("gp3", "io1", "io2")


def _ebs_check(options: Mapping[str, str]) -> list[str]:
    """EC2 ``CreateVolume``: Iops only for gp3/io1/io2, required for io1/io2; io1 at most 50 IOPS/GiB."""
    problems: list[str] = []
    volume_type, iops, size = options.get("volumetype"), options.get("iops"), options.get("size")
    if iops is not None and volume_type is not None and volume_type not in _EBS_IOPS_TYPES:
        problems.append(f"EBS takes iops for {', '.join(_EBS_IOPS_TYPES)} only, not for volumetype={volume_type}")
    if volume_type in ("io1", "io2") and iops is None:
        problems.append(f"EBS volumetype={volume_type} needs iops")
    if volume_type == "io1" and iops is not None and size is not None and int(iops) > 50 * int(size):
        problems.append(f"EBS io1 allows at most 50 IOPS per GiB: iops={iops} on size={size} GiB")
    return problems


REXRAY = DriverTable(
    name="rexray",
    description="REX-Ray on Amazon EBS (volumes live in one availability zone)",
    kinds=MappingProxyType(
        {
            "size": "int",
            "volumetype": EBS_TYPES,
            "iops": "int",
            "encrypted": "bool",
            "encryptionkey": "text",
            "availabilityzone": "text",
        }
    ),
    profiles=_profiles(
        Profile(
            DEFAULT_PROFILE,
            "cheapest, no options: REX-Ray's configured type and size (16 GiB unless configured); config volumes 1 GiB",
            config=(("size", "1"),),
        ),
        Profile(
            "gold",
            "provisioned-IOPS SSD (io1), 30 IOPS per GiB, encrypted (FlockerProfiles' gold on EBS)",
            options=(("volumetype", "io1"), ("encrypted", "true")),
            config=(("size", "4"), ("iops", "120")),
            data=(("size", "100"), ("iops", "3000")),
        ),
        Profile(
            "silver",
            "general-purpose SSD (gp2), REX-Ray's default size",
            options=(("volumetype", "gp2"),),
            config=(("size", "1"),),
        ),
        Profile(
            "bronze",
            "magnetic (standard), REX-Ray's default size",
            options=(("volumetype", "standard"),),
            config=(("size", "1"),),
        ),
    ),
    zonal=True,
    case_insensitive=True,
    aliases=MappingProxyType({"type": "volumetype"}),
    check=_ebs_check,
)

SCALEIO = DriverTable(
    name="scaleio",
    description="REX-Ray on Dell EMC ScaleIO (volumetype: storage pool, availabilityzone: protection domain)",
    kinds=MappingProxyType({"size": "int", "volumetype": "text", "availabilityzone": "text"}),
    profiles=_profiles(
        Profile(
            DEFAULT_PROFILE,
            "cheapest, no options: the driver's configured storage pool; config volumes 1 GiB",
            config=(("size", "1"),),
        ),
    ),
    case_insensitive=True,
    aliases=MappingProxyType({"type": "volumetype"}),
)

LOCAL = DriverTable(
    name="local",
    description="Docker's built-in local driver (a directory on each host; size needs project quotas)",
    kinds=MappingProxyType({"type": "text", "device": "text", "o": "text", "size": "text"}),
    profiles=_profiles(Profile(DEFAULT_PROFILE, "no options: a directory on the agent's Docker data root")),
    scope="local",
    closed=True,
    notes=MappingProxyType(
        {
            "size": "Docker's local driver takes size only where its data root has project quotas (xfs with "
            "pquota); elsewhere it refuses the volume: 'quota size requested but no quota support'"
        }
    ),
)

SHIPPED: Mapping[str, DriverTable] = MappingProxyType({t.name: t for t in (REXRAY, SCALEIO, LOCAL)})
#: The driver names (as given to --externalVolumeDriver, without a ``:tag``) each shipped table serves.
DRIVER_ALIASES: Mapping[str, str] = MappingProxyType(
    {"rexray": "rexray", "rexray/ebs": "rexray", "scaleio": "scaleio", "rexray/scaleio": "scaleio", "local": "local"}
)


def base_driver_name(driver: str) -> str:
    """``rexray/ebs:0.11.4`` -> ``rexray/ebs`` (a plugin's tag does not change what it takes)."""
    name, _, tag = driver.rpartition(":")
    return name if name and "/" not in tag else driver


def shipped_table_for(driver: str) -> DriverTable | None:
    alias = DRIVER_ALIASES.get(base_driver_name(driver).lower())
    return SHIPPED[alias] if alias else None


def free_form_table(driver: str) -> DriverTable:
    """The table of a driver nothing is known about: ``default`` (no options) only."""
    return DriverTable(
        name=driver,
        description="a driver without a shipped table: any option passes, profiles come from --volumeProfileFile",
        kinds=None,
        profiles=_profiles(Profile(DEFAULT_PROFILE, "no options: the driver's own default")),
        source="free-form",
    )


def check_options(table: DriverTable, options: Options, where: str) -> list[str]:
    """The problems of a profile's options under ``table``: every name listed, every value its kind."""
    problems: list[str] = []
    for key, value in options:
        kind = table.kind_of(key)
        if kind is None:
            listed = ", ".join(sorted(table.kinds or ()))
            problems.append(
                f"{where}: option {key!r} is not one {table.name} takes (its options: {listed}); a storage "
                "platform's knobs pass through only for drivers whose table lists them"
            )
            continue
        try:
            check_value(kind, value)
        except ValueError as exc:
            problems.append(f"{where}: option {key}: {exc} ({table.name} takes {kind_text(kind)})")
    return problems


def normalised(table: DriverTable, options: Options) -> Options:
    """``options`` with listed values in the form the driver reads (assumes :func:`check_options` passed)."""
    out: list[tuple[str, str]] = []
    for key, value in options:
        kind = table.kind_of(key)
        out.append((key, check_value(kind, value) if kind is not None else value))
    return tuple(out)
