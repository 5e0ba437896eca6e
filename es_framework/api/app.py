"""The REST API and web UI: a FastAPI application (Starlette underneath) served by the scheduler
(:mod:`es_framework.api.server`), its OpenAPI document generated from the routes and the pydantic
models (:mod:`es_framework.api.models`) at ``GET /v1/openapi.json``.

:class:`ApiApp` is the ASGI application: :class:`~es_framework.api.asgi.Guard` (token, size limit,
errors as ``{"error": …}``, see :mod:`es_framework.api.asgi`) around the routes built here. A route
reads a snapshot from an :class:`ApiCore` or asks it for a command, through the pure helpers
(:mod:`~es_framework.api.lists`, :mod:`~es_framework.api.rollouts`, :mod:`~es_framework.api.agents`,
:mod:`~es_framework.api.configuration`, :mod:`~es_framework.api.proxy`), and answers JSON. Each
mutating request is logged with what was asked, the node id, and the outcome.

Routes that call the core are plain ``def``: Starlette runs them in its thread pool, so a slow
core or a proxied search (``/v1/es/...``, :mod:`es_framework.api.app_proxy`) never holds up
``/health`` on the event loop.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from html import escape
from importlib import resources
from typing import Annotated, Any

import requests
from fastapi import FastAPI, Path, Request, Security
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPBearer
from pydantic import BeforeValidator

from es_framework import __version__
from es_framework.api.agents import AGENT_ID_PATTERN, clear_agent_failures
from es_framework.api.app_credentials import add_credentials_routes
from es_framework.api.app_proxy import add_proxy_routes, proxy_allowed
from es_framework.api.app_routes import Group, add_list_routes, add_rollout_routes, answer, err, not_found
from es_framework.api.asgi import GUARDED, MAX_BODY_BYTES, Guard, RefusedError, expect, install_error_handlers
from es_framework.api.configuration import BODY, put_configuration
from es_framework.api.core import ApiCore, ApiError
from es_framework.api.lists import cluster_answer
from es_framework.api.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from es_framework.api.metrics import render_metrics
from es_framework.api.models import (
    GONE_CONFIRMATION,
    Cluster,
    Credentials,
    DesiredNodes,
    Error,
    GoneConfirmation,
    Health,
    Node,
    NodeCommandResult,
)
from es_framework.api.models_agents import AgentFailuresCleared
from es_framework.api.models_configuration import Configuration, ConfigurationChange, ConfigurationChanged
from es_framework.api.models_rollouts import ForceBody
from es_framework.api.rollouts import FORCE_BODY
from es_framework.api.views import node_json
from es_framework.core.node_tls import NodeTrust
from es_framework.core.operations import MAX_NODES

logger = logging.getLogger(__name__)

__all__ = ["MAX_BODY_BYTES", "PEM_CONTENT_TYPE", "ApiApp"]

#: RFC 7468 names no media type; this is the common one for a PEM certificate (curl, browsers save it).
PEM_CONTENT_TYPE = "application/x-pem-file"
PEM_EXAMPLE = "-----BEGIN CERTIFICATE-----\nMIID...\n-----END CERTIFICATE-----\n"
CA_ABSENT = (
    "the cluster has no certificate authority: the scheduler creates one with --elasticsearchSecurity auto "
    "(the default for a new cluster outside local mode; a cluster whose framework state records off stays off)"
)
_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
    "img-src 'self' data:"
)
#: Larger than any node id ever allocated (and than the core should be asked about): no such node.
_NODE_ID_DIGITS = 18


#: What an id longer than :data:`_NODE_ID_DIGITS` digits is read as: a valid id, but larger than any id
#: ever allocated (and than the core should be asked about): a 404, like any id with no node.
_TOO_LARGE = 10**_NODE_ID_DIGITS


def _node_id(text: object) -> object:
    # The id as written, or a 400: pydantic alone would take "01" or " 1" for node 1.
    if isinstance(text, str) and not re.fullmatch(r"[1-9][0-9]*", text):
        raise ValueError("node ids are positive integers")
    if isinstance(text, str):
        return _TOO_LARGE if len(text) > _NODE_ID_DIGITS else int(text)
    return text


# Path's constraint before the validator: in the other order FastAPI writes "ge" into the document, not "minimum".
NodeId = Annotated[int, Path(ge=1, description="the node id (1, 2, …)"), BeforeValidator(_node_id)]
_NOT_LEADING = "the scheduler cannot act now (not leading)"


class ApiApp:
    """The ASGI application. ``token`` (if given) guards every PUT, POST and DELETE, the proxy and the
    credentials; without one the app warns at construction that the API is open."""

    def __init__(
        self,
        core: ApiCore,
        *,
        token: str | None = None,
        proxy_timeout: float = 10.0,
        session: requests.Session | None = None,
        ca_certificate: Callable[[], str | None] = lambda: None,
        node_trust: Callable[[], NodeTrust | None] = lambda: None,
    ) -> None:
        if token is not None and not token.strip():
            raise ValueError("the API token must not be empty (give none to leave the API open)")
        if token is None:
            logger.warning(
                "the REST API has no token: anyone who reaches its port can scale the cluster and "
                "restart, replace or declare nodes gone"
            )
        self.fastapi = build(
            core,
            secured=token is not None,
            proxy_timeout=proxy_timeout,
            session=session or requests.Session(),
            ca_certificate=ca_certificate,
            node_trust=node_trust,
        )
        self._entry = Guard(self.fastapi, token)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._entry(scope, receive, send)


def build(
    core: ApiCore,
    *,
    secured: bool,
    proxy_timeout: float,
    session: requests.Session,
    ca_certificate: Callable[[], str | None],
    node_trust: Callable[[], NodeTrust | None],
) -> FastAPI:
    """The FastAPI application: every route, and the document generated from them."""
    app = FastAPI(
        title="es-mesos scheduler API",
        version=__version__,
        description="Elasticsearch on Apache Mesos: cluster state, scaling, node operations, metrics.",
        openapi_url=None,
        # /v1/tasks/ is no path of this API (a 404), not a redirect to /v1/tasks.
        redirect_slashes=False,
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app, proxy_allowed)
    # The token's scheme, declared on the guarded routes only when the app has a token (only then are
    # they refused without one); checked by Guard before the route runs, not by FastAPI.
    bearer = [Security(HTTPBearer(scheme_name="bearerToken", auto_error=False))] if secured else []
    token_error: dict[int | str, dict[str, Any]] = {401: err("missing or wrong bearer token")} if secured else {}
    mutating = Group(app, bearer, {413: err("request body too large"), **token_error}, [])
    guarded = Group(app, bearer, token_error, [GUARDED])
    ui = resources.files("es_framework.api").joinpath("ui.html").read_text(encoding="utf-8")

    @app.get("/", summary="The web UI", response_class=HTMLResponse)
    def ui_page() -> HTMLResponse:
        page = ui.replace("{{cluster_name}}", escape(core.cluster().cluster_name))
        return HTMLResponse(page, headers={"Content-Security-Policy": _CSP})

    @app.get(
        "/health",
        summary="Scheduler liveness",
        responses={
            200: {"model": Health, "description": "the scheduler loop is alive"},
            503: {"model": Health, "description": "the scheduler loop is not alive: restart it"},
        },
    )
    def health() -> JSONResponse:
        alive = core.health()
        return answer(200 if alive.alive else 503, alive)

    @app.get(
        "/metrics",
        summary="Prometheus metrics (text format 0.0.4)",
        response_class=Response,
        responses={200: {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    def metrics() -> Response:
        return Response(render_metrics(core.metrics()), media_type=METRICS_CONTENT_TYPE)

    @app.get("/v1/openapi.json", summary="This document", responses={200: {"description": "the OpenAPI document"}})
    async def openapi_json() -> Response:
        return Response(document(app, secured), media_type="application/json")

    @app.get("/v1/cluster", summary="The cluster", responses={200: {"model": Cluster, "description": "the cluster"}})
    def cluster() -> JSONResponse:
        return answer(200, cluster_answer(core))

    @app.get(
        "/v1/cluster/elasticsearchNodes",
        summary="Desired number of nodes",
        responses={200: {"model": DesiredNodes, "description": "the desired number of nodes"}},
    )
    def get_desired() -> JSONResponse:
        return answer(200, {"value": core.cluster().desired_nodes})

    @mutating.put(
        "/v1/cluster/elasticsearchNodes",
        summary="Scale the cluster",
        responses={
            200: {"model": DesiredNodes, "description": "the new desired number of nodes"},
            400: err("not a JSON object with an integer value from 1 to the most nodes a cluster may have"),
            409: err("the scheduler refuses this count now"),
            503: err(_NOT_LEADING),
        },
    )
    @expect(lambda _: f'a JSON object {{"value": N}} with an integer N from 1 to {MAX_NODES}')
    def put_desired(body: DesiredNodes) -> JSONResponse:
        before = core.cluster().desired_nodes
        try:
            core.set_desired_nodes(body.value)
        except ApiError as refused:
            logger.warning(
                "scale from %d to %d nodes refused (%d): %s", before, body.value, refused.status, refused.message
            )
            raise
        logger.info("scale from %d to %d nodes accepted", before, body.value)
        return answer(200, {"value": body.value})

    @app.get(
        "/v1/cluster/configuration",
        summary="The flags a running scheduler may change, their values now and at start, the overrides",
        responses={200: {"model": Configuration, "description": "the configuration"}},
    )
    def get_configuration() -> JSONResponse:
        return answer(200, core.configuration())

    @mutating.put(
        "/v1/cluster/configuration",
        summary="Change flags of the running scheduler (validated as on the command line); the nodes are restarted "
        "one at a time by a configuration rollout",
        responses={
            200: {"model": ConfigurationChanged, "description": "no rollout was needed: no change, or no node"},
            202: {"model": ConfigurationChanged, "description": "persisted; the rollout restarts the nodes with it"},
            400: err("not a JSON object, an unknown flag, one that needs a restart, an invalid value"),
            409: err("a rollout is in progress, or the nodes cannot reach the target version"),
            503: err(_NOT_LEADING),
        },
    )
    @expect(lambda _: BODY)
    def change_configuration(body: ConfigurationChange) -> JSONResponse:  # type: ignore[valid-type]
        # ConfigurationChange is built from CHANGEABLE_FLAGS (models_configuration.py): a class mypy cannot see.
        return answer(*put_configuration(core, body.model_dump(exclude_unset=True)))  # type: ignore[attr-defined]

    @app.get(
        "/v1/cluster/ca.pem",
        summary="The certificate of the cluster's certificate authority (PEM), never its key",
        description="With --elasticsearchSecurity auto the scheduler creates the cluster's CA once; clients verify "
        "the nodes' certificates (HTTPS and the transport) with this one. No token needed: a certificate is public.",
        response_class=Response,
        responses={
            200: {
                "description": "the CA certificate",
                "content": {
                    PEM_CONTENT_TYPE: {
                        "schema": {"type": "string", "pattern": "^-----BEGIN CERTIFICATE-----"},
                        "example": PEM_EXAMPLE,
                    }
                },
            },
            404: err("no certificate authority (--elasticsearchSecurity off)"),
        },
    )
    def ca_pem() -> Response:
        pem = ca_certificate()
        if pem is None:
            raise RefusedError(404, CA_ABSENT)
        return Response(pem.encode("ascii"), media_type=PEM_CONTENT_TYPE)

    @guarded.get(
        "/v1/cluster/credentials",
        summary="The elastic user's generated password (--elasticsearchSecurity auto), behind the token",
        description="Clients of the nodes authenticate as this user, over HTTPS verified with GET "
        "/v1/cluster/ca.pem. Never logged; the answer is not to be cached.",
        responses={
            200: {"model": Credentials, "description": "the credentials"},
            401: err("missing or wrong bearer token"),
            404: err("no generated credentials (--elasticsearchSecurity is not auto)"),
        },
    )
    def credentials() -> JSONResponse:
        # The elastic user's password: behind the token even though it is a GET (Guard checks it).
        trust = node_trust()
        if trust is None:
            raise RefusedError(404, "no generated credentials: --elasticsearchSecurity is not auto")
        return answer(200, {"username": trust.user, "password": trust.password})

    @app.get(
        "/v1/nodes/{node_id}",
        summary="One node with its history",
        responses={
            200: {"model": Node, "description": "the node"},
            400: err("not a node id"),
            404: err("no node with this id"),
        },
    )
    def node(request: Request, node_id: NodeId) -> JSONResponse:
        view = core.node(node_id) if node_id < _TOO_LARGE else None
        if view is None:
            raise not_found(f"no node {str(request.path_params['node_id'])[:40]}")
        return answer(200, node_json(view))

    def command(verb: str, node_id: int, action: Callable[[int], str]) -> JSONResponse:
        if node_id >= _TOO_LARGE:
            raise not_found(f"no node with an id of more than {_NODE_ID_DIGITS} digits")
        try:
            message = action(node_id)
        except ApiError as refused:
            logger.warning("%s node %d refused (%d): %s", verb, node_id, refused.status, refused.message)
            raise
        logger.info("%s node %d accepted: %s", verb, node_id, message)
        return answer(202, {"node_id": node_id, "message": message})

    node_answers: dict[int | str, dict[str, Any]] = {
        202: {"model": NodeCommandResult, "description": "accepted; the scheduler carries it out"},
        400: err("bad node id or body"),
        404: err("no node with this id"),
        409: err("the node's state does not allow it"),
        503: err(_NOT_LEADING),
    }

    @mutating.post(
        "/v1/nodes/{node_id}/restart",
        summary='Queue a restart of the node in place: the planner starts it when safe (202); with {"force": '
        '"<why>"} restart at once, past the planner',
        responses=node_answers,
        status_code=202,
    )
    @expect(lambda _: f"an empty body, or {FORCE_BODY}")
    def restart(node_id: NodeId, body: ForceBody | None = None) -> JSONResponse:
        force = body.force.strip() if body is not None else None
        return command("restart", node_id, lambda n: core.restart_node(n, force=force))

    @mutating.post(
        "/v1/nodes/{node_id}/replace",
        summary="Queue a replace of a running node (same id and volumes, any agent): the planner starts it when "
        'safe, drained as its shutdown type says (202); with {"force": "<why>"}, or for a node not running, '
        "replace at once",
        responses=node_answers,
        status_code=202,
    )
    @expect(lambda _: f"an empty body, or {FORCE_BODY}")
    def replace(node_id: NodeId, body: ForceBody | None = None) -> JSONResponse:
        force = body.force.strip() if body is not None else None
        return command("replace", node_id, lambda n: core.replace_node(n, force=force))

    @mutating.post(
        "/v1/nodes/{node_id}/gone",
        summary="Declare the node's task dead for good, freeing its id",
        responses=node_answers,
        status_code=202,
    )
    @expect(lambda params: f'{{"confirm": "{GONE_CONFIRMATION.format(node_id=params.get("node_id"))}"}}')
    def gone(node_id: NodeId, body: GoneConfirmation) -> JSONResponse:
        phrase = GONE_CONFIRMATION.format(node_id=node_id)
        # Freeing the id of a node that still runs lets two nodes write one volume: make the operator
        # type the node's id into the sentence, so no copied request can do it by accident.
        if body.confirm != phrase:
            expected = f'{{"confirm": "{phrase}"}}, confirming that node {node_id}\'s task is dead for good'
            raise RefusedError(400, f"declaring node {node_id} gone needs the body {expected}")
        return command("declare gone", node_id, core.declare_gone)

    @mutating.delete(
        "/v1/agents/{agent_id}/failures",
        summary="Lift the agent's agent-check block once it is fixed: nodes may launch there at once",
        responses={
            200: {
                "model": AgentFailuresCleared,
                "description": "lifted, or there was no block in force (the message says which)",
            },
            400: err("not an agent id"),
            404: err("no agent with this id offered to this scheduler or failed an agent check"),
            503: err("the scheduler cannot act now"),
        },
    )
    @expect(lambda _: "an agent id: Mesos agent ids look like <uuid>-S<n>")
    def clear_agent(
        agent_id: Annotated[str, Path(description="the Mesos agent id", pattern=AGENT_ID_PATTERN)],
    ) -> JSONResponse:
        return answer(*clear_agent_failures(core, agent_id, RefusedError))

    add_list_routes(app, core)
    add_rollout_routes(mutating, core)
    add_credentials_routes(app, mutating, core)
    add_proxy_routes(guarded, core, session, proxy_timeout, node_trust)
    return app


#: The document by ``secured``: the routes and models are the same for every app (only the core, the
#: token and the proxy's session differ), and generating it takes a quarter of a second.
_DOCUMENTS: dict[bool, bytes] = {}


def document(app: FastAPI, secured: bool) -> bytes:
    """The generated document, with FastAPI's 422 answers taken out: this API answers 400 ``{"error": …}``
    (:mod:`es_framework.api.asgi`), declared on each route that validates anything."""
    if secured not in _DOCUMENTS:
        generated = app.openapi()
        for operations in generated.get("paths", {}).values():
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
                # An optional body (a node's restart, the cluster restart) says so, not by omission.
                if "requestBody" in operation:
                    operation["requestBody"].setdefault("required", False)
                if operation.get("tags") == [GUARDED]:
                    del operation["tags"]
        schemas = generated.setdefault("components", {}).setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        schemas["Error"] = Error.model_json_schema()
        _DOCUMENTS[secured] = json.dumps(generated).encode("utf-8")
    return _DOCUMENTS[secured]
