"""The operator's part of the OpenAPI document (:mod:`es_framework.api.openapi`): the mode and the
waiting nodes of ``GET /v1/cluster``, and the read-only Elasticsearch proxy ``/v1/es/...``
(:mod:`es_framework.api.proxy`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from es_framework.api.openapi_storage import ref

_TIME = {"type": "string", "format": "date-time", "description": "ISO 8601, UTC"}

OPERATOR_SCHEMAS: dict[str, Any] = {
    "Waiting": {
        "type": "object",
        "required": ["node_ids", "missing", "since", "reasons", "message"],
        "properties": {
            "node_ids": {
                "type": "array",
                "items": {"type": "integer", "minimum": 1},
                "description": "the lowest missing node ids (at most 20)",
            },
            "missing": {"type": "integer", "minimum": 1, "description": "how many nodes are missing in all"},
            "since": {**_TIME, "description": "when this set of nodes started waiting (ISO 8601, UTC)"},
            "reasons": {
                "type": "array",
                "description": "offers declined since then, by first failing rule; most first (empty before the "
                "first decline)",
                "items": {
                    "type": "object",
                    "required": ["rule", "count", "last_message"],
                    "properties": {
                        "rule": {"type": "string"},
                        "count": {"type": "integer", "minimum": 1},
                        "last_message": {"type": "string", "description": "why the last such offer was declined"},
                    },
                },
            },
            "message": {"type": "string", "description": "the same in one sentence, as the scheduler logs it"},
        },
    },
}

#: Properties of ``Cluster``, also required.
CLUSTER_OPERATOR_PROPERTIES: dict[str, Any] = {
    "demo_nodes": {
        "type": "boolean",
        "description": "whether the nodes run the demo node (a development tool, not Elasticsearch): local mode "
        "without --elasticsearchBinaryUrl, or nodes that report the demo node's version",
    },
    "mode_label": {
        "type": "string",
        "description": "the mode in a few words, as the web UI's header shows it (e.g. local mode · demo nodes, "
        "not Elasticsearch; development cluster; Mesos (production))",
    },
    "waiting": {
        "allOf": [ref("Waiting")],
        "nullable": True,
        "description": "the missing nodes waiting for an offer and why no offer fits (decline reasons by count "
        "since they started waiting); null when no node is missing",
    },
}

_HOST_HEADER = {
    "name": "X-ElasticSearch-Host",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "pick the node by hostname, host:port or node name",
}
_INDEX = {
    "name": "index",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[a-z0-9*][a-z0-9._*,+-]*$"},
    "description": "an index name or expression (logs-*, a,b)",
}
_CAT = {
    "name": "what",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "enum": ["health", "nodes", "indices", "shards", "master", "allocation"]},
    "description": "the _cat API (any _cat/<name> is passed on; these are the usual ones)",
}


def proxy_paths(secured: bool, error: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    """``/v1/es/...``: every passed path and method; ``secured`` when the token guards them."""

    def either(description: str) -> dict[str, Any]:
        # The proxy's own {"error": "..."} or Elasticsearch's error object, passed through.
        return {"description": description, "content": {"application/json": {"schema": {"type": "object"}}}}

    def passed(
        summary: str, parameters: list[dict[str, Any]], *, body: bool = False, text: bool = False
    ) -> dict[str, Any]:
        content: dict[str, Any] = {"application/json": {"schema": {}}}
        if text:
            content["text/plain"] = {"schema": {"type": "string"}}
        responses: dict[str, Any] = {
            "default": {"description": "Elasticsearch's answer, passed through", "content": content},
            "400": either(
                "a path or index the proxy does not pass (its message names what it passes), or "
                "Elasticsearch's refusal passed through"
            ),
            "404": either("no node matches X-ElasticSearch-Host, or Elasticsearch's answer (no such index)"),
            "502": error("the node did not answer properly"),
            "503": either("no node is running, or Elasticsearch's answer (no master yet)"),
        }
        operation: dict[str, Any] = {"summary": summary, "parameters": [*parameters, _HOST_HEADER]}
        if body:
            operation["requestBody"] = {
                "required": False,
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
            responses["413"] = error("request body too large")
        if secured:
            responses["401"] = error("missing or wrong bearer token")
            operation["security"] = [{"bearerToken": []}]
        return {**operation, "responses": responses}

    query = [{"name": "q", "in": "query", "required": False, "schema": {"type": "string"}}]

    def read(summary: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "get": passed(summary, parameters),
            "post": passed(f"{summary} (query in the body)", parameters, body=True),
        }

    return {
        "/v1/es/_cluster/health": {"get": passed("Cluster health, proxied to a running node", [])},
        "/v1/es/_cluster/stats": {"get": passed("Cluster statistics, proxied to a running node", [])},
        "/v1/es/_cat/{what}": {"get": passed("A _cat API (text; ?format=json for JSON), proxied", [_CAT], text=True)},
        "/v1/es/_search": read("Search, proxied to a running node", query),
        "/v1/es/_count": read("Count, proxied to a running node", query),
        "/v1/es/{index}/_search": read("Search an index, proxied to a running node", [_INDEX, *query]),
        "/v1/es/{index}/_count": read("Count an index, proxied to a running node", [_INDEX, *query]),
    }
