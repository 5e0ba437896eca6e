"""The REST API's list and rollout routes (:func:`add_list_routes`, :func:`add_rollout_routes`), and
the small pieces every route module shares (:func:`answer`, :func:`err`, :func:`not_found`). Part of
the application :mod:`es_framework.api.app` builds; thin: the work is in
:mod:`es_framework.api.lists`, :mod:`es_framework.api.pages` and :mod:`es_framework.api.rollouts`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse

from es_framework.api.asgi import RefusedError, expect
from es_framework.api.core import ApiCore
from es_framework.api.lists import agents_page, endpoints_page, rollouts_page, volumes_page
from es_framework.api.models import Endpoints, Task
from es_framework.api.models_agents import Agent
from es_framework.api.models_rollouts import ForceBody, PredicatesBody, Rollout, Rollouts
from es_framework.api.models_storage import Profile, VolumeInventory
from es_framework.api.pages import MAX_LIMIT, TOTAL_HEADER, Headers, page
from es_framework.api.rollouts import (
    FORCE,
    FORCE_BODY,
    PREDICATES,
    PREDICATES_BODY,
    ROLLOUT_ID_PATTERN,
    VERBS,
    rollout_command,
    start_restart,
)
from es_framework.api.views import task_json, to_json

#: The page of a list (:mod:`es_framework.api.pages`): validated here for the document and the 400;
#: the route passes the query string on to the list's helper, which reads the same bounds.
Offset = Annotated[int | None, Query(ge=0, description="entries to skip (past the end: an empty page)")]
Limit = Annotated[
    int | None,
    Query(
        ge=1,
        le=MAX_LIMIT,
        description=f"at most this many entries (without it: all from offset on); at most {MAX_LIMIT}",
    ),
]
#: A list's helper (:mod:`es_framework.api.lists`): the core, the query string, the app's refuse.
ListBuilder = Callable[[ApiCore, str, Any], tuple[Any, Headers]]
RolloutId = Annotated[str, Path(pattern=ROLLOUT_ID_PATTERN)]
_NOT_NOW = "the scheduler cannot act now"


def paging(request: Request, offset: int | None, limit: int | None) -> str:
    """The query string the list helpers read (:func:`es_framework.api.pages.bounds`), written from the
    values pydantic validated (``limit=10.0`` is the integer 10, as JSON Schema says); a parameter given
    twice is still refused by the helper."""
    params = request.query_params
    if any(len(params.getlist(name)) > 1 for name in ("offset", "limit")):
        return str(request.url.query)
    given = {"offset": offset, "limit": limit}
    return "&".join(f"{name}={value}" for name, value in given.items() if value is not None)


def answer(status: int, payload: object, headers: Headers = ()) -> JSONResponse:
    """A JSON answer: the core's snapshots as :func:`es_framework.api.views.to_json` writes them."""
    return JSONResponse(to_json(payload), status, dict(headers))


#: Where the document keeps :class:`~es_framework.api.models.Error` (added by :func:`es_framework.api.app.document`).
ERROR_REF = {"$ref": "#/components/schemas/Error"}


def err(description: str) -> dict[str, Any]:
    """An error answer in the document: ``{"error": …}``. By reference rather than ``"model": Error``:
    FastAPI builds a pydantic validator for every model of every answer of every route when the app is
    built (a third of the time to build it), to generate the document only."""
    return {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}


def not_found(message: str) -> RefusedError:
    return RefusedError(404, message)


