"""The external volumes of every node id ever used: what was created, with which profile, where.

A node id's two volumes (``<framework><id>config`` and ``<framework><id>data``) outlive its tasks:
a replacement re-attaches them, a scale-down leaves them behind. The state keeps one
:class:`VolumeSet` per node id that ever launched with external volumes, recorded with the launch
(before the ACCEPT goes out), so the inventory (``GET /v1/volumes``) knows every volume the
framework may have created even after its node is gone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

#: A volume's driver options, as (key, value) pairs in the order they were given.
Options = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class VolumeSpec:
    """One volume as the framework asked the driver for it."""

    #: The bare volume name (the node's identity; a driver may receive ``name@profile``).
    name: str
    #: ``config`` or ``data``.
    role: str
    #: The storage profile it was created under (``default`` when none was named).
    profile: str = "default"
    options: Options = ()


@dataclass(frozen=True)
class VolumeSet:
    """The two volumes of one node id."""

    node_id: int
    driver: str
    config: VolumeSpec
    data: VolumeSpec
    #: When a task first launched with these volumes (Unix seconds).
    first_launched_at: float
    #: The agent (and host) the last task with these volumes was launched on, and when.
    last_agent_id: str
    last_hostname: str
    last_launched_at: float
    #: The zone of that agent (None when it has none): a zonal volume (EBS, say) can only be
    #: attached there again.
    last_zone: str | None = None
    #: Set once the volumes were removed (``--volumeRetention delete``); they are gone then.
    removed_at: float | None = None

    @property
    def specs(self) -> tuple[VolumeSpec, VolumeSpec]:
        return self.config, self.data


def record_volume_launch(
    volumes: Mapping[int, VolumeSet],
    node_id: int,
    driver: str,
    specs: tuple[VolumeSpec, VolumeSpec],
    *,
    agent_id: str,
    hostname: str,
    zone: str | None,
    now: float,
) -> Mapping[int, VolumeSet]:
    """The inventory after node ``node_id`` was launched on ``agent_id`` with ``specs``.

    A volume keeps the driver, profile and options it was first created with: no call of the
    Docker volume plugin API changes an existing volume, so what a later configuration names is
    only compared with it (see the inventory), never recorded over it. Volumes recorded as removed
    are created again by this launch, so they are recorded anew.
    """
    known = volumes.get(node_id)
    if known is None or known.removed_at is not None:
        entry = VolumeSet(node_id, driver, specs[0], specs[1], now, agent_id, hostname, now, zone)
    else:
        entry = replace(known, last_agent_id=agent_id, last_hostname=hostname, last_launched_at=now, last_zone=zone)
    return MappingProxyType({**volumes, node_id: entry})
