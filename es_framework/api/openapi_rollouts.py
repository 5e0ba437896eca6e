"""The rollouts' part of the OpenAPI document (:mod:`es_framework.api.openapi`): ``GET /v1/rollouts``,
``POST /v1/cluster/restart``, ``POST /v1/rollouts/{rollout_id}/{command}``, ``…/force`` and ``…/predicates``
(:mod:`es_framework.api.rollouts`), every field described."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from es_framework.api.openapi_storage import NULLABLE_STRING, ref
from es_framework.api.pages import paged_operation
from es_framework.api.rollouts import MAX_FORCE_REASON, MAX_PREDICATES, PREDICATES_KEY, ROLLOUT_ID_PATTERN, VERBS
from es_framework.core.predicates import DISABLEABLE, PREDICATES

_TIME = {"type": "string", "format": "date-time", "description": "ISO 8601, UTC"}
_NULLABLE_TIME = {**_TIME, "nullable": True}
_STEP_STATES = ["pending", "draining", "restarting", "waiting-healthy", "done", "failed", "skipped"]

#: The optional body of the commands that may go past the disruption planner (``force`` of a rollout,
#: and a node's restart and replace): the operator's reason.
FORCE_BODY: dict[str, Any] = {
    "required": False,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["force"],
                "additionalProperties": False,
                "properties": {"force": {"type": "string", "pattern": "\\S", "maxLength": MAX_FORCE_REASON}},
            }
        }
    },
}

#: ``{"disable_predicates": [...]}``: the predicates disabled for a rollout's steps, each one that
#: may be disabled (an unknown or never-disabled name is answered 400, naming it).
_PREDICATES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [PREDICATES_KEY],
    "additionalProperties": False,
    "properties": {
        PREDICATES_KEY: {
            "type": "array",
            "maxItems": MAX_PREDICATES,
            "items": {"type": "string", "enum": list(DISABLEABLE)},
            "description": "predicates to disable by name (the others are never disabled); [] disables none",
        }
    },
}

_ROLLOUT_ID = {
    "name": "rollout_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": ROLLOUT_ID_PATTERN},
}

ROLLOUT_SCHEMAS: dict[str, Any] = {
    "RolloutStep": {
        "type": "object",
        "required": ["node_id", "position", "master_eligible", "state", "since", "reason", "attempts"],
        "properties": {
            "node_id": {"type": "integer", "minimum": 1},
            "position": {"type": "integer", "minimum": 0, "description": "its place in the order (0 first)"},
            "master_eligible": {"type": "boolean"},
            "state": {"type": "string", "enum": _STEP_STATES},
            "since": {**_NULLABLE_TIME, "description": "when the step entered its state"},
            "reason": {**NULLABLE_STRING, "description": "why it failed or was skipped"},
            "attempts": {"type": "integer", "minimum": 0},
        },
    },
    "Rollout": {
        "type": "object",
        "required": [
            "id",
            "reason",
            "state",
            "created_at",
            "finished_at",
            "elapsed_s",
            "done",
            "total",
            "paused",
            "order",
            "order_note",
            "blocked_predicate",
            "blocked_message",
            "upgrade",
            "disabled_predicates",
            "steps",
        ],
        "properties": {
            "id": {"type": "string", "pattern": ROLLOUT_ID_PATTERN},
            "reason": {"type": "string", "enum": ["configuration", "restart", "executor"]},
            "state": {"type": "string", "enum": ["running", "paused", "completed", "aborted"]},
            "created_at": _TIME,
            "finished_at": _NULLABLE_TIME,
            "elapsed_s": {"type": "number", "minimum": 0},
            "done": {"type": "integer", "minimum": 0, "description": "steps done or skipped (progress n of total)"},
            "total": {"type": "integer", "minimum": 0},
            "paused": {**NULLABLE_STRING, "description": "why it is paused (a failed step, the operator)"},
            "order": {"type": "array", "items": {"type": "integer"}, "description": "node ids in restart order"},
            "order_note": {**NULLABLE_STRING, "description": "what the order could not take into account"},
            "blocked_predicate": {**NULLABLE_STRING, "description": "the planner's predicate holding the next step"},
            "blocked_message": NULLABLE_STRING,
            "upgrade": {
                "type": "object",
                "nullable": True,
                "required": ["from", "to"],
                "properties": {"from": {"type": "string"}, "to": {"type": "string"}},
                "description": "the Elasticsearch versions a version upgrade goes from and to (yellow is allowed "
                "between its steps); null for any other rollout and for a finished one",
            },
            "disabled_predicates": {
                "type": "array",
                "items": {"type": "string", "enum": list(PREDICATES)},
                "description": "predicates the operator disabled for this rollout's steps (POST "
                "/v1/rollouts/{rollout_id}/predicates); empty for a finished one",
            },
            "steps": {"type": "array", "items": ref("RolloutStep"), "description": "empty for a finished one"},
        },
    },
    "Rollouts": {
        "type": "object",
        "required": ["current", "finished"],
        "properties": {
            "current": {"allOf": [ref("Rollout")], "nullable": True, "description": "under way or paused"},
            "finished": {"type": "array", "items": ref("Rollout"), "description": "the last few, newest first"},
        },
    },
}


def rollout_paths(
    mutating: Callable[[dict[str, Any]], dict[str, Any]], error: Callable[[str], dict[str, Any]]
) -> dict[str, Any]:
    """The rollouts' paths; ``mutating`` adds the token's answers, ``error`` makes an error answer."""

    def answer(status: str, description: str) -> dict[str, Any]:
        return {status: {"description": description, "content": {"application/json": {"schema": ref("Rollout")}}}}

    return {
        "/v1/rollouts": {
            "get": paged_operation(
                "The rollout under way (each step, what blocks the next, progress) and the last finished; "
                "?offset=&limit= pages the current rollout's steps and order (done and total stay the whole's)",
                {"description": "the rollouts", "content": {"application/json": {"schema": ref("Rollouts")}}},
                "how many steps the current rollout has (0 without one)",
                error,
            )
        },
        "/v1/cluster/restart": {
            "post": mutating(
                {
                    "summary": "Restart every node one at a time (a rollout), each when the planner finds it safe",
                    "requestBody": {
                        "required": False,
                        "description": "predicates to disable for this rollout's steps (logged at WARNING)",
                        "content": {"application/json": {"schema": _PREDICATES_SCHEMA}},
                    },
                    "responses": {
                        **answer("202", "the rollout was created; GET /v1/rollouts follows it"),
                        "400": error(
                            "a body that is not the object described, or a predicate that is unknown or "
                            "never disabled (nothing was created)"
                        ),
                        "409": error("another rollout is under way, or no node runs"),
                        "503": error("the scheduler cannot act now"),
                    },
                }
            )
        },
        "/v1/rollouts/{rollout_id}/{command}": {
            "post": mutating(
                {
                    "summary": "Pause, resume or abort the rollout (a step under way goes on to its end)",
                    "parameters": [
                        _ROLLOUT_ID,
                        {
                            "name": "command",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "enum": list(VERBS)},
                        },
                    ],
                    "responses": {
                        **answer("200", "done; the rollout as it is now"),
                        "400": error("not a rollout id"),
                        "404": error("no such rollout under way, or no such command"),
                        "409": error("the rollout is finished or aborted"),
                        "503": error("the scheduler cannot act now"),
                    },
                }
            )
        },
        "/v1/rollouts/{rollout_id}/predicates": {
            "post": mutating(
                {
                    "summary": "Disable predicates by name for the rollout's steps from now on (this list replaces "
                    "the last; [] disables none); never elasticsearch_answered, node_running, "
                    "skip_already_stopping or max_unavailable; logged at WARNING",
                    "parameters": [_ROLLOUT_ID],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _PREDICATES_SCHEMA}},
                    },
                    "responses": {
                        **answer("200", "set; the rollout as it is now"),
                        "400": error(
                            "not a rollout id, not the body described, or a predicate that is unknown or "
                            "never disabled (nothing was changed)"
                        ),
                        "404": error("no such rollout under way"),
                        "409": error("the rollout is finished or aborted"),
                        "503": error("the scheduler cannot act now"),
                    },
                }
            )
        },
        "/v1/rollouts/{rollout_id}/force": {
            "post": mutating(
                {
                    "summary": "Let the rollout's next step start once although the cluster's health predicates "
                    "fail (never past maxUnavailable or a silent Elasticsearch); logged at WARNING with the reason",
                    "parameters": [_ROLLOUT_ID],
                    "requestBody": {**FORCE_BODY, "required": True, "description": "why the step may start now"},
                    "responses": {
                        **answer("200", "granted; the next step the planner admits uses it"),
                        "400": error("not a rollout id, or no reason"),
                        "404": error("no such rollout under way"),
                        "409": error("the rollout is finished or aborted"),
                        "503": error("the scheduler cannot act now"),
                    },
                }
            )
        },
    }
