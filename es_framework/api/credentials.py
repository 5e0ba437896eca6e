"""The REST API's credentials routes beyond ``GET /v1/cluster/credentials``, as plain functions
(inputs in, ``(status, payload, headers)`` out) so that any web layer can serve them:

- ``POST /v1/cluster/credentials/rotate`` (behind the API token, like every POST; body optional and
  ignored): rotate the ``elastic`` password (:func:`rotate_answer`);
- ``GET /v1/executor/credentials`` (``Authorization: Bearer <task id>.<token>``, the task's own
  token, not the API token): the cluster's current password for a running executor whose probe was
  refused (:func:`executor_answer`).

The scheduler installs the service that does the work at leadership (:func:`install`;
:class:`es_framework.app.credentials_rotation.CredentialsService`); without one
(``--elasticsearchSecurity off``, or the user's own password) both answer 404. A rotation's state
writes run on the engine thread, through the API core's shell (``core.shell.call``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

NO_STORE = (("Cache-Control", "no-store"),)
ABSENT = "no generated credentials: --elasticsearchSecurity is not auto"

Answer = tuple[int, dict[str, Any], tuple[tuple[str, str], ...]]


class CredentialsService(Protocol):
    def rotate(self, run: Callable[..., Any]) -> tuple[int, dict[str, Any]]: ...

    def executor_credentials(self, authorization: str | None) -> tuple[int, dict[str, Any]]: ...


_service: CredentialsService | None = None


def install(service: CredentialsService | None) -> None:
    """The leading scheduler's credentials service (None: none, e.g. after leadership was lost)."""
    global _service  # noqa: PLW0603 - one cluster per scheduler process, set once per leadership
    _service = service


def installed() -> CredentialsService | None:
    """The service :func:`install` installed last."""
    return _service


def _shaped(status: int, payload: dict[str, Any]) -> Answer:
    # Errors in the API's shape ({"error": ...}); a success as it is, never cached (a password may be in it).
    if status >= 400:
        return status, {"error": str(payload.get("message", ""))}, ()
    return status, payload, NO_STORE


def rotate_answer(core: object) -> Answer:
    """``POST /v1/cluster/credentials/rotate`` for the API core ``core`` (its ``shell.call`` runs the
    state writes on the engine thread)."""
    service = _service
    if service is None:
        return 404, {"error": ABSENT}, ()
    call = getattr(getattr(core, "shell", None), "call", None)
    if call is None:
        return 503, {"error": "this API core cannot write the framework state"}, ()
    try:
        return _shaped(*service.rotate(call))
    except TimeoutError as error:
        return 503, {"error": f"the elastic password was not rotated: {error}"}, ()


class _WithHeaders(Protocol):
    def header(self, name: str) -> str | None: ...


def executor_answer(request: _WithHeaders) -> Answer:
    """``GET /v1/executor/credentials``: the task's token is the request's ``Authorization`` header."""
    service = _service
    if service is None:
        return 404, {"error": ABSENT}, ()
    return _shaped(*service.executor_credentials(request.header("Authorization")))
