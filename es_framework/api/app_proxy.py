"""The routes of the read-only Elasticsearch proxy ``/v1/es/...`` (:mod:`es_framework.api.proxy`),
behind the token when the app has one (:mod:`es_framework.api.asgi` checks it, GET included: a search
reads the cluster's data).

The usual paths are declared one by one, with their parameters, for the OpenAPI document; one
catch-all route takes the rest, so that the proxy's own rules answer every path under ``/v1/es/``:
400 naming what passes for another path, 405 with ``Allow`` for another method on a passed path.
The route is ``async`` only to read the body; picking the node and the request to it run in threads
of the proxy's own (:data:`PROXY_THREADS`), so a slow search never holds up the event loop, and slow
searches never take the threads ``/health`` and the other routes run in."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any

import requests
from anyio import CapacityLimiter, to_thread
from fastapi import Header, Path, Query, Request
from fastapi.responses import Response

from es_framework.api.app_routes import Group, err
from es_framework.api.asgi import error_response, expect
from es_framework.api.core import ApiCore
from es_framework.api.proxy import (
    INDEX_PATTERN,
    PASSED_TEXT,
    NoNodeError,
    ProxyAnswer,
    check_passed,
    forward,
    pick_node_http,
)
from es_framework.core.node_tls import NodeTrust

PREFIX = "/v1/es/"
#: Proxied requests under way at once; more wait for a thread (Starlette's own pool has 40).
PROXY_THREADS = 16
_HOST_HEADER = "X-ElasticSearch-Host"
Host = Annotated[
    str | None, Header(alias=_HOST_HEADER, description="pick the node by hostname, host:port or node name")
]
Q = Annotated[str | None, Query(description="a query in Lucene syntax (any other parameter is passed on too)")]
Index = Annotated[str, Path(pattern=f"^{INDEX_PATTERN}$", description="an index name or expression (logs-*, a,b)")]
#: The usual _cat APIs; any other _cat/<name> is passed on too (Elasticsearch judges it), so the enum is
#: the document's list of what to ask, not a check.
Cat = Annotated[
    str,
    Path(
        description="the _cat API (any _cat/<name> is passed on; these are the usual ones)",
        json_schema_extra={"enum": ["health", "nodes", "indices", "shards", "master", "allocation"]},
    ),
]


def proxy_allowed(method: str, path: str) -> str | None:
    """The methods a 405 under ``/v1/es/`` allows: the proxy's for a path it passes (GET, or GET and POST),
    not the catch-all route's; None for any other path."""
    if not path.startswith(PREFIX):
        return None
    refused = check_passed(method, path[len(PREFIX) :])
    return dict(refused.headers).get("Allow") if refused is not None and refused.status == 405 else None


def _either(description: str) -> dict[str, Any]:
    # The proxy's own {"error": "..."} or Elasticsearch's error object, passed through.
    return {"description": description, "content": {"application/json": {"schema": {"type": "object"}}}}


def _responses(text: bool = False) -> dict[int | str, dict[str, Any]]:
    content: dict[str, Any] = {"application/json": {"schema": {}}}
    if text:
        content["text/plain"] = {"schema": {"type": "string"}}
    return {
        "default": {"description": "Elasticsearch's answer, passed through", "content": content},
        400: _either(
            "a path or index the proxy does not pass (its message names what it passes), or Elasticsearch's refusal "
            "passed through"
        ),
        404: _either("no node matches X-ElasticSearch-Host, or Elasticsearch's answer (no such index)"),
        413: err("request body too large"),
        502: err("the node did not answer properly"),
        503: _either("no node is running, or Elasticsearch's answer (no master yet)"),
    }


