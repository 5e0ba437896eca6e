"""The HTTP layer of the demo node (development tool, not Elasticsearch): request parsing, Elasticsearch's
media-type check, the routing of paths to the modules of :mod:`es_framework.dev.demo_es.actions`, ``_cat``
rendering, and errors in Elasticsearch's shape. The supported paths are listed in the package docstring; paths under
``/_demo/`` are the nodes' internal API (cluster state publication, master actions, shard operations).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from es_framework.dev.demo_es.actions import (
    allocation,
    cat,
    cluster,
    indices,
    search,
    security_api,
    shards,
    shutdown,
    stats,
    writes,
)
from es_framework.dev.demo_es.cluster_state import to_json
from es_framework.dev.demo_es.documents import BulkItem, parse_bulk
from es_framework.dev.demo_es.errors import EsError, error_body
from es_framework.dev.demo_es.node_api import NodeAPI
from es_framework.dev.demo_es.security import BASIC_CHALLENGE, Security
from es_framework.dev.demo_es.tls_server import TlsServerMixin

logger = logging.getLogger("es_framework.dev.demo_es")

#: The media types that can carry ``compatible-with``; a server of major 8 accepts 7 and 8, of major 7 6 and 7.
COMPATIBLE_RE = re.compile(r"compatible-with\s*=\s*(\d+)")
SERVER_MAJOR = 8


def media_type_problem(accept: str | None, content_type: str | None, major: int = SERVER_MAJOR) -> str | None:
    """Why Elasticsearch ``major`` would refuse these headers (None: it would not); it accepts its own major and
    the one before (``RestCompatibleVersionHelper``)."""
    accept_version = COMPATIBLE_RE.search(accept or "")
    content_version = COMPATIBLE_RE.search(content_type or "")
    for header, match in (("Accept", accept_version), ("Content-Type", content_version)):
        if match is not None and int(match.group(1)) not in (major - 1, major):
            return (
                f"{header} version must be either version {major} or {major - 1}, but found "
                f"{match.group(1)}. {header}={accept if header == 'Accept' else content_type}"
            )
    if accept_version and content_version and accept_version.group(1) != content_version.group(1):
        return (
            "A compatible version is required on both Content-Type and Accept headers if either one has "
            "requested a compatible version and the compatible versions must match. "
            f"Accept={accept}, Content-Type={content_type}"
        )
    return None


@dataclass(frozen=True)
class Request:
    method: str
    segments: tuple[str, ...]  # URL-decoded path segments
    params: Mapping[str, str]
    raw: bytes

    def json(self) -> dict[str, Any]:
        if not self.raw.strip():
            return {}
        try:
            document = json.loads(self.raw)
        except ValueError as error:
            raise EsError(400, "x_content_parse_exception", f"[1:1] failed to parse request body: {error}") from None
        if not isinstance(document, dict):
            raise EsError(400, "x_content_parse_exception", "[1:1] request body must be an object")
        return document

    def document(self) -> dict[str, Any] | None:
        """A document to index: an object, or None (Elasticsearch answers 400 mapper_parsing_exception)."""
        try:
            document = json.loads(self.raw) if self.raw.strip() else None
        except ValueError:
            return None
        return document if isinstance(document, dict) else None


@dataclass(frozen=True)
class Response:
    status: int
    body: Any = None
    text: str | None = None  # _cat without format=json


Handler = Callable[[NodeAPI, Request], Response]


# ---------------------------------------------------------------------- filter_path


def filter_path(document: Any, expression: str) -> Any:
    """Elasticsearch's ``filter_path`` (comma list of dotted paths, ``*`` matches one key); lists are
    filtered element by element. Returns ``{}`` when nothing matches, as Elasticsearch does."""
    paths = [p.strip().split(".") for p in expression.split(",") if p.strip()]

    def pick(node: Any, patterns: list[list[str]]) -> Any:
        if any(not p for p in patterns):
            return node
        if isinstance(node, list):
            items = [pick(item, patterns) for item in node]
            return [item for item in items if item is not None] or None
        if not isinstance(node, dict):
            return None
        result = {}
        for key, value in node.items():
            rest = [p[1:] for p in patterns if p[0] in ("*", key)]
            if rest:
                picked = pick(value, rest)
                if picked is not None:
                    result[key] = picked
        return result or None

    return pick(document, paths) or {}


# ---------------------------------------------------------------------- _cat


def render_cat(rows: list[dict[str, Any]], params: Mapping[str, str]) -> Response:
    columns = list(rows[0]) if rows else []
    if params.get("h"):
        columns = [c.strip() for c in params["h"].split(",") if c.strip()]
    picked = [{c: row.get(c) for c in columns} for row in rows]
    if params.get("format") == "json":
        return Response(200, picked)
    cells = [[("" if row[c] is None else str(row[c])) for c in columns] for row in picked]
    if "v" in params and params.get("v") != "false":
        cells.insert(0, columns)
    widths = [max((len(r[i]) for r in cells), default=0) for i in range(len(columns))]
    lines = [" ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells]
    return Response(200, text="".join(line + "\n" for line in lines))


# ---------------------------------------------------------------------- routes


def _index_or_none(segments: tuple[str, ...]) -> str | None:
    return segments[0] if segments and not segments[0].startswith("_") else None


def _doc_write(node: NodeAPI, request: Request, index: str, doc_id: str | None, create: bool) -> Response:
    op_type = request.params.get("op_type")
    action = "create" if create or op_type == "create" else "index"
    status, body = writes.single_write(node, BulkItem(action, index, doc_id, request.document()))
    return Response(status, body)


def route(node: NodeAPI, request: Request) -> Response:
    """Dispatch one public or internal request; raises :class:`EsError` for errors."""
    method, seg, params = request.method, request.segments, request.params
    read = method in ("GET", "HEAD", "POST")
    n = len(seg)
    if n == 0:
        if method in ("GET", "HEAD"):
            return Response(200, cluster.root(node))
    elif seg[0] == "_demo":
        return _internal(node, request)
    elif seg[0] == "_cluster":
        sub = seg[1] if n > 1 else ""
        if sub == "health" and method in ("GET", "HEAD") and n <= 3:
            status, body = cluster.cluster_health(node, seg[2] if n == 3 else None, params)
            return Response(status, body)
        if sub == "stats" and n == 2 and method == "GET":
            return Response(200, stats.cluster_stats(node))
        if sub == "settings" and n == 2:
            if method == "GET":
                return Response(200, cluster.get_cluster_settings(node, params))
            if method == "PUT":
                return Response(200, cluster.put_cluster_settings(node, request.json()))
        if sub == "allocation" and n == 3 and seg[2] == "explain" and method in ("GET", "POST"):
            return Response(200, allocation.allocation_explain(node, request.json()))
        if sub == "voting_config_exclusions" and n == 2:
            if method == "POST":
                allocation.add_voting_exclusions(node, params)
                return Response(200, None)
            if method == "DELETE":
                allocation.clear_voting_exclusions(node, params)
                return Response(200, None)
        if sub == "state" and method == "GET" and n <= 4:
            return Response(200, cluster.cluster_state(node, seg[2] if n >= 3 else None))
    elif seg[:2] == ("_security", "user") and n in (3, 4) and seg[-1] == "_password" and method in ("POST", "PUT"):
        return Response(200, security_api.change_password(node, seg[2] if n == 4 else None, request.raw))
    elif seg[0] == "_nodes" and 2 <= n <= 3 and seg[-1] == "shutdown":
        target = seg[1] if n == 3 else None
        if method == "GET":
            return Response(200, shutdown.get_shutdown(node, target, params))
        if target is not None and method == "PUT":
            return Response(200, shutdown.put_shutdown(node, target, request.raw))
        if target is not None and method == "DELETE":
            return Response(200, shutdown.delete_shutdown(node, target))
    elif seg[0] == "_nodes" and method == "GET":
        if n == 2 and seg[1] == "stats":
            return Response(200, cat.nodes_stats(node))
        # /_nodes, /_nodes/_all, /_nodes/_all/http (what clients sniff with): every node, all its info.
        every_node = 2 <= n <= 3 and seg[1] in ("_all", "_local", "_master")
        a_metric = n == 2 and seg[1] in ("http", "settings")
        if n == 1 or every_node or a_metric:
            return Response(200, cluster.nodes(node))
    elif seg[0] == "_cat" and method == "GET" and n >= 2:
        target = seg[2] if n == 3 else None
        if seg[1] == "indices":
            return render_cat(cat.cat_indices(node, target), params)
        if seg[1] == "shards":
            return render_cat(cat.cat_shards(node, target), params)
        simple = {
            "allocation": cat.cat_allocation,
            "nodes": cat.cat_nodes,
            "master": cat.cat_master,
            "health": cat.cat_health,
        }
        if seg[1] in simple and n == 2:
            return render_cat(simple[seg[1]](node), params)
    elif seg[0] == "_bulk" and n == 1 and method in ("POST", "PUT"):
        return _bulk(node, request, None)
    elif seg[0] in ("_search", "_count") and n == 1 and read:
        return _read(node, request, None, seg[0])
    elif seg[0] == "_refresh" and n == 1 and method in ("GET", "POST"):
        return Response(200, search.refresh(node, None))
    elif _index_or_none(seg) is not None:
        index = seg[0]
        if n == 1:
            if method == "PUT":
                return Response(200, indices.create_index(node, index, request.json()))
            if method == "DELETE":
                return Response(200, indices.delete_index(node, index))
            if method in ("GET", "HEAD"):
                return Response(200, indices.get_index(node, index))
        action = seg[1] if n > 1 else ""
        if action in ("_search", "_count") and n == 2 and read:
            return _read(node, request, index, action)
        if action == "_bulk" and n == 2 and method in ("POST", "PUT"):
            return _bulk(node, request, index)
        if action == "_refresh" and n == 2 and method in ("GET", "POST"):
            return Response(200, search.refresh(node, index))
        if action == "_settings" and n == 2:
            if method == "PUT":
                return Response(200, indices.put_index_settings(node, index, request.json()))
            if method == "GET":
                return Response(
                    200, {k: {"settings": v["settings"]} for k, v in indices.get_index(node, index).items()}
                )
        if action == "_doc" and n == 2 and method == "POST":
            return _doc_write(node, request, index, None, create=False)
        if action == "_doc" and n == 3:
            if method in ("PUT", "POST"):
                return _doc_write(node, request, index, seg[2], create=False)
            if method in ("GET", "HEAD"):
                status, body = search.get_doc(node, index, seg[2])
                return Response(status, body)
            if method == "DELETE":
                status, body = writes.single_write(node, BulkItem("delete", index, seg[2], None))
                return Response(status, body)
        if action == "_create" and n == 3 and method in ("PUT", "POST"):
            return _doc_write(node, request, index, seg[2], create=True)
    raise EsError(
        400 if method != "HEAD" else 404,
        "illegal_argument_exception",
        f"demo node has no endpoint [{method} /{'/'.join(seg)}] (it is not Elasticsearch; see its package docstring)",
    )


def _read(node: NodeAPI, request: Request, index: str | None, what: str) -> Response:
    body = request.json()
    if what == "_count":
        return Response(200, search.count(node, index, body, request.params))
    return Response(200, search.search(node, index, body, request.params))


def _bulk(node: NodeAPI, request: Request, index: str | None) -> Response:
    started = time.monotonic()
    items = parse_bulk(request.raw, index)
    results = writes.write(node, items) if items else []
    errors = any("error" in next(iter(r.values())) for r in results)
    return Response(200, {"took": int((time.monotonic() - started) * 1000), "errors": errors, "items": results})


def _internal(node: NodeAPI, request: Request) -> Response:
    seg = request.segments
    if seg == ("_demo", "state") and request.method == "GET":
        state = node.last_accepted()
        if state is None:
            raise EsError(404, "resource_not_found_exception", "no cluster state yet")
        return Response(200, to_json(state))
    if seg == ("_demo", "publish") and request.method == "POST":
        return Response(200, node.accept_published(request.json()))
    if len(seg) == 3 and seg[1] == "master" and request.method == "POST":
        return Response(200, {"version": node.master_action_here(seg[2], request.json())})
    if seg == ("_demo", "shard_stats"):
        return Response(200, shards.local_shard_stats(node))
    if len(seg) == 5 and seg[1] == "shard" and request.method == "POST":
        index_uuid, shard, operation = seg[2], int(seg[3]), seg[4]
        handlers: dict[str, Callable[[NodeAPI, str, int, Mapping[str, Any]], Any]] = {
            "_write": lambda n, u, s, b: {"results": shards.primary_write(n, u, s, b)},
            "_replicate": shards.replicate,
            "_recovery": shards.recovery_source,
            "_search": shards.shard_search,
        }
        if operation in handlers:
            return Response(200, handlers[operation](node, index_uuid, shard, request.json()))
    raise EsError(400, "illegal_argument_exception", f"no internal endpoint [{request.method} /{'/'.join(seg)}]")


# ---------------------------------------------------------------------- server


class DemoHTTPServer(TlsServerMixin, ThreadingHTTPServer):
    """The HTTP port; HTTPS with ``xpack.security.http.ssl`` (clients are not asked for a certificate: HTTP's
    ``client_authentication`` defaults to ``none``), and basic authentication with security on (:mod:`.security`)."""

    daemon_threads = True
    allow_reuse_address = True
    tls_label = "http"

    def __init__(self, address: tuple[str, int], node: NodeAPI, security: Security | None = None) -> None:
        self.node = node
        self.security = security or Security()
        if self.security.http is not None:
            self.ssl_context = self.security.http.server_context(client_auth=False)
        super().__init__(address, DemoRequestHandler)


class DemoRequestHandler(BaseHTTPRequestHandler):
    server: DemoHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("[%s] http %s " + format, self.server.node.name, self.address_string(), *args)

    def admit(self, segments: tuple[str, ...]) -> None:
        """Raise unless the request may be served here: with security on, public paths need the ``elastic``
        user's credentials; the internal paths (the nodes' own traffic) are served on the transport port instead
        when transport TLS is on, and here without it (like Elasticsearch's plain transport, unauthenticated)."""
        security = self.server.security
        if segments and segments[0] == "_demo":
            if security.transport is not None:
                raise EsError(403, "security_exception", "internal paths are served on the transport port only")
            return
        accepted = self.server.node.last_accepted()  # a changed elastic password is in the cluster state
        password_hash = accepted.elastic_password_hash if accepted is not None else None
        security.authenticate(self.headers.get("Authorization"), self.path, password_hash)

    def _send(self, response: Response, *, head: bool = False) -> None:
        if response.text is not None:
            body = response.text.encode("utf-8")
            content_type = "text/plain; charset=UTF-8"
        else:
            body = (
                b"" if response.body is None else (json.dumps(response.body, ensure_ascii=False) + "\n").encode("utf-8")
            )
            content_type = "application/json"
        self.send_response(response.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if response.status == 401:
            self.send_header("WWW-Authenticate", BASIC_CHALLENGE)
        self.send_header("X-elastic-product", "Elasticsearch")
        self.end_headers()
        if not head:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                # The client gave up waiting (a timeout on its side): nothing to answer to.
                self.wfile.write(body)

    def _handle(self) -> None:
        head = self.command == "HEAD"
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        problem = media_type_problem(
            self.headers.get("Accept"), self.headers.get("Content-Type"), int(self.server.node.version.split(".")[0])
        )
        if problem is not None:
            header = "Content-Type" if problem.startswith("Content-Type") else "Accept"
            body = error_body(
                400,
                "media_type_header_exception",
                f"Invalid media-type value on headers [{header}]",
                {"type": "status_exception", "reason": problem},
            )
            self._send(Response(400, body), head=head)
            return
        url = urlsplit(self.path)
        segments = tuple(unquote(s) for s in url.path.split("/") if s)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        request = Request(self.command, segments, params, raw)
        try:
            self.admit(segments)
            response = route(self.server.node, request)
            if params.get("filter_path") and response.text is None and response.body is not None:
                response = Response(response.status, filter_path(response.body, params["filter_path"]))
        except EsError as error:
            response = Response(error.status, error.body())
        except Exception as error:
            logger.exception("[%s] %s %s failed", self.server.node.name, self.command, self.path)
            response = Response(500, error_body(500, "exception", f"demo node error: {error}"))
        self._send(response, head=head)

    do_GET = _handle
    do_HEAD = _handle
    do_POST = _handle
    do_PUT = _handle
    do_DELETE = _handle