class Group:
    """Routes added straight to ``app`` with shared dependencies, answers and tags: an APIRouter without
    its include step (FastAPI includes a router as one opaque route, and :class:`~es_framework.api.asgi.Guard`
    reads each route's tags to know which need the token)."""

    def __init__(
        self, app: FastAPI, dependencies: list[Any], responses: dict[int | str, dict[str, Any]], tags: list[str]
    ) -> None:
        self._app = app
        self._dependencies = dependencies
        self._responses = responses
        self._tags = tags

    def add_api_route(self, path: str, endpoint: Callable[..., Any], methods: list[str], **options: Any) -> None:
        responses = {**self._responses, **(options.pop("responses", None) or {})}
        self._app.add_api_route(
            path,
            endpoint,
            methods=methods,
            dependencies=self._dependencies,
            responses=responses,
            tags=list(self._tags),
            **options,
        )

    def _route(self, method: str, path: str, options: dict[str, Any]) -> Callable[[Any], Any]:
        def adding(endpoint: Callable[..., Any]) -> Callable[..., Any]:
            self.add_api_route(path, endpoint, [method], **options)
            return endpoint

        return adding

    def get(self, path: str, **options: Any) -> Callable[[Any], Any]:
        return self._route("GET", path, options)

    def put(self, path: str, **options: Any) -> Callable[[Any], Any]:
        return self._route("PUT", path, options)

    def post(self, path: str, **options: Any) -> Callable[[Any], Any]:
        return self._route("POST", path, options)

    def delete(self, path: str, **options: Any) -> Callable[[Any], Any]:
        return self._route("DELETE", path, options)


def _paged(model: Any, description: str, total: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "model": model,
            "description": description,
            "headers": {TOTAL_HEADER: {"description": total, "schema": {"type": "integer"}}},
        },
        400: err("a bad offset or limit"),
    }


def add_list_routes(app: FastAPI, core: ApiCore) -> None:
    """``/v1/tasks``, ``/v1/cluster/endpoints``, ``/v1/agents``, ``/v1/volumes``, ``/v1/rollouts``
    (paged: ``?offset=&limit=``, ``X-Total-Count``) and ``/v1/profiles``."""

    def listed(request: Request, build: ListBuilder, offset: int | None, limit: int | None) -> JSONResponse:
        return answer(200, *build(core, paging(request, offset, limit), RefusedError))

    @app.get(
        "/v1/cluster/endpoints",
        summary="Addresses of running nodes (all by default; ?offset=&limit= pages the running nodes by node id)",
        responses=_paged(
            Endpoints, "HTTP and transport addresses of the running nodes of the page", "how many nodes are running"
        ),
    )
    def endpoints(request: Request, offset: Offset = None, limit: Limit = None) -> JSONResponse:
        return listed(request, endpoints_page, offset, limit)

    @app.get(
        "/v1/tasks",
        summary="One entry per node, ordered by node id; ?offset=&limit= for one page",
        responses=_paged(list[Task], "the nodes (the page asked for)", "how many nodes in all"),
    )
    def tasks(request: Request, offset: Offset = None, limit: Limit = None) -> JSONResponse:
        nodes, headers = page(paging(request, offset, limit), core.nodes(), RefusedError)
        return JSONResponse([task_json(node) for node in nodes], 200, dict(headers))

    @app.get(
        "/v1/agents",
        summary="Agents that offered since the scheduler started, and their agent-check blocks; ?offset=&limit= "
        "for one page",
        responses=_paged(list[Agent], "the agents, by agent id (the page asked for)", "how many agents in all"),
    )
    def agents(request: Request, offset: Offset = None, limit: Limit = None) -> JSONResponse:
        return listed(request, agents_page, offset, limit)

    @app.get(
        "/v1/volumes",
        summary="The external volumes of every node id ever used; ?offset=&limit= pages the volumes",
        responses=_paged(
            VolumeInventory,
            "the volume inventory (the page asked for) and its whole counts",
            "how many volumes in all",
        ),
    )
    def volumes(request: Request, offset: Offset = None, limit: Limit = None) -> JSONResponse:
        return listed(request, volumes_page, offset, limit)

    @app.get(
        "/v1/profiles",
        summary="The storage profiles and what each means per volume driver",
        responses={200: {"model": list[Profile], "description": "the profiles"}},
    )
    def profiles() -> JSONResponse:
        return answer(200, list(core.profiles()))

    @app.get(
        "/v1/rollouts",
        summary="The rollout under way (each step, what blocks the next, progress) and the last finished; "
        "?offset=&limit= pages the current rollout's steps and order (done and total stay the whole's)",
        responses=_paged(Rollouts, "the rollouts", "how many steps the current rollout has (0 without one)"),
    )
    def rollouts(request: Request, offset: Offset = None, limit: Limit = None) -> JSONResponse:
        return listed(request, rollouts_page, offset, limit)


