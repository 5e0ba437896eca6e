"""The storage models of the REST API: the volume inventory of ``GET /v1/volumes``
(:mod:`es_framework.core.volume_inventory`) and the profiles of ``GET /v1/profiles``
(:func:`es_framework.core.volume_profiles.profile_catalog`), every field described.

These pydantic models declare the answers in the OpenAPI document; the answers themselves are the
core's snapshots written by :func:`es_framework.api.views.to_json` (no second copy per request at
10,000 nodes), and the schema-driven tests check each answer against its model."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

#: A time in an answer: ISO 8601, UTC (:func:`es_framework.api.views.iso_time`).
Time = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class Volume(BaseModel):
    name: str = Field(description="the bare volume name, <framework><id>config or <framework><id>data")
    role: Literal["config", "data"] = Field(description="which of the node's two volumes")
    node_id: int = Field(ge=1, description="the node id the volume belongs to")
    driver: str | None = Field(description="the volume driver it was created with; null when not recorded")
    profile: str | None = Field(description="the storage profile it was created with; null when not recorded")
    options: dict[str, str] = Field(description="the driver options it was created with (empty when not recorded)")
    recorded: bool = Field(
        description="false for a volume known only from a node record launched before the state kept the "
        "inventory: its driver, profile, options and launch times are unknown"
    )
    last_agent_id: str | None = Field(
        description="the agent of the task that attached it last (the live holder's when one holds it)"
    )
    last_hostname: str | None = Field(description="that agent's host")
    last_zone: str | None = Field(description="that agent's zone; null when it has none")
    first_launched_at: Time | None = Field(description="when the first task with this volume was launched")
    last_launched_at: Time | None = Field(description="when the last task with this volume was launched")
    held: bool = Field(
        description="a task of ours holds it now: its node id's task is launching, staging, starting, running, "
        "killing, unreachable or unknown (it may still run)"
    )
    holder_task_id: str | None = Field(description="the Mesos task id of the holder; null when not held")
    holder_state: str | None = Field(description="the holder's state (LAUNCHING, TASK_RUNNING, …)")
    held_since: Time | None = Field(description="when the holder was launched, else first seen running")
    orphan: bool = Field(
        description="no node of the cluster will attach it again on its own: its node id is above the desired "
        "count (a scale-down) or the framework was torn down"
    )
    orphan_reason: str | None = Field(description="why it is an orphan; null when it is not")
    profile_differs: bool = Field(
        description="the configuration now names another profile for this role than the one the volume was "
        "created with (an existing volume keeps its profile)"
    )
    configured_profile: str | None = Field(
        description="the profile the configuration names for this role now; null without a volume driver"
    )
    removed_at: Time | None = Field(description="when the volume was removed (--volumeRetention delete)")
    removal_status: Literal["released", "in-flight", "failed", "gave-up", "removed"] | None = Field(
        description="its node id's removal: released (drained and stopped, waiting for its volume task), "
        "in-flight, failed (retried after a back-off), gave-up (waits for the operator) or removed; null when "
        "no removal was asked for"
    )
    removal_task_id: str | None = Field(description="the last volume task (docker volume rm) for it")
    removal_attempts: int = Field(ge=0, description="volume tasks launched for it so far")
    removal_error: str | None = Field(description="why the last volume task failed; null otherwise")


class VolumeCounts(BaseModel):
    """What the volumes listed add up to (the whole inventory's, also when the list is a page)."""

    total: int = Field(ge=0, description="volumes listed")
    held: int = Field(ge=0, description="volumes a task of ours holds now")
    orphans: int = Field(ge=0, description="orphaned volumes")
    profile_differs: int = Field(ge=0, description="volumes whose profile differs from the configured one")
    removed: int = Field(ge=0, description="volumes removed already")


class VolumeInventory(BaseModel):
    volumes: list[Volume] = Field(description="every volume of every node id ever used, by node id, config first")
    counts: VolumeCounts = Field(description="what the volumes listed add up to (the whole inventory's)")
    desired_nodes: int = Field(ge=0, description="the desired number of nodes")
    torn_down_at: Time | None = Field(description="when the framework was torn down; null while it lives")


RoleOptions = dict[str, dict[str, str]]


class ProfileDriver(BaseModel):
    """One profile under one driver's table."""

    description: str = Field(description="what the profile gives, in words")
    source: str = Field(description="shipped (built in) or file (--volumeProfileFile)")
    in_use: bool = Field(description="this is the configured --externalVolumeDriver's table")
    zonal: bool = Field(description="the driver's volumes can only be attached in the zone they were created in")
    scope: Literal["global", "local"] = Field(
        description="Docker's plugin scope: global (every host sees the volume) or local (one host)"
    )
    profile_in_name: bool = Field(description="the driver reads the profile from the volume name (<name>@<profile>)")
    options: RoleOptions = Field(description="volume role (config, data) -> the driver options the profile gives")
    effective: RoleOptions = Field(
        default_factory=dict,
        description="for the configured driver and the roles this profile is selected for: the options volumes "
        "get, explicit --externalVolumeOptions/--externalVolumeConfigOptions applied",
    )


class Profile(BaseModel):
    """A storage profile and what it means for each volume driver that has it."""

    name: str = Field(description="the profile's name, as --volumeProfile names it")
    selected_for: list[Literal["config", "data"]] = Field(
        description="the volume roles the configuration gives this profile (for the configured driver)"
    )
    drivers: dict[str, ProfileDriver] = Field(
        description="volume driver (its table's name) -> what the profile means for it"
    )
