"""The configuration's part of the OpenAPI document (:mod:`es_framework.api.openapi`):
``GET`` and ``PUT /v1/cluster/configuration`` (:mod:`es_framework.api.configuration`), every field
described. Whether a value is valid is the flag parser's to say, as on the command line
(:mod:`es_framework.core.config_change`); the schema states the JSON types only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from es_framework.api.openapi_storage import NULLABLE_STRING, TIME, ref
from es_framework.core.config_change import CHANGEABLE_FLAGS, NUMBER_FLAGS


def _flag_schema(name: str) -> dict[str, Any]:
    if name == "elasticsearchNofile":
        return {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string"}]}
    if name in NUMBER_FLAGS:
        return {"anyOf": [{"type": "number", "exclusiveMinimum": True, "minimum": 0}, {"type": "string"}]}
    return {**NULLABLE_STRING, "description": "null or empty: unset"}


_VALUES = {
    "type": "object",
    "properties": {name: {} for name in CHANGEABLE_FLAGS},
    "description": "flag name -> value (secrets and URL credentials masked)",
}
_OVERRIDES = {
    "type": "object",
    "additionalProperties": ref("ConfigurationOverride"),
    "description": "flag name -> the override made through the API",
}

CONFIGURATION_SCHEMAS: dict[str, Any] = {
    "ConfigurationChange": {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": {name: _flag_schema(name) for name in CHANGEABLE_FLAGS},
        "description": "flags to change, by their command-line names; a value equal to the flag given at start "
        "removes its override",
    },
    "ConfigurationOverride": {
        "type": "object",
        "required": ["value", "over", "at"],
        "properties": {
            "value": {"type": "string", "description": "the text the flag's parser reads"},
            "over": {"description": "the flag's value at start when the override was made", "nullable": True},
            "at": TIME,
        },
    },
    "Configuration": {
        "type": "object",
        "required": ["changeable", "values", "flags", "overrides", "fingerprint"],
        "properties": {
            "changeable": {"type": "array", "items": {"type": "string", "enum": list(CHANGEABLE_FLAGS)}},
            "values": {**_VALUES, "description": "the values the scheduler runs with"},
            "flags": {**_VALUES, "description": "the values given at start"},
            "overrides": _OVERRIDES,
            "fingerprint": {**NULLABLE_STRING, "description": "of the node-shaping configuration recorded"},
        },
    },
    "ConfigurationChanged": {
        "type": "object",
        "required": ["changed", "message", "rollout", "overrides", "warnings"],
        "properties": {
            "changed": {"type": "array", "items": {"type": "string"}, "description": "empty: no change"},
            "message": {"type": "string"},
            "rollout": {
                "type": "object",
                "nullable": True,
                "required": ["id", "order"],
                "properties": {
                    "id": {"type": "string"},
                    "order": {"type": "array", "items": {"type": "integer"}, "description": "node ids in order"},
                },
                "description": "the configuration rollout created (GET /v1/rollouts follows it)",
            },
            "overrides": _OVERRIDES,
            "warnings": {"type": "array", "items": {"type": "string"}},
        },
    },
}


def configuration_paths(
    mutating: Callable[[dict[str, Any]], dict[str, Any]], error: Callable[[str], dict[str, Any]]
) -> dict[str, Any]:
    """``/v1/cluster/configuration``; ``mutating`` adds the token's answers, ``error`` makes an error answer."""

    def changed(description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": ref("ConfigurationChanged")}}}

    return {
        "/v1/cluster/configuration": {
            "get": {
                "summary": "The flags a running scheduler may change, their values now and at start, the overrides",
                "responses": {
                    "200": {
                        "description": "the configuration",
                        "content": {"application/json": {"schema": ref("Configuration")}},
                    }
                },
            },
            "put": mutating(
                {
                    "summary": "Change flags of the running scheduler (validated as on the command line); the nodes "
                    "are restarted one at a time by a configuration rollout",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": ref("ConfigurationChange")}},
                    },
                    "responses": {
                        "200": changed("no rollout was needed: no change, or no node to restart"),
                        "202": changed("persisted; the rollout restarts the nodes with it"),
                        "400": error("not a JSON object, an unknown flag, one that needs a restart, an invalid value"),
                        "409": error("a rollout is in progress, or the nodes cannot reach the target version"),
                        "503": error("the scheduler cannot act now"),
                    },
                }
            ),
        }
    }
