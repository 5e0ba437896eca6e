"""``GET /v1/openapi.json``: the OpenAPI 3.0 document of the REST API.

Written by hand next to the handlers in :mod:`es_framework.api.app`, and kept truthful by the
schema-driven tests (``tests/api/test_api_schema.py``), which send generated requests to the app and
check every answer against this document. The bearer-token scheme is declared only when the app
has a token, because only then are mutating requests refused without one.
"""

from __future__ import annotations

from typing import Any

from es_framework.api.core import MODES
from es_framework.api.openapi_agents import AGENT_SCHEMAS, CLUSTER_AGENT_PROPERTIES, agent_paths
from es_framework.api.openapi_configuration import CONFIGURATION_SCHEMAS, configuration_paths
from es_framework.api.openapi_operator import CLUSTER_OPERATOR_PROPERTIES, OPERATOR_SCHEMAS, proxy_paths
from es_framework.api.openapi_rollouts import FORCE_BODY, ROLLOUT_SCHEMAS, rollout_paths
from es_framework.api.openapi_security import security_paths
from es_framework.api.openapi_storage import STORAGE_SCHEMAS
from es_framework.api.pages import CLUSTER_LIST_CAP, paged_operation
from es_framework.core.operations import MAX_NODES

#: The phrase ``POST /v1/nodes/{id}/gone`` requires, with the node id filled in.
GONE_CONFIRMATION = "node {node_id} is gone"
GONE_CONFIRMATION_PATTERN = "^node [1-9][0-9]* is gone$"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


_NULLABLE_STRING = {"type": "string", "nullable": True}
_TIME = {"type": "string", "format": "date-time", "nullable": True, "description": "ISO 8601, UTC"}

_TASK_PROPERTIES: dict[str, Any] = {
    "id": {"type": "string", "description": "Mesos task id"},
    "node_id": {"type": "integer", "minimum": 1},
    "name": {"type": "string", "description": "Elasticsearch node name"},
    "state": {"type": "string", "description": "LAUNCHING or a Mesos task state (TASK_RUNNING, …)"},
    "hostname": {"type": "string"},
    "agent_id": {"type": "string"},
    "http_address": {**_NULLABLE_STRING, "description": "host:port"},
    "transport_address": {**_NULLABLE_STRING, "description": "host:port"},
    "volumes": _ref("Volumes"),
    "started_at": _TIME,
    "version": _NULLABLE_STRING,
}

