"""The storage profiles at start: ``--volumeProfileFile`` read once, and every profile choice checked.

:func:`load` reads the file (YAML, or JSON, which YAML reads too; the format is documented in
:mod:`es_framework.core.profile_schema`), turns it into profile tables through the pure core, puts them
in ``Config.volume_profiles``, then checks the configuration's profiles and options against the
driver's table (:func:`es_framework.core.volume_profiles.check_profiles`) — with or without a file, so
an unknown profile or an option of the wrong kind stops the scheduler at start, not a launch. Each
explicit option that overrides a profile's value is logged once, here.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from es_framework.config import Config
from es_framework.config.parsers import VOLUME_ROLES
from es_framework.core.profile_schema import tables_from_document
from es_framework.core.profile_tables import VolumeProfileError
from es_framework.core.volume_profiles import check_profiles, profile_overrides, table_for

log = logging.getLogger(__name__)

#: A profile file larger than this is refused (it is a handful of tables, not data).
MAX_BYTES = 256 * 1024


class VolumeProfileFileError(VolumeProfileError):
    """The profile file or the configuration's profiles cannot be used; nothing was started."""


def read(path: str) -> Any:
    """The parsed document of the file at ``path`` (JSON when it ends in ``.json``, YAML otherwise)."""
    where = f"--volumeProfileFile {path}"
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise VolumeProfileFileError([f"{where}: cannot read it: {error.strerror}"]) from error
    if len(raw) > MAX_BYTES:
        raise VolumeProfileFileError([f"{where}: {len(raw)} bytes is over the {MAX_BYTES} limit"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise VolumeProfileFileError([f"{where}: not a UTF-8 text file"]) from None
    try:
        if path.endswith(".json"):
            return json.loads(text)
        return yaml.safe_load(text)
    except json.JSONDecodeError as error:
        raise VolumeProfileFileError([f"{where}: not JSON: {error}"]) from error
    except yaml.YAMLError as error:
        raise VolumeProfileFileError([f"{where}: not YAML: {error}"]) from error


def load(config: Config) -> Config:
    """``config`` with the profile file's tables in ``volume_profiles`` and the profile warnings added.

    Raises :class:`VolumeProfileFileError` (a :class:`~es_framework.config.ConfigError`) listing every
    problem. Without ``--externalVolumeDriver`` it returns ``config`` unchanged.
    """
    if not config.external_volume_driver:
        return config
    loaded = config
    try:
        if config.volume_profile_file:
            tables = tables_from_document(read(config.volume_profile_file), config.volume_profile_file)
            loaded = replace(config, volume_profiles=tables)
        warnings = check_profiles(loaded)
    except VolumeProfileFileError:
        raise
    except VolumeProfileError as error:
        raise VolumeProfileFileError(error.problems) from error
    table = table_for(loaded)
    profiles = ", ".join(f"{role}={dict(loaded.volume_profile).get(role, 'default')}" for role in VOLUME_ROLES)
    # Every role on `default` is what every REX-Ray user had before profiles existed: no news.
    chosen = any(name != "default" for _, name in loaded.volume_profile)
    log.log(
        logging.INFO if chosen else logging.DEBUG,
        "storage profiles %s of driver %s (table %s)",
        profiles,
        loaded.external_volume_driver,
        table.name,
    )
    for override in profile_overrides(loaded):
        log.info("%s", override.message())
    return replace(loaded, warnings=(*loaded.warnings, *warnings))