def _raw(body: object) -> bytes:
    """A validated body as the rollout helpers read it (they were written for raw bodies)."""
    if body is None:
        return b""
    assert isinstance(body, ForceBody | PredicatesBody)
    return json.dumps(body.model_dump()).encode("utf-8")


def add_rollout_routes(router: Group, core: ApiCore) -> None:
    """``POST /v1/cluster/restart`` and the rollout commands, on the mutating ``router``."""

    def done(description: str) -> dict[str, Any]:
        return {"model": Rollout, "description": description}

    @router.post(
        "/v1/cluster/restart",
        summary="Restart every node one at a time (a rollout), each when the planner finds it safe",
        status_code=202,
        responses={
            202: done("the rollout was created; GET /v1/rollouts follows it"),
            400: err(
                "a body that is not the object described, or a predicate that is unknown or never disabled "
                "(nothing was created)"
            ),
            409: err("another rollout is under way, or no node runs"),
            503: err(_NOT_NOW),
        },
    )
    @expect(lambda _: f"an empty body, or {PREDICATES_BODY}")
    def restart_cluster(body: PredicatesBody | None = None) -> JSONResponse:
        return answer(*start_restart(core, RefusedError, _raw(body)))

    @router.post(
        "/v1/rollouts/{rollout_id}/predicates",
        summary="Disable predicates by name for the rollout's steps from now on (this list replaces the last; [] "
        "disables none); never elasticsearch_answered, node_running, skip_already_stopping or max_unavailable; "
        "logged at WARNING",
        responses={
            200: done("set; the rollout as it is now"),
            400: err(
                "not a rollout id, not the body described, or a predicate that is unknown or never disabled "
                "(nothing was changed)"
            ),
            404: err("no such rollout under way"),
            409: err("the rollout is finished or aborted"),
            503: err(_NOT_NOW),
        },
    )
    @expect(lambda _: PREDICATES_BODY)
    def predicates(rollout_id: RolloutId, body: PredicatesBody) -> JSONResponse:
        return answer(*rollout_command(core, rollout_id, PREDICATES, RefusedError, _raw(body)))

    @router.post(
        "/v1/rollouts/{rollout_id}/force",
        summary="Let the rollout's next step start once although the cluster's health predicates fail (never past "
        "maxUnavailable or a silent Elasticsearch); logged at WARNING with the reason",
        responses={
            200: done("granted; the next step the planner admits uses it"),
            400: err("not a rollout id, or no reason"),
            404: err("no such rollout under way"),
            409: err("the rollout is finished or aborted"),
            503: err(_NOT_NOW),
        },
    )
    @expect(lambda _: FORCE_BODY)
    def force(rollout_id: RolloutId, body: ForceBody) -> JSONResponse:
        return answer(*rollout_command(core, rollout_id, FORCE, RefusedError, _raw(body)))

    @router.post(
        "/v1/rollouts/{rollout_id}/{command}",
        summary="Pause, resume or abort the rollout (a step under way goes on to its end)",
        responses={
            200: done("done; the rollout as it is now"),
            400: err("not a rollout id, or no such command"),
            404: err("no such rollout under way"),
            409: err("the rollout is finished or aborted"),
            503: err(_NOT_NOW),
        },
    )
    def command(
        rollout_id: RolloutId,
        # Any word reaches the helper, which answers 404 for a command it does not know.
        command: Annotated[str, Path(json_schema_extra={"enum": list(VERBS)})],
    ) -> JSONResponse:
        return answer(*rollout_command(core, rollout_id, command, RefusedError))