_SCHEMAS: dict[str, Any] = {
    **STORAGE_SCHEMAS,
    **AGENT_SCHEMAS,
    **OPERATOR_SCHEMAS,
    **ROLLOUT_SCHEMAS,
    **CONFIGURATION_SCHEMAS,
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string", "description": "what is wrong"}},
    },
    "DesiredNodes": {
        "type": "object",
        "required": ["value"],
        "additionalProperties": False,
        "properties": {
            # The cap operations.set_desired_nodes enforces (one ZooKeeper znode per node id).
            "value": {"type": "integer", "minimum": 1, "maximum": MAX_NODES, "description": "number of nodes"}
        },
    },
    "Volumes": {
        "type": "object",
        "required": ["config", "data"],
        "properties": {"config": _NULLABLE_STRING, "data": _NULLABLE_STRING},
        "description": "external volume names; null with local storage",
    },
    "Task": {"type": "object", "required": list(_TASK_PROPERTIES), "properties": _TASK_PROPERTIES},
    "NodeEvent": {
        "type": "object",
        "required": ["time", "state", "message", "kind", "rollout", "step"],
        "properties": {
            "time": _TIME,
            "state": {"type": "string"},
            "message": {"type": "string"},
            "kind": {
                **_NULLABLE_STRING,
                "description": "a persisted entry's kind (launch, failure, stopped, command, restart, replace, "
                "scale-down, maintenance, rollout, replacement); null for a routine task update, not persisted",
            },
            "rollout": {**_NULLABLE_STRING, "description": "the rollout of a rollout step"},
            "step": {**_NULLABLE_STRING, "description": "what the rollout step did: started, done, failed, …"},
        },
    },
    "Node": {
        "type": "object",
        "required": [*_TASK_PROPERTIES, "healthy", "outdated", "history"],
        "properties": {
            **_TASK_PROPERTIES,
            "healthy": {"type": "boolean", "nullable": True},
            "outdated": {"type": "boolean", "description": "launched with a configuration that has changed since"},
            "history": {"type": "array", "items": _ref("NodeEvent"), "description": "oldest first"},
        },
    },
    "Endpoints": {
        "type": "object",
        "required": ["http", "transport"],
        "properties": {
            "http": {"type": "array", "items": {"type": "string"}, "description": "host:port of running nodes"},
            "transport": {"type": "array", "items": {"type": "string"}},
        },
    },
    "RuleOutcome": {
        "type": "object",
        "required": ["rule", "passed", "reason"],
        "properties": {
            "rule": {"type": "string", "description": "the offer rule (cluster_full, mem, ports, …)"},
            "passed": {"type": "boolean"},
            "reason": {"type": "string", "description": "why it passed or failed"},
        },
    },
    "Cluster": {
        "type": "object",
        "required": [
            "cluster_name",
            "framework_name",
            "framework_id",
            "cluster_uuid",
            "configuration",
            "desired_nodes",
            "running_nodes",
            "registered",
            "health",
            "security_warning",
            "drain",
            "drain_total",
            "declines",
            "events",
            "mode",
            "mode_note",
            *CLUSTER_AGENT_PROPERTIES,
            *CLUSTER_OPERATOR_PROPERTIES,
        ],
        "properties": {
            "cluster_name": {"type": "string"},
            "framework_name": {"type": "string"},
            "framework_id": _NULLABLE_STRING,
            "cluster_uuid": _NULLABLE_STRING,
            "configuration": {"type": "object", "description": "secrets masked"},
            "desired_nodes": {"type": "integer", "minimum": 0},
            "running_nodes": {"type": "integer", "minimum": 0},
            "registered": {"type": "boolean"},
            "health": {"type": "string", "description": "green, yellow, red or unknown"},
            "security_warning": _NULLABLE_STRING,
            "mode": {
                "type": "string",
                "enum": list(MODES),
                "description": "mesos: on a Mesos cluster; local: local mode, a development tool (a simulated Mesos "
                "cluster on one machine); development: a Mesos master on this machine's loopback (the development "
                "cluster)",
            },
            "mode_note": {
                **_NULLABLE_STRING,
                "description": "what to know about the mode (local mode: whether the nodes run the demo node, which "
                "is not Elasticsearch); null on a Mesos cluster",
            },
            "drain_total": {"type": "integer", "minimum": 0, "description": "leaving nodes in all"},
            "drain": {
                "type": "array",
                "maxItems": CLUSTER_LIST_CAP,
                "description": "leaving nodes (scale-down), drained one at a time by the disruption planner; the first "
                f"{CLUSTER_LIST_CAP} (drain_total counts them all)",
                "items": {
                    "type": "object",
                    "required": ["node_id", "shards_left", "status", "reason", "predicate"],
                    "properties": {
                        "node_id": {"type": "integer"},
                        "shards_left": {"type": "integer", "nullable": True},
                        "status": {
                            "type": "string",
                            "description": "draining, waiting, ready, stopping, blocked or stalled",
                        },
                        "reason": {"type": "string"},
                        "predicate": {
                            **_NULLABLE_STRING,
                            "description": "the disruption planner's predicate that holds this leaving node back "
                            "(e.g. max_unavailable: at most --maxUnavailable nodes away at once), also named in "
                            "reason; null while the node is being drained",
                        },
                    },
                },
            },
            "declines": {
                "type": "array",
                "description": "offers declined, by the first failing rule; most frequent first",
                "items": {
                    "type": "object",
                    "required": ["reason", "count", "last_message", "last_time", "outcomes"],
                    "properties": {
                        "reason": {"type": "string", "description": "the first failing rule, counted"},
                        "count": {"type": "integer", "minimum": 1},
                        "last_message": {"type": "string", "description": "why the last such offer was declined"},
                        "last_time": _TIME,
                        "outcomes": {
                            "type": "array",
                            "items": _ref("RuleOutcome"),
                            "description": (
                                "the last such offer's complete explanation: every rule's outcome, in the "
                                "strategy's order; empty when no rule judged the offer (malformed, store_unavailable)"
                            ),
                        },
                    },
                },
            },
            "events": {
                "type": "array",
                "maxItems": CLUSTER_LIST_CAP,
                "description": "newest first",
                "items": {
                    "type": "object",
                    "required": ["time", "message", "node_id"],
                    "properties": {
                        "time": _TIME,
                        "message": {"type": "string"},
                        "node_id": {"type": "integer", "nullable": True},
                    },
                },
            },
            **CLUSTER_AGENT_PROPERTIES,
            **CLUSTER_OPERATOR_PROPERTIES,
        },
    },
    "Health": {
        "type": "object",
        "required": ["alive", "registered", "message"],
        "properties": {
            "alive": {"type": "boolean"},
            "registered": {"type": "boolean"},
            "message": {"type": "string"},
        },
    },
    "NodeCommandResult": {
        "type": "object",
        "required": ["node_id", "message"],
        "properties": {"node_id": {"type": "integer"}, "message": {"type": "string"}},
    },
    "GoneConfirmation": {
        "type": "object",
        "required": ["confirm"],
        "additionalProperties": False,
        "properties": {
            "confirm": {
                "type": "string",
                "pattern": GONE_CONFIRMATION_PATTERN,
                "description": "exactly 'node <id> is gone', with this node's id",
            }
        },
    },
}

_NODE_ID = {
    "name": "node_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
    "description": "the node id (1, 2, …)",
}


