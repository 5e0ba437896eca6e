"""The storage part of the OpenAPI document (:mod:`es_framework.api.openapi`): the volume inventory of
``GET /v1/volumes`` (:mod:`es_framework.core.volume_inventory`) and the profiles of ``GET /v1/profiles``
(:func:`es_framework.core.volume_profiles.profile_catalog`), every field described."""

from __future__ import annotations

from typing import Any


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


NULLABLE_STRING = {"type": "string", "nullable": True}
TIME = {"type": "string", "format": "date-time", "nullable": True, "description": "ISO 8601, UTC"}

_VOLUME_PROPERTIES: dict[str, Any] = {
    "name": {"type": "string", "description": "the bare volume name, <framework><id>config or <framework><id>data"},
    "role": {"type": "string", "enum": ["config", "data"], "description": "which of the node's two volumes"},
    "node_id": {"type": "integer", "minimum": 1, "description": "the node id the volume belongs to"},
    "driver": {**NULLABLE_STRING, "description": "the volume driver it was created with; null when not recorded"},
    "profile": {**NULLABLE_STRING, "description": "the storage profile it was created with; null when not recorded"},
    "options": {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "description": "the driver options it was created with (empty when not recorded)",
    },
    "recorded": {
        "type": "boolean",
        "description": "false for a volume known only from a node record launched before the state kept the "
        "inventory: its driver, profile, options and launch times are unknown",
    },
    "last_agent_id": {
        **NULLABLE_STRING,
        "description": "the agent of the task that attached it last (the live holder's when one holds it)",
    },
    "last_hostname": {**NULLABLE_STRING, "description": "that agent's host"},
    "last_zone": {**NULLABLE_STRING, "description": "that agent's zone; null when it has none"},
    "first_launched_at": {**TIME, "description": "when the first task with this volume was launched (ISO 8601, UTC)"},
    "last_launched_at": {**TIME, "description": "when the last task with this volume was launched (ISO 8601, UTC)"},
    "held": {
        "type": "boolean",
        "description": "a task of ours holds it now: its node id's task is launching, staging, starting, running, "
        "killing, unreachable or unknown (it may still run)",
    },
    "holder_task_id": {**NULLABLE_STRING, "description": "the Mesos task id of the holder; null when not held"},
    "holder_state": {**NULLABLE_STRING, "description": "the holder's state (LAUNCHING, TASK_RUNNING, …)"},
    "held_since": {**TIME, "description": "when the holder was launched, else first seen running; null when not held"},
    "orphan": {
        "type": "boolean",
        "description": "no node of the cluster will attach it again on its own: its node id is above the desired "
        "count (a scale-down) or the framework was torn down",
    },
    "orphan_reason": {**NULLABLE_STRING, "description": "why it is an orphan; null when it is not"},
    "profile_differs": {
        "type": "boolean",
        "description": "the configuration now names another profile for this role than the one the volume was "
        "created with (an existing volume keeps its profile)",
    },
    "configured_profile": {
        **NULLABLE_STRING,
        "description": "the profile the configuration names for this role now; null without a volume driver",
    },
    "removed_at": {
        **TIME,
        "description": "when the volume was removed (--volumeRetention delete); null while it exists",
    },
    "removal_status": {
        **NULLABLE_STRING,
        "enum": ["released", "in-flight", "failed", "gave-up", "removed", None],
        "description": "its node id's removal: released (drained and stopped, waiting for its volume task), "
        "in-flight, failed (retried after a back-off), gave-up (waits for the operator) or removed; null when "
        "no removal was asked for",
    },
    "removal_task_id": {**NULLABLE_STRING, "description": "the last volume task (docker volume rm) for it"},
    "removal_attempts": {"type": "integer", "minimum": 0, "description": "volume tasks launched for it so far"},
    "removal_error": {**NULLABLE_STRING, "description": "why the last volume task failed; null otherwise"},
}

STORAGE_SCHEMAS: dict[str, Any] = {
    "Volume": {"type": "object", "required": list(_VOLUME_PROPERTIES), "properties": _VOLUME_PROPERTIES},
    "VolumeInventory": {
        "type": "object",
        "required": ["volumes", "counts", "desired_nodes", "torn_down_at"],
        "properties": {
            "volumes": {
                "type": "array",
                "items": ref("Volume"),
                "description": "every volume of every node id ever used, by node id, config before data",
            },
            "counts": {
                "type": "object",
                "description": "what the volumes listed add up to",
                "required": ["total", "held", "orphans", "profile_differs", "removed"],
                "properties": {
                    "total": {"type": "integer", "minimum": 0, "description": "volumes listed"},
                    "held": {"type": "integer", "minimum": 0, "description": "volumes a task of ours holds now"},
                    "orphans": {"type": "integer", "minimum": 0, "description": "orphaned volumes"},
                    "profile_differs": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "volumes whose profile differs from the configured one",
                    },
                    "removed": {"type": "integer", "minimum": 0, "description": "volumes removed already"},
                },
            },
            "desired_nodes": {"type": "integer", "minimum": 0, "description": "the desired number of nodes"},
            "torn_down_at": {**TIME, "description": "when the framework was torn down; null while it lives"},
        },
    },
    "Profile": {
        "type": "object",
        "required": ["name", "selected_for", "drivers"],
        "description": "a storage profile and what it means for each volume driver that has it",
        "properties": {
            "name": {"type": "string", "description": "the profile's name, as --volumeProfile names it"},
            "selected_for": {
                "type": "array",
                "items": {"type": "string", "enum": ["config", "data"]},
                "description": "the volume roles the configuration gives this profile (for the configured driver)",
            },
            "drivers": {
                "type": "object",
                "additionalProperties": ref("ProfileDriver"),
                "description": "volume driver (its table's name) -> what the profile means for it",
            },
        },
    },
    "ProfileDriver": {
        "type": "object",
        "required": ["description", "source", "in_use", "zonal", "scope", "profile_in_name", "options"],
        "description": "one profile under one driver's table",
        "properties": {
            "description": {"type": "string", "description": "what the profile gives, in words"},
            "source": {"type": "string", "description": "shipped (built in) or file (--volumeProfileFile)"},
            "in_use": {"type": "boolean", "description": "this is the configured --externalVolumeDriver's table"},
            "zonal": {
                "type": "boolean",
                "description": "the driver's volumes can only be attached in the zone they were created in",
            },
            "scope": {
                "type": "string",
                "enum": ["global", "local"],
                "description": "Docker's plugin scope: global (every host sees the volume) or local (one host)",
            },
            "profile_in_name": {
                "type": "boolean",
                "description": "the driver reads the profile from the volume name (<name>@<profile>)",
            },
            "options": {
                "type": "object",
                "additionalProperties": {"type": "object", "additionalProperties": {"type": "string"}},
                "description": "volume role (config, data) -> the driver options the profile itself gives",
            },
            "effective": {
                "type": "object",
                "additionalProperties": {"type": "object", "additionalProperties": {"type": "string"}},
                "description": "for the configured driver and the roles this profile is selected for: the options "
                "volumes get, explicit --externalVolumeOptions/--externalVolumeConfigOptions applied",
            },
        },
    },
}
