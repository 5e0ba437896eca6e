"""The REST API and web UI as one WSGI application (stdlib only), served by the scheduler.

:class:`ApiApp` routes a request to a handler that reads snapshots from an :class:`ApiCore` or
asks it for a command, and answers JSON. The rules every request follows:

- An error is a 4xx JSON answer ``{"error": "…"}`` that says what is wrong, and changes nothing:
  unknown path 404, wrong method 405 with ``Allow``, bad JSON or wrong types 400, missing or wrong
  token 401 with ``WWW-Authenticate``, body over :data:`MAX_BODY_BYTES` 413. Nothing raises out of
  the app: an unexpected exception is logged with its traceback and answered 500.
- Mutating requests (PUT, POST, DELETE) need ``Authorization: Bearer <token>`` when the app has a token;
  without one the app warns at construction that the API is open.
- Each mutating request is logged with what was asked, the node id, and the outcome.

``/v1/es/...``: read-only requests (health, stats, ``_cat``, search and count) passed to a running
node, behind the token when the app has one (:mod:`es_framework.api.proxy`).
"""

from __future__ import annotations

import hmac
import itertools
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from html import escape
from http import HTTPStatus
from importlib import resources
from typing import Any, Protocol

import requests

from es_framework import __version__
from es_framework.api.agents import clear_agent_failures
from es_framework.api.configuration import BODY, put_configuration
from es_framework.api.core import ApiCore, ApiError
from es_framework.api.credentials import executor_answer
from es_framework.api.credentials import rotate_answer as rotate
from es_framework.api.lists import agents_page, cluster_answer, endpoints_page, rollouts_page, volumes_page
from es_framework.api.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from es_framework.api.metrics import render_metrics
from es_framework.api.openapi import GONE_CONFIRMATION, openapi_document
from es_framework.api.pages import page
from es_framework.api.proxy import PASSED, NoNodeError, ProxyAnswer, check_passed, forward, pick_node_http
from es_framework.api.rollouts import force_reason, rollout_command, start_restart
from es_framework.api.token_log import TokenFailureLog
from es_framework.api.views import node_json, task_json, to_json
from es_framework.core.node_tls import NodeTrust

logger = logging.getLogger(__name__)

#: Request bodies are a few bytes of JSON; anything this large is a mistake or an attack.
MAX_BODY_BYTES = 64 * 1024
_JSON = "application/json"
#: RFC 7468 names no media type; this is the common one for a PEM certificate (curl, browsers save it).
PEM_CONTENT_TYPE = "application/x-pem-file"
CA_ABSENT = (
    "the cluster has no certificate authority: the scheduler creates one with --elasticsearchSecurity auto "
    "(the default for a new cluster outside local mode; a cluster whose framework state records off stays off)"
)
_MUTATING = ("PUT", "POST", "DELETE")


class StartResponse(Protocol):
    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None, /) -> Any: ...


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = _JSON
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: str
    environ: Mapping[str, Any]
    #: Values captured from the path (the node id, as text).
    params: tuple[str, ...] = ()

    def header(self, name: str) -> str | None:
        value = self.environ.get("HTTP_" + name.upper().replace("-", "_"))
        return value if isinstance(value, str) else None