def openapi_document(*, secured: bool, version: str) -> dict[str, Any]:
    """The document; ``secured`` when mutating requests need the bearer token."""

    def mutating(operation: dict[str, Any]) -> dict[str, Any]:
        responses = dict(operation["responses"])
        responses["413"] = _error("request body too large")
        if secured:
            responses["401"] = _error("missing or wrong bearer token")
            return {**operation, "responses": responses, "security": [{"bearerToken": []}]}
        return {**operation, "responses": responses}

    def node_command(summary: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        operation: dict[str, Any] = {
            "summary": summary,
            "parameters": [_NODE_ID],
            "responses": {
                "202": _json(_ref("NodeCommandResult"), "accepted; the scheduler carries it out"),
                "400": _error("bad node id or body"),
                "404": _error("no node with this id"),
                "409": _error("the node's state does not allow it"),
                "503": _error("the scheduler cannot act now (not leading)"),
            },
        }
        if body is not None:
            operation["requestBody"] = body
        return {"post": mutating(operation)}

    # The optional body of the restart and replace commands: the operator's reason to go past the planner.
    force_body = FORCE_BODY
    document: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {
            "title": "es-mesos scheduler API",
            "version": version,
            "description": "Elasticsearch on Apache Mesos: cluster state, scaling, node operations, metrics.",
        },
        "paths": {
            "/v1/cluster": {
                "get": {"summary": "The cluster", "responses": {"200": _json(_ref("Cluster"), "the cluster")}}
            },
            "/v1/cluster/elasticsearchNodes": {
                "get": {
                    "summary": "Desired number of nodes",
                    "responses": {"200": _json(_ref("DesiredNodes"), "the desired number of nodes")},
                },
                "put": mutating(
                    {
                        "summary": "Scale the cluster",
                        "requestBody": {
                            "required": True,
                            "content": {"application/json": {"schema": _ref("DesiredNodes")}},
                        },
                        "responses": {
                            "200": _json(_ref("DesiredNodes"), "the new desired number of nodes"),
                            "400": _error(f"not a JSON object with an integer value from 1 to {MAX_NODES}"),
                            "409": _error("the scheduler refuses this count now"),
                            "503": _error("the scheduler cannot act now (not leading)"),
                        },
                    }
                ),
            },
            "/v1/cluster/endpoints": {
                "get": paged_operation(
                    "Addresses of running nodes (all by default; ?offset=&limit= pages the running nodes by node id)",
                    _json(_ref("Endpoints"), "HTTP and transport addresses of the running nodes of the page"),
                    "how many nodes are running",
                    _error,
                )
            },
            "/v1/tasks": {
                "get": paged_operation(
                    "One entry per node, ordered by node id; ?offset=&limit= for one page",
                    _json({"type": "array", "items": _ref("Task")}, "the nodes (the page asked for)"),
                    "how many nodes in all",
                    _error,
                )
            },
            "/v1/nodes/{node_id}": {
                "get": {
                    "summary": "One node with its history",
                    "parameters": [_NODE_ID],
                    "responses": {
                        "200": _json(_ref("Node"), "the node"),
                        "400": _error("not a node id"),
                        "404": _error("no node with this id"),
                    },
                }
            },
            "/v1/nodes/{node_id}/restart": node_command(
                "Queue a restart of the node in place: the planner starts it when safe (202); with "
                '{"force": "<why>"} restart at once, past the planner',
                force_body,
            ),
            "/v1/nodes/{node_id}/replace": node_command(
                "Queue a replace of a running node (same id and volumes, any agent): the planner starts it when "
                'safe, drained as its shutdown type says (202); with {"force": "<why>"}, or for a node not '
                "running, replace at once",
                force_body,
            ),
            "/v1/nodes/{node_id}/gone": node_command(
                "Declare the node's task dead for good, freeing its id",
                {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("GoneConfirmation")}},
                },
            ),
            **agent_paths(mutating, _error),
            **rollout_paths(mutating, _error),
            **configuration_paths(mutating, _error),
            "/v1/volumes": {
                "get": paged_operation(
                    "The external volumes of every node id ever used; ?offset=&limit= pages the volumes",
                    _json(_ref("VolumeInventory"), "the volume inventory (the page asked for) and its whole counts"),
                    "how many volumes in all",
                    _error,
                )
            },
            "/v1/profiles": {
                "get": {
                    "summary": "The storage profiles and what each means per volume driver",
                    "responses": {"200": _json({"type": "array", "items": _ref("Profile")}, "the profiles")},
                }
            },
            **proxy_paths(secured, _error),
            **security_paths(_error, secured),
            "/health": {
                "get": {
                    "summary": "Scheduler liveness",
                    "responses": {
                        "200": _json(_ref("Health"), "the scheduler loop is alive"),
                        "503": _json(_ref("Health"), "the scheduler loop is not alive: restart it"),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics (text format 0.0.4)",
                    "responses": {
                        "200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}
                    },
                }
            },
            "/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": _json({"type": "object"}, "the OpenAPI document")},
                }
            },
            "/": {
                "get": {
                    "summary": "The web UI",
                    "responses": {"200": {"description": "HTML page", "content": {"text/html": {"schema": {}}}}},
                }
            },
        },
        "components": {"schemas": _SCHEMAS},
    }
    if secured:
        document["components"]["securitySchemes"] = {"bearerToken": {"type": "http", "scheme": "bearer"}}
    return document
