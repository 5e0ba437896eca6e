"""Storage profiles: what a volume of each role is created with, per volume driver.

For now a volume gets the profile ``--volumeProfile`` names for its role (``default`` when none)
and the options of ``--externalVolumeOptions`` / ``--externalVolumeConfigOptions``.
"""

from __future__ import annotations

from typing import Any

from es_framework.config import Config
from es_framework.core.volumes import VolumeSpec
from identity.naming import volume_names


def volume_specs(config: Config, node_id: int) -> tuple[VolumeSpec, VolumeSpec]:
    """The config and data volume of node ``node_id`` as the driver is asked for them."""
    profiles = dict(config.volume_profile)
    config_name, data_name = volume_names(config.framework_name, node_id)
    return (
        VolumeSpec(config_name, "config", profiles.get("config", "default"), config.external_volume_config_options),
        VolumeSpec(data_name, "data", profiles.get("data", "default"), config.external_volume_options),
    )


def profile_catalog(config: Config) -> list[dict[str, Any]]:
    """What ``GET /v1/profiles`` lists: every profile and what it means per driver."""
    return [{"name": "default", "drivers": {}}]


def volumes_are_zonal(config: Config) -> bool:
    """Whether the driver's volumes can only be attached in the zone they were created in."""
    return False
