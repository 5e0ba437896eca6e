"""The agents' part of the OpenAPI document (:mod:`es_framework.api.openapi`): the blocked agents of
``GET /v1/cluster`` and ``GET /v1/agents``, and ``DELETE /v1/agents/{agentId}/failures``
(:mod:`es_framework.api.agents`), every field described."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from es_framework.api.agents import AGENT_ID_PATTERN
from es_framework.api.openapi_storage import NULLABLE_STRING, ref
from es_framework.api.pages import CLUSTER_LIST_CAP, paged_operation

_TIME = {"type": "string", "format": "date-time", "description": "ISO 8601, UTC"}

AGENT_SCHEMAS: dict[str, Any] = {
    "AgentCheck": {
        "type": "object",
        "required": ["name", "found", "needed", "fix"],
        "properties": {
            "name": {"type": "string", "description": "the limit (vm.max_map_count, max file descriptors, …)"},
            "found": {"type": "string", "description": "what the agent has"},
            "needed": {"type": "string", "description": "what Elasticsearch needs"},
            "fix": {"type": "string", "description": "what the operator does about it on the agent"},
        },
    },
    "BlockedAgent": {
        "type": "object",
        "required": [
            "agent_id",
            "hostname",
            "checks",
            "blocked_at",
            "blocked_until",
            "node_id",
            "task_id",
            "source",
            "message",
        ],
        "properties": {
            "agent_id": {"type": "string"},
            "hostname": {"type": "string"},
            "checks": {"type": "array", "items": ref("AgentCheck"), "description": "the agent checks it failed"},
            "blocked_at": {**_TIME, "description": "when the failure was seen (ISO 8601, UTC)"},
            "blocked_until": {
                **_TIME,
                "description": "when nodes may launch there again (--agentFailureBackoff after the failure)",
            },
            "node_id": {"type": "integer", "minimum": 1, "description": "the node whose task failed there"},
            "task_id": {"type": "string"},
            "source": {
                "type": "string",
                "enum": ["report", "message"],
                "description": "report: the executor checked the agent; message: Elasticsearch's exit-78 message "
                "(an executor of an earlier release)",
            },
            "message": {
                "type": "string",
                "description": "the agent_check decline reason: what failed, until when, fix",
            },
        },
    },
    "Agent": {
        "type": "object",
        "required": ["agent_id", "hostname", "blocked"],
        "properties": {
            "agent_id": {"type": "string"},
            "hostname": {"type": "string"},
            "blocked": {
                "allOf": [ref("BlockedAgent")],
                "nullable": True,
                "description": "its agent-check block in force; null when it may take nodes",
            },
        },
    },
    "AgentFailuresCleared": {
        "type": "object",
        "required": ["agent_id", "message"],
        "properties": {"agent_id": {"type": "string"}, "message": {"type": "string"}},
    },
}

#: The fields ``GET /v1/cluster`` adds for blocked agents.
CLUSTER_AGENT_PROPERTIES: dict[str, Any] = {
    "blocked_agents": {
        "type": "array",
        "items": ref("BlockedAgent"),
        "maxItems": CLUSTER_LIST_CAP,
        "description": f"agents that failed an agent check and get no node now, by agent id; the first "
        f"{CLUSTER_LIST_CAP} (blocked_agents_total counts them all, GET /v1/agents lists them)",
    },
    "blocked_agents_total": {"type": "integer", "minimum": 0, "description": "blocked agents in all"},
    "start_blocked": {
        **NULLABLE_STRING,
        "description": "why no missing node can start: every agent that offered failed an agent check (each "
        "quoted); null otherwise",
    },
}


def agent_paths(
    mutating: Callable[[dict[str, Any]], dict[str, Any]], error: Callable[[str], dict[str, Any]]
) -> dict[str, Any]:
    """The agents' paths; ``mutating`` adds the token's answers, ``error`` makes an error answer."""
    return {
        "/v1/agents": {
            "get": paged_operation(
                "Agents that offered since the scheduler started, and their agent-check blocks; ?offset=&limit= "
                "for one page",
                {
                    "description": "the agents, by agent id (the page asked for)",
                    "content": {"application/json": {"schema": {"type": "array", "items": ref("Agent")}}},
                },
                "how many agents in all",
                error,
            )
        },
        "/v1/agents/{agent_id}/failures": {
            "delete": mutating(
                {
                    "summary": "Lift the agent's agent-check block once it is fixed: nodes may launch there at once",
                    "parameters": [
                        {
                            "name": "agent_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "pattern": AGENT_ID_PATTERN},
                            "description": "the Mesos agent id",
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "lifted, or there was no block in force (the message says which)",
                            "content": {"application/json": {"schema": ref("AgentFailuresCleared")}},
                        },
                        "400": error("not an agent id"),
                        "404": error("no agent with this id offered to this scheduler or failed an agent check"),
                        "503": error("the scheduler cannot act now"),
                    },
                }
            )
        },
    }