def add_proxy_routes(
    router: Group,
    core: ApiCore,
    session: requests.Session,
    timeout: float,
    node_trust: Callable[[], NodeTrust | None],
) -> None:
    """The proxy's routes on the guarded ``router``."""
    turns = itertools.count()
    turn_lock = threading.Lock()
    # Proxied requests wait on the nodes (up to the proxy timeout each): their own threads, so that a flood
    # of slow searches cannot take every thread of Starlette's pool from /health and the other routes.
    limiter = CapacityLimiter(PROXY_THREADS)

    def pass_on(request: Request, path: str, body: bytes) -> Any:
        method, query, host = request.method, request.url.query, request.headers.get(_HOST_HEADER)
        with turn_lock:
            turn = next(turns)
        try:
            address = pick_node_http(core.nodes(), host, turn)
        except NoNodeError as missing:
            return error_response(missing.status, missing.message)
        return forward(
            session,
            address,
            method,
            path,
            query=query,
            body=body,
            content_type=request.headers.get("content-type"),
            timeout=timeout,
            trust=node_trust(),
        )

    async def proxy(request: Request) -> Response:
        path = request.url.path[len(PREFIX) :]
        refused = check_passed(request.method, path)
        if refused is not None:
            if refused.status == 405:
                # As every 405 of this API ends: what is allowed, also in the Allow header.
                allowed = dict(refused.headers).get("Allow", "")
                refused = replace(refused, error=f"{refused.error}; allowed: {allowed}")
            return _response(refused)
        body = await request.body()
        answer = await to_thread.run_sync(pass_on, request, path, body, limiter=limiter)
        return answer if isinstance(answer, Response) else _response(answer)

    def declare(path: str, summary: str, methods: tuple[str, ...], text: bool = False) -> Callable[[Any], Any]:
        def adding(endpoint: Callable[..., Any]) -> Callable[..., Any]:
            expect(lambda _: f"a path the proxy passes: {PASSED_TEXT}")(endpoint)
            for method in methods:
                wording = summary if method == "GET" else f"{summary} (query in the body)"
                router.add_api_route(
                    path,
                    endpoint,
                    methods=[method],
                    summary=wording,
                    response_class=Response,
                    responses=_responses(text),
                    openapi_extra=_BODY if method == "POST" else None,
                )
            return endpoint

        return adding

    @declare("/v1/es/_cluster/health", "Cluster health, proxied to a running node", ("GET",))
    @declare("/v1/es/_cluster/stats", "Cluster statistics, proxied to a running node", ("GET",))
    async def cluster_read(request: Request, host: Host = None) -> Response:
        return await proxy(request)

    @declare("/v1/es/_cat/{what}", "A _cat API (text; ?format=json for JSON), proxied", ("GET",), text=True)
    async def cat(request: Request, what: Cat, host: Host = None) -> Response:
        return await proxy(request)

    @declare("/v1/es/_search", "Search, proxied to a running node", ("GET", "POST"))
    @declare("/v1/es/_count", "Count, proxied to a running node", ("GET", "POST"))
    async def read_all(request: Request, q: Q = None, host: Host = None) -> Response:
        return await proxy(request)

    @declare("/v1/es/{index}/_search", "Search an index, proxied to a running node", ("GET", "POST"))
    @declare("/v1/es/{index}/_count", "Count an index, proxied to a running node", ("GET", "POST"))
    async def read_index(request: Request, index: Index, q: Q = None, host: Host = None) -> Response:
        return await proxy(request)

    # Everything else under /v1/es/: the proxy's refusals (400 for a path it does not pass, 405 with Allow).
    router.add_api_route(
        "/v1/es/{path:path}",
        proxy,
        methods=["GET", "POST", "PUT", "DELETE", "PATCH"],
        include_in_schema=False,
    )


#: The optional body of a proxied search or count: Elasticsearch's query DSL, passed on as it is.
_BODY = {"requestBody": {"required": False, "content": {"application/json": {"schema": {"type": "object"}}}}}


def _response(answer: ProxyAnswer) -> Response:
    if answer.error is not None:
        return error_response(answer.status, answer.error, answer.headers)
    return Response(answer.body, answer.status, dict(answer.headers), media_type=answer.content_type)