def json_response(status: int, payload: object, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    body = json.dumps(to_json(payload), ensure_ascii=False, allow_nan=False).encode("utf-8")
    return Response(status, body, _JSON, headers)


def error_response(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    return json_response(status, {"error": message}, headers)


class _RefusedError(Exception):
    """Raised inside handlers to answer with an error; the app turns it into a response."""

    def __init__(self, status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.response = error_response(status, message, headers)


def _client(request: Request) -> str:
    """The client's address as the server saw it (not X-Forwarded-For, which the client writes)."""
    return str(request.environ.get("REMOTE_ADDR") or "unknown address")


def _node_id(text: str) -> int:
    if not re.fullmatch(r"[1-9][0-9]*", text):
        raise _RefusedError(400, f"{text[:40]!r} is not a node id: node ids are positive integers")
    if len(text) > 18:
        # A valid id, but larger than any id ever allocated (and than the core should be asked about).
        raise _RefusedError(404, f"no node {text[:40]}")
    return int(text)


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


Handler = Callable[[Request], Response]


class ApiApp:
    """The WSGI application. ``token`` (if given) guards every PUT, POST and DELETE."""

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
        self._core = core
        #: The cluster CA's certificate (PEM) for GET /v1/cluster/ca.pem, None while there is none.
        self._ca_certificate = ca_certificate
        #: --elasticsearchSecurity auto: the proxy's HTTPS trust and GET /v1/cluster/credentials.
        self._node_trust = node_trust
        self._token = token.encode("utf-8") if token is not None else None
        self._token_log = TokenFailureLog(logger)
        self._proxy_timeout = proxy_timeout
        self._session = session or requests.Session()
        self._turns = itertools.count()
        self._turn_lock = threading.Lock()
        self._ui = resources.files("es_framework.api").joinpath("ui.html").read_text(encoding="utf-8")
        self._openapi = json.dumps(openapi_document(secured=token is not None, version=__version__)).encode("utf-8")
        if token is None:
            logger.warning(
                "the REST API has no token: anyone who reaches its port can scale the cluster and "
                "restart, replace or declare nodes gone"
            )
        # Each route: a path pattern and its handler per method; patterns capture the node id.
        self._routes: list[tuple[re.Pattern[str], dict[str, Handler]]] = [
            (re.compile(r"/"), {"GET": self._ui_page}),
            (re.compile(r"/health"), {"GET": self._health}),
            (re.compile(r"/metrics"), {"GET": self._metrics}),
            (re.compile(r"/v1/openapi\.json"), {"GET": self._openapi_json}),
            (re.compile(r"/v1/cluster"), {"GET": self._cluster}),
            (
                re.compile(r"/v1/cluster/elasticsearchNodes"),
                {"GET": self._get_desired, "PUT": self._put_desired},
            ),
            (
                re.compile(r"/v1/cluster/configuration"),
                {
                    "GET": lambda request: json_response(200, self._core.configuration()),
                    "PUT": lambda request: json_response(
                        *put_configuration(self._core, self._json_object(request, BODY))
                    ),
                },
            ),
            (re.compile(r"/v1/cluster/endpoints"), {"GET": self._endpoints}),
            (re.compile(r"/v1/cluster/ca\.pem"), {"GET": self._ca_pem}),
            (re.compile(r"/v1/cluster/credentials"), {"GET": self._credentials}),
            (re.compile(r"/v1/cluster/credentials/rotate"), {"POST": lambda r: json_response(*rotate(self._core))}),
            (re.compile(r"/v1/executor/credentials"), {"GET": lambda r: json_response(*executor_answer(r))}),
            (re.compile(r"/v1/tasks"), {"GET": self._tasks}),
            (re.compile(r"/v1/nodes/([^/]+)"), {"GET": self._node}),
            (re.compile(r"/v1/nodes/([^/]+)/restart"), {"POST": self._restart}),
            (re.compile(r"/v1/nodes/([^/]+)/replace"), {"POST": self._replace}),
            (re.compile(r"/v1/nodes/([^/]+)/gone"), {"POST": self._gone}),
            (re.compile(r"/v1/cluster/restart"), {"POST": self._start_restart}),
            (re.compile(r"/v1/rollouts"), {"GET": lambda request: self._listed(request, rollouts_page)}),
            (re.compile(r"/v1/rollouts/([^/]+)/([^/]+)"), {"POST": self._rollout_command}),
            (re.compile(r"/v1/agents"), {"GET": lambda request: self._listed(request, agents_page)}),
            (re.compile(r"/v1/agents/([^/]+)/failures"), {"DELETE": self._clear_agent}),
            (re.compile(r"/v1/volumes"), {"GET": self._volumes}),
            (re.compile(r"/v1/profiles"), {"GET": self._profiles}),
        ]
        # Read-only requests only (es_framework/api/proxy.py), each with its methods; the rest is a 400.
        proxy: Handler = self._proxy
        self._routes += [(re.compile(rf"/v1/es/({p.pattern})"), dict.fromkeys(m, proxy)) for p, m in PASSED]
        self._routes.append(
            (re.compile(r"/v1/es/(.*)"), dict.fromkeys(("GET", "POST", "PUT", "DELETE", "PATCH"), proxy))
        )

    # --- WSGI entry point -------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        path = str(environ.get("PATH_INFO", "") or "/")
        try:
            response = self._dispatch(method, path, environ)
        except Exception:
            logger.exception("%s %s failed", method, path)
            response = error_response(500, "internal error in the scheduler's API; see the scheduler log")
        headers = [
            ("Content-Type", response.content_type),
            ("Content-Length", str(len(response.body))),
            ("X-Content-Type-Options", "nosniff"),
            ("Cache-Control", "no-store"),
            *response.headers,
        ]
        start_response(f"{response.status} {_phrase(response.status)}", headers)
        return [b"" if method == "HEAD" else response.body]

    def _dispatch(self, method: str, path: str, environ: Mapping[str, Any]) -> Response:
        for pattern, handlers in self._routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            handler = handlers.get(method)
            if handler is None:
                allowed = ", ".join(sorted(handlers))
                return error_response(
                    405, f"{method} is not allowed on {path}; allowed: {allowed}", (("Allow", allowed),)
                )
            request = Request(method, path, str(environ.get("QUERY_STRING", "")), environ, match.groups())
            try:
                if method in _MUTATING:
                    self._check_token(request)
                return handler(request)
            except _RefusedError as refused:
                # A refused token was logged already, rate-limited (a scanner must not flood the log).
                if method in _MUTATING and refused.response.status != 401:
                    logger.info("%s %s refused: %s", method, path, refused)
                return refused.response
            except ApiError as refused:
                # A read the core cannot serve now (e.g. 503 before the state is loaded).
                return error_response(refused.status, refused.message)
        return error_response(404, f"no such path: {path}")

    # --- request helpers --------------------------------------------------------------------

    def _check_token(self, request: Request) -> None:
        if self._token is None:
            return
        given = request.header("Authorization")
        if given is None:
            self._token_log.refused(_client(request), request.method, request.path, "no Authorization header")
            raise _RefusedError(
                401,
                "this request needs the header 'Authorization: Bearer <token>'",
                (("WWW-Authenticate", 'Bearer realm="es-mesos"'),),
            )
        scheme, _, credentials = given.strip().partition(" ")
        # Compare in constant time so the token cannot be guessed byte by byte from timings.
        if scheme.lower() != "bearer" or not hmac.compare_digest(credentials.strip().encode("utf-8"), self._token):
            # What was wrong, never what was given: it may be the token mistyped, or another system's secret.
            reason = "wrong bearer token" if scheme.lower() == "bearer" else "not a Bearer Authorization header"
            self._token_log.refused(_client(request), request.method, request.path, reason)
            raise _RefusedError(
                401,
                "wrong bearer token",
                (("WWW-Authenticate", 'Bearer realm="es-mesos", error="invalid_token"'),),
            )

    def _body(self, request: Request) -> bytes:
        text = str(request.environ.get("CONTENT_LENGTH") or "0").strip()
        if not text.isdigit():
            raise _RefusedError(400, f"bad Content-Length {text!r}")
        length = int(text)
        if length > MAX_BODY_BYTES:
            raise _RefusedError(413, f"request body of {length} bytes is over the limit of {MAX_BODY_BYTES}")
        stream = request.environ.get("wsgi.input")
        return stream.read(length) if stream is not None and length else b""

    def _json_object(self, request: Request, what: str) -> dict[str, Any]:
        raw = self._body(request)
        if not raw.strip():
            raise _RefusedError(400, f"the body must be a JSON object: {what}")
        try:
            value = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError) as problem:
            raise _RefusedError(400, f"the body is not valid JSON ({problem}); expected {what}") from None
        if not isinstance(value, dict):
            raise _RefusedError(400, f"the body must be a JSON object: {what}")
        return value

    def _command(self, request: Request, verb: str, action: Callable[[int], str]) -> Response:
        node_id = _node_id(request.params[0])
        try:
            message = action(node_id)
        except ApiError as refused:
            logger.warning("%s node %d refused (%d): %s", verb, node_id, refused.status, refused.message)
            return error_response(refused.status, refused.message)
        logger.info("%s node %d accepted: %s", verb, node_id, message)
        return json_response(202, {"node_id": node_id, "message": message})

    # --- handlers ---------------------------------------------------------------------------

    def _ui_page(self, request: Request) -> Response:
        page = self._ui.replace("{{cluster_name}}", escape(self._core.cluster().cluster_name))
        return Response(
            200,
            page.encode("utf-8"),
            "text/html; charset=utf-8",
            (
                (
                    "Content-Security-Policy",
                    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                    "connect-src 'self'; img-src 'self' data:",
                ),
            ),
        )

    def _health(self, request: Request) -> Response:
        health = self._core.health()
        return json_response(200 if health.alive else 503, health)

    def _metrics(self, request: Request) -> Response:
        return Response(200, render_metrics(self._core.metrics()).encode("utf-8"), METRICS_CONTENT_TYPE)

    def _ca_pem(self, request: Request) -> Response:
        # The certificate only (public): clients verify the nodes with it, so it needs no token.
        pem = self._ca_certificate()
        if pem is None:
            return error_response(404, CA_ABSENT)
        return Response(200, pem.encode("ascii"), PEM_CONTENT_TYPE)

    def _credentials(self, request: Request) -> Response:
        # The elastic user's password: behind the token even though it is a GET.
        self._check_token(request)
        trust = self._node_trust()
        if trust is None:
            return error_response(404, "no generated credentials: --elasticsearchSecurity is not auto")
        answer = {"username": trust.user, "password": trust.password}
        return json_response(200, answer, (("Cache-Control", "no-store"),))

    def _openapi_json(self, request: Request) -> Response:
        return Response(200, self._openapi)

    def _cluster(self, request: Request) -> Response:
        return json_response(200, cluster_answer(self._core))

    def _listed(self, request: Request, answer: Callable[[ApiCore, str, Any], tuple[Any, Any]]) -> Response:
        # One page of a list that grows with the cluster (es_framework/api/lists.py).
        return json_response(200, *answer(self._core, request.query, _RefusedError))

    def _get_desired(self, request: Request) -> Response:
        return json_response(200, {"value": self._core.cluster().desired_nodes})

    def _put_desired(self, request: Request) -> Response:
        expected = 'a JSON object {"value": N} with an integer N ≥ 1'
        body = self._json_object(request, expected)
        extra = sorted(set(body) - {"value"})
        if extra:
            raise _RefusedError(400, f"unknown field(s) {', '.join(extra)}; expected {expected}")
        if "value" not in body:
            raise _RefusedError(400, f"missing field 'value'; expected {expected}")
        value = body["value"]
        # bool is an int in Python; true must not mean one node.
        if isinstance(value, bool) or not isinstance(value, int):
            raise _RefusedError(400, f"value must be an integer, not {json.dumps(value)}")
        if value < 1:
            raise _RefusedError(400, f"value must be at least 1, not {value}")
        before = self._core.cluster().desired_nodes
        try:
            self._core.set_desired_nodes(value)
        except ApiError as refused:
            logger.warning("scale from %d to %d nodes refused (%d): %s", before, value, refused.status, refused.message)
            return error_response(refused.status, refused.message)
        logger.info("scale from %d to %d nodes accepted", before, value)
        return json_response(200, {"value": value})

    def _endpoints(self, request: Request) -> Response:
        return self._listed(request, endpoints_page)

    def _tasks(self, request: Request) -> Response:
        nodes, headers = page(request.query, self._core.nodes(), _RefusedError)
        return json_response(200, [task_json(node) for node in nodes], headers)

    def _node(self, request: Request) -> Response:
        node_id = _node_id(request.params[0])
        node = self._core.node(node_id)
        if node is None:
            raise _RefusedError(404, f"no node {node_id}")
        return json_response(200, node_json(node))

    def _volumes(self, request: Request) -> Response:
        return self._listed(request, volumes_page)

    def _profiles(self, request: Request) -> Response:
        return json_response(200, list(self._core.profiles()))

    def _clear_agent(self, request: Request) -> Response:
        self._body(request)
        return json_response(*clear_agent_failures(self._core, request.params[0], _RefusedError))

    def _respond(self, request: Request, answer: tuple[int, Any]) -> Response:
        self._body(request)  # enforce the size limit; the body means nothing here
        return json_response(*answer)

    def _rollout_command(self, request: Request) -> Response:
        params, body = request.params, self._body(request)
        return self._respond(request, rollout_command(self._core, params[0], params[1], _RefusedError, body))

    def _start_restart(self, request: Request) -> Response:
        return json_response(*start_restart(self._core, _RefusedError, self._body(request)))

    def _restart(self, request: Request) -> Response:
        force = force_reason(self._body(request), _RefusedError)
        return self._command(request, "restart", lambda node_id: self._core.restart_node(node_id, force=force))

    def _replace(self, request: Request) -> Response:
        force = force_reason(self._body(request), _RefusedError)
        return self._command(request, "replace", lambda node_id: self._core.replace_node(node_id, force=force))

    def _gone(self, request: Request) -> Response:
        node_id = _node_id(request.params[0])
        phrase = GONE_CONFIRMATION.format(node_id=node_id)
        # Freeing the id of a node that still runs lets two nodes write one volume: make the
        # operator type the node's id into the sentence, so no copied request can do it by accident.
        expected = f'{{"confirm": "{phrase}"}}, confirming that node {node_id}\'s task is dead for good'
        body = self._json_object(request, expected)
        if set(body) != {"confirm"} or body["confirm"] != phrase:
            raise _RefusedError(400, f"declaring node {node_id} gone needs the body {expected}")
        return self._command(request, "declare gone", self._core.declare_gone)

    def _proxy(self, request: Request) -> Response:
        # A search reads the cluster's data: the token guards GET here too (the dispatcher checks the others).
        if request.method not in _MUTATING:
            self._check_token(request)
        path = request.params[0]
        answer = check_passed(request.method, path)
        if answer is None:
            with self._turn_lock:
                turn = next(self._turns)
            try:
                address = pick_node_http(self._core.nodes(), request.header("X-ElasticSearch-Host"), turn)
            except NoNodeError as missing:
                return error_response(missing.status, missing.message)
            body = self._body(request)
            content_type = request.environ.get("CONTENT_TYPE")
            answer = forward(
                self._session,
                address,
                request.method,
                path,
                query=request.query,
                body=body,
                content_type=str(content_type) if content_type else None,
                timeout=self._proxy_timeout,
                trust=self._node_trust(),
            )
        return _proxy_response(answer)


def _proxy_response(answer: ProxyAnswer) -> Response:
    if answer.error is not None:
        return error_response(answer.status, answer.error, answer.headers)
    return Response(answer.status, answer.body, answer.content_type, answer.headers)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
