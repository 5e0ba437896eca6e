"""What every request to the REST API goes through before and after its route (:mod:`es_framework.api.app`):
the rules the API keeps whatever the route, written once as one ASGI wrapper and FastAPI's exception
handlers.

- An error is a 4xx JSON answer ``{"error": "…"}`` that says what is wrong, and changes nothing:
  unknown path 404, wrong method 405 with ``Allow``, a body or parameter its model refuses 400 (not
  FastAPI's 422 ``{"detail": …}``), missing or wrong token 401 with ``WWW-Authenticate``, body over
  :data:`MAX_BODY_BYTES` 413. Nothing raises out of the app: an unexpected exception is logged with
  its traceback and answered 500.
- The token is checked here, once a route has matched path and method (so an unknown path is still
  a 404 and a wrong method a 405), before the body is read or parsed: mutating requests (PUT, POST,
  DELETE) and the routes marked :data:`GUARDED` (the Elasticsearch proxy, the credentials) need
  ``Authorization: Bearer <token>`` when the app has one; failures go to :class:`TokenFailureLog`.
- Every answer gets ``X-Content-Type-Options: nosniff`` and ``Cache-Control: no-store``; every request
  is logged at DEBUG (client, method, path, status), not on stderr.

Hand-written rather than Starlette middleware classes because the order matters (route, token,
size, then FastAPI parses the body) and one small wrapper states it; the routing itself is Starlette's.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from es_framework.api.core import ApiError
from es_framework.api.token_log import TokenFailureLog

logger = logging.getLogger("es_framework.api.app")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: Request bodies are a few bytes of JSON; anything this large is a mistake or an attack.
MAX_BODY_BYTES = 64 * 1024
MUTATING = ("PUT", "POST", "DELETE", "PATCH")
#: The route tag of a GET that needs the token too (it reads data or a secret).
GUARDED = "guarded"
_SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store")]


class RefusedError(Exception):
    """Raised by a route to answer ``{"error": message}`` with ``status``; changes nothing."""

    def __init__(self, status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


class _TooLargeError(HTTPException):
    """A body sent without Content-Length (chunked) that outgrew the limit while it was read. An
    HTTPException, so that FastAPI's body parsing passes it on as it is (to :func:`install_error_handlers`)."""

    def __init__(self) -> None:
        super().__init__(413, f"request body over the limit of {MAX_BODY_BYTES} bytes")


def error_response(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> JSONResponse:
    return JSONResponse({"error": message}, status, dict(headers))


#: What a route's body should be, by route endpoint (:func:`expect`): said after what pydantic refused.
_EXPECTED: dict[Callable[..., Any], Callable[[Mapping[str, Any]], str]] = {}


def expect(hint: Callable[[Mapping[str, Any]], str]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a route: a refused request is told ``hint(path parameters)``, the body it should send."""

    def marking(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        _EXPECTED[endpoint] = hint
        return endpoint

    return marking


def validation_message(error: RequestValidationError) -> str:
    """What pydantic refused, as one sentence per problem: where (``body.value``, ``path node_id``,
    ``query limit``), what is wrong, and what was given (shortened)."""
    parts = []
    for problem in error.errors():
        where = [str(part) for part in problem.get("loc", ())]
        if problem.get("type") == "json_invalid":
            detail = problem.get("ctx", {}).get("error", "")
            parts.append(f"the body is not valid JSON ({detail})")
            continue
        place = where[0] if where else "request"
        field = ".".join(where[1:])
        label = f"{place} {field}" if place in ("path", "query", "header") else ".".join(where) or "body"
        text = f"{label}: {problem.get('msg', 'invalid')}"
        if problem.get("type") != "missing":
            text += f", not {problem.get('input')!r}"[:80]
        parts.append(text)
    return "; ".join(parts)[:500] or "the request is not valid"


def install_error_handlers(app: FastAPI, allowed_for: Callable[[str, str], str | None] = lambda m, p: None) -> None:
    """Every refusal as ``{"error": …}``: FastAPI's own (404, 405, validation) included. ``allowed_for(method,
    path)`` may name what a 405 allows where the routes cannot tell (the proxy's catch-all route)."""

    async def refused(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RefusedError)
        if request.method in MUTATING and exc.status != 401:
            logger.info("%s %s refused: %s", request.method, request.url.path, exc.message)
        return error_response(exc.status, exc.message, exc.headers)

    async def core_refused(request: Request, exc: Exception) -> JSONResponse:
        # A read the core cannot serve now (e.g. 503 before the state is loaded).
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.message)

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        message = validation_message(exc)
        hint = _EXPECTED.get(request.scope.get("endpoint"))  # type: ignore[arg-type]
        if hint is not None:
            message += f"; expected {hint(request.path_params)}"
        if request.method in MUTATING:
            logger.info("%s %s refused: %s", request.method, request.url.path, message)
        return error_response(400, message)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        path, method = request.url.path, request.method
        if exc.status_code == 405:
            allowed = allowed_for(method, path) or ", ".join(sorted(_allowed(app, request.scope) - {"HEAD"}))
            message = f"{method} is not allowed on {path}; allowed: {allowed}"
            return error_response(405, message, (("Allow", allowed),))
        if exc.status_code == 404:
            return error_response(404, f"no such path: {path}")
        return error_response(exc.status_code, str(exc.detail))

    async def failed(request: Request, exc: Exception) -> JSONResponse:
        # Answered here (Starlette's outermost layer re-raises it): Guard logs it with its traceback.
        return error_response(500, "internal error in the scheduler's API; see the scheduler log")

    app.add_exception_handler(Exception, failed)
    app.add_exception_handler(RefusedError, refused)
    app.add_exception_handler(ApiError, core_refused)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)


