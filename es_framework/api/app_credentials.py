"""The routes of the ``elastic`` password's rotation and of the executors' credentials
(:mod:`es_framework.api.credentials` does the work as plain functions; these routes only carry it):

- ``POST /v1/cluster/credentials/rotate``: behind the API token like every POST (the body is
  ignored);
- ``GET /v1/executor/credentials``: for executors only, authenticated with the task's own token
  (``Authorization: Bearer <task id>.<token>``), not the API token: so it is not a guarded route.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from es_framework.api.app_routes import Group, answer, err
from es_framework.api.core import ApiCore
from es_framework.api.credentials import executor_answer, rotate_answer


class Rotated(BaseModel):
    message: str
    username: str = Field(examples=["elastic"])


class ExecutorCredentials(BaseModel):
    username: str = Field(examples=["elastic"])
    password: str
    #: Also offered while a rotation is unsettled (Elasticsearch's answer was lost): the executor
    #: switches to whichever its node accepts.
    next_password: str | None = None


class _Headers:
    """A request's headers as :func:`es_framework.api.credentials.executor_answer` reads them."""

    def __init__(self, request: Request) -> None:
        self._request = request

    def header(self, name: str) -> str | None:
        return self._request.headers.get(name)


def add_credentials_routes(app: FastAPI, mutating: Group, core: ApiCore) -> None:
    @mutating.post(
        "/v1/cluster/credentials/rotate",
        summary="Rotate the elastic user's password (--elasticsearchSecurity auto)",
        description="A new password is recorded as pending, changed in Elasticsearch with the current one, "
        "then stored; running executors fetch it when their probe is refused. The request body is ignored.",
        responses={
            200: {"model": Rotated, "description": "Elasticsearch took the new password and the state holds it"},
            404: err("no generated credentials (--elasticsearchSecurity is not auto)"),
            409: err("another rotation is under way"),
            502: err("Elasticsearch refused the new password: the old one still works"),
            503: err("a step could not be completed: the message says which; the old password still works"),
        },
    )
    def rotate() -> JSONResponse:
        status, payload, _ = rotate_answer(core)  # Guard marks every answer no-store
        return answer(status, payload)

    @app.get(
        "/v1/executor/credentials",
        summary="The current elastic password, for a running executor (its task's token, not the API token)",
        description="Authorization: Bearer <task id>.<task token>, the token each task gets at launch as a "
        "Mesos SECRET variable. Never logged; the answer is not to be cached.",
        responses={
            200: {"model": ExecutorCredentials, "description": "the credentials"},
            401: err("no valid task token"),
            403: err("the state no longer holds that task"),
            404: err("no generated credentials (--elasticsearchSecurity is not auto)"),
        },
    )
    def executor_credentials(request: Request) -> JSONResponse:
        status, payload, _ = executor_answer(_Headers(request))
        return answer(status, payload)