def _allowed(app: FastAPI, scope: Scope) -> set[str]:
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return methods


def _route_tags(app: FastAPI, scope: Scope) -> list[str] | None:
    """The tags of the route that will serve ``scope`` (None when none matches path and method)."""
    for route in app.router.routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return list(getattr(route, "tags", None) or ())
    return None


class Guard:
    """The ASGI entry around the FastAPI ``app``: the rules in this module's docstring."""

    def __init__(self, app: FastAPI, token: str | None) -> None:
        self._app = app
        self._token = token.encode("utf-8") if token is not None else None
        self._token_log = TokenFailureLog(logger)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        client = scope.get("client")
        address = str(client[0]) if client else "unknown address"
        status: list[int] = [0]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", ()), *_SECURITY_HEADERS]
            await send(message)

        try:
            refusal = self._admit(scope, address)
            if refusal is None:
                await self._app(scope, _limited(receive), sending)
            else:
                await refusal(scope, receive, sending)
        except _TooLargeError:
            if status[0] == 0:
                too_large = error_response(413, f"request body over the limit of {MAX_BODY_BYTES} bytes")
                await too_large(scope, receive, sending)
        except Exception:
            logger.exception("%s %s failed", method, path)
            if status[0] == 0:
                failed = error_response(500, "internal error in the scheduler's API; see the scheduler log")
                await failed(scope, receive, sending)
        logger.debug("%s %s %s %d", address, method, path, status[0])

    def _admit(self, scope: Scope, address: str) -> JSONResponse | None:
        tags = _route_tags(self._app, scope)
        if tags is None:
            return None  # Starlette answers 404 or 405
        method = scope["method"]
        if method in MUTATING or GUARDED in tags:
            refused = self._check_token(scope, address)
            if refused is not None:
                return refused
        headers = dict(scope.get("headers") or ())
        length = headers.get(b"content-length", b"").decode("latin-1").strip()
        if length and not length.isdigit():
            return error_response(400, f"bad Content-Length {length[:20]!r}")
        if length and int(length) > MAX_BODY_BYTES:
            return error_response(413, f"request body of {length} bytes is over the limit of {MAX_BODY_BYTES}")
        if method in MUTATING and not scope["path"].startswith("/v1/es/"):
            # Every body here is JSON, whatever Content-Type says (curl -d sends a form's type).
            scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            scope["headers"].append((b"content-type", b"application/json"))
        return None

    def _check_token(self, scope: Scope, address: str) -> JSONResponse | None:
        if self._token is None:
            return None
        method, path = scope["method"], scope["path"]
        given = next((v for k, v in scope.get("headers") or () if k == b"authorization"), None)
        if given is None:
            self._token_log.refused(address, method, path, "no Authorization header")
            return error_response(
                401,
                "this request needs the header 'Authorization: Bearer <token>'",
                (("WWW-Authenticate", 'Bearer realm="es-mesos"'),),
            )
        scheme, _, credentials = given.decode("latin-1").strip().partition(" ")
        # Compare in constant time so the token cannot be guessed byte by byte from timings.
        if scheme.lower() != "bearer" or not hmac.compare_digest(credentials.strip().encode("latin-1"), self._token):
            # What was wrong, never what was given: it may be the token mistyped, or another system's secret.
            reason = "wrong bearer token" if scheme.lower() == "bearer" else "not a Bearer Authorization header"
            self._token_log.refused(address, method, path, reason)
            return error_response(
                401, "wrong bearer token", (("WWW-Authenticate", 'Bearer realm="es-mesos", error="invalid_token"'),)
            )
        return None


def _limited(receive: Receive) -> Receive:
    """``receive`` that stops a body without Content-Length (chunked) at :data:`MAX_BODY_BYTES`."""
    seen = 0

    async def receiving() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > MAX_BODY_BYTES:
                raise _TooLargeError
        return message

    return receiving
