"""HTTP front of the development master (development tool, not for production).

Endpoints:

- ``GET /version`` – ``{"version": "1.12.0", ...}`` (pymesos reads it before subscribing).
- ``POST /api/v1/scheduler`` – the Mesos v1 scheduler API. SUBSCRIBE answers ``200`` with a
  chunked RecordIO stream and ``Mesos-Stream-Id``; other calls ``202``, or ``400``/``403``/``415``
  with Mesos' plain-text reason.
- ``POST /api/v1/executor`` – the Mesos v1 executor API (SUBSCRIBE stream, UPDATE, MESSAGE) as an
  agent serves it, when the master's executor backend runs real executor processes (see
  :mod:`.processes`); ``404`` otherwise.
- ``POST /api/v1`` – the v1 operator API: ``MARK_AGENT_GONE`` (``200``: the agent's tasks become
  ``TASK_GONE_BY_OPERATOR`` and it can never come back) and maintenance (``UPDATE_``/``GET_MAINTENANCE_SCHEDULE``,
  ``GET_MAINTENANCE_STATUS``, ``START_``/``STOP_MAINTENANCE``, see :mod:`.maintenance_ops`: ``200``, a GET's
  JSON, or ``400`` with Mesos' plain text); ``501`` for any other call.
- ``GET /devcluster/state`` – frameworks, agents, tasks, offers and messages as JSON.
- ``POST /devcluster/agents/<id>/lose|return|gone``
- ``POST /devcluster/tasks/<id>/fail|finish`` – optional body ``{"message": ..., "framework_id": ...}``.
- ``POST /devcluster/executors/<agent id>/<executor id>/message`` – body ``{"data": <base64>}``:
  the executor sends its framework a message.
- ``POST /devcluster/frameworks/<id>/disconnect`` (close its stream) and ``.../error``
  (body ``{"message": ...}``).

Control answers are JSON: ``{"ok": true}``, or ``{"error": ...}`` with 404 (unknown id) or 409.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import queue
import select
import socket
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from es_framework.dev.devcluster.calls import validate_call
from es_framework.dev.devcluster.errors import CallError
from es_framework.dev.devcluster.executors import ExecutorAPI, ExecutorBackend
from es_framework.dev.devcluster.frameworks import Subscription
from es_framework.dev.devcluster.maintenance_ops import OPERATOR_CALLS as MAINTENANCE_CALLS
from es_framework.dev.devcluster.recordio import EventStream

logger = logging.getLogger(__name__)

SCHEDULER_PATH = "/api/v1/scheduler"
EXECUTOR_PATH = "/api/v1/executor"
OPERATOR_PATH = "/api/v1"

_request = threading.local()


def subscribing_peer() -> tuple[str, int] | None:
    """Inside :meth:`MasterEndpoints.subscribe` called by this front: the ``(host, port)`` the
    subscribing scheduler connected from (so a tool that wraps ``subscribe`` can tell which local
    process opened the stream); ``None`` elsewhere."""
    peer = getattr(_request, "peer", None)
    return (str(peer[0]), int(peer[1])) if peer else None


class MasterEndpoints(Protocol):
    """What the HTTP front serves: the development master (:class:`~.master.DevMaster`)."""

    @property
    def backend(self) -> ExecutorBackend: ...

    def version_json(self) -> dict[str, Any]: ...

    def state(self) -> dict[str, Any]: ...

    def subscribe(self, call: dict[str, Any]) -> Subscription: ...

    def stream_closed(self, sub: Subscription) -> None: ...

    def handle_call(self, call: object, stream_id: str | None) -> None: ...

    def lose_agent(self, agent_id: str) -> None: ...

    def return_agent(self, agent_id: str) -> None: ...

    def gone_agent(self, agent_id: str) -> None: ...

    def fail_task(self, task_id: str, *, message: str | None = None, framework_id: str | None = None) -> None: ...

    def finish_task(self, task_id: str, *, message: str | None = None, framework_id: str | None = None) -> None: ...

    def send_executor_message(
        self, agent_id: str, executor_id: str, data: bytes, *, framework_id: str | None = None
    ) -> None: ...

    def maintenance_call(self, call: dict[str, Any]) -> dict[str, Any] | None: ...

    def disconnect_framework(self, framework_id: str) -> None: ...

    def send_error(self, framework_id: str, message: str) -> None: ...


class MasterHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], master: MasterEndpoints) -> None:
        self.master = master
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, MasterRequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client killed mid-request (a scheduler SIGKILLed by a test or the chaos runner) resets its
        # connection: what a real master logs at most as a closed socket, not a traceback on stderr.
        if isinstance(sys.exc_info()[1], ConnectionError):
            logger.debug("connection from %s reset by the client", client_address)
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """Cut every open connection (keep-alive call connections, event streams)."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


def _peer_closed(connection: socket.socket) -> bool:
    try:
        readable, _, _ = select.select([connection], [], [], 0)
        return bool(readable) and connection.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class MasterRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: MasterHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    @property
    def master(self) -> MasterEndpoints:
        return self.server.master

    # ------------------------------------------------------------------ plumbing

    def _reply(self, status: int, body: bytes = b"", content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        if body:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _json(self, status: int, document: object) -> None:
        self._reply(status, json.dumps(document).encode("utf-8"), "application/json")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _call_object(self, body: bytes, into: str) -> dict[str, Any] | None:
        """The body as a JSON object, or None after answering 400 with Mesos' "Failed to parse body into <into>"."""
        try:
            call = json.loads(body.decode("utf-8"))
            if not isinstance(call, dict):
                raise ValueError("the call must be a JSON object")
        except (ValueError, UnicodeDecodeError) as error:
            self._reply(400, f"Failed to parse body into {into}: {error}".encode())
            return None
        return call

    # ------------------------------------------------------------------ routes

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/version":
            self._json(200, self.master.version_json())
        elif path == "/devcluster/state":
            self._json(200, self.master.state())
        elif path == SCHEDULER_PATH:
            self._reply(405, b"Expecting one of { 'POST' }, but received 'GET'")
        else:
            self._reply(404)

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        body = self._read_body()
        if path == SCHEDULER_PATH:
            self._scheduler(body)
        elif path == EXECUTOR_PATH:
            self._executor(body)
        elif path == OPERATOR_PATH:
            self._operator(body)
        elif path.startswith("/devcluster/"):
            self._control(path, body)
        else:
            self._reply(404)

    # ------------------------------------------------------------------ scheduler API

    def _scheduler(self, body: bytes) -> None:
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            self._reply(415, b"Expecting 'Content-Type' of application/json or application/x-protobuf")
            return
        try:
            call = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            self._reply(400, f"Failed to parse body into JSON: {error}".encode())
            return
        try:
            if isinstance(call, dict) and call.get("type") == "SUBSCRIBE":
                valid = validate_call(call)
                if self.headers.get("Mesos-Stream-Id") is not None:
                    raise CallError(400, "Subscribe calls should not include the 'Mesos-Stream-Id' header")
                _request.peer = self.client_address
                try:
                    sub = self.master.subscribe(valid)
                finally:
                    _request.peer = None
                self._stream(sub, lambda: self.master.stream_closed(sub))
                return
            self.master.handle_call(call, self.headers.get("Mesos-Stream-Id"))
        except CallError as error:
            logger.info("scheduler call refused: %s %s", error.status, error.reason)
            self._reply(error.status, error.reason.encode("utf-8"))
            return
        self._reply(202)

    # ------------------------------------------------------------------ executor API (agent side)

    def _executor(self, body: bytes) -> None:
        api: ExecutorAPI | None = getattr(self.master.backend, "executor_api", None)
        if api is None:
            self._reply(404, b"this development master runs no executor processes")
            return
        call = self._call_object(body, "JSON")
        if call is None:
            return
        try:
            if call.get("type") == "SUBSCRIBE":
                stream = api.executor_subscribe(call)
                self._stream(stream, lambda: api.executor_stream_closed(stream))
                return
            api.executor_call(call)
        except CallError as error:
            logger.info("executor call refused: %s %s", error.status, error.reason)
            self._reply(error.status, error.reason.encode("utf-8"))
            return
        self._reply(202)

    def _stream(self, sub: EventStream, on_closed: Callable[[], None]) -> None:
        owner = sub.owner
        self.close_connection = True
        try:
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Mesos-Stream-Id", sub.stream_id)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            while True:
                try:
                    record = sub.records.get(timeout=0.05)
                except queue.Empty:
                    if _peer_closed(self.connection):
                        logger.info("%s closed its event stream", owner)
                        return
                    continue
                if record is None:
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self.wfile.write(f"{len(record):x}\r\n".encode("ascii") + record + b"\r\n")
        except OSError as error:
            logger.info("event stream of %s broke: %s", owner, error)
        finally:
            on_closed()

    # ------------------------------------------------------------------ control API

    def _operator(self, body: bytes) -> None:
        """The v1 operator API, as far as frameworks and tests use it here: ``MARK_AGENT_GONE``, maintenance."""
        call = self._call_object(body, "Call")
        if call is None:
            return
        if call.get("type") in MAINTENANCE_CALLS:
            try:
                answer = self.master.maintenance_call(call)
            except CallError as error:
                self._reply(error.status, error.reason.encode("utf-8"))
                return
            if answer is None:
                self._reply(200)
            else:
                self._json(200, answer)
            return
        if call.get("type") != "MARK_AGENT_GONE":
            self._reply(501, f"the development master does not implement operator call {call.get('type')!r}".encode())
            return
        agent_id = ((call.get("mark_agent_gone") or {}).get("agent_id") or {}).get("value")
        if not isinstance(agent_id, str) or not agent_id:
            self._reply(400, b"Expecting 'mark_agent_gone.agent_id' to be present")
            return
        try:
            self.master.gone_agent(agent_id)
        except LookupError as error:
            self._reply(400, str(error).encode())
            return
        self._reply(200)

    def _control(self, path: str, body: bytes) -> None:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        try:
            payload = json.loads(body.decode("utf-8")) if body.strip() else {}
            if not isinstance(payload, dict):
                raise ValueError("the body must be a JSON object")
            self._dispatch(parts[1:], payload)
        except LookupError as error:
            self._json(404, {"error": str(error)})
        except (ValueError, UnicodeDecodeError, binascii.Error) as error:
            self._json(409, {"error": str(error)})
        else:
            self._json(200, {"ok": True})

    def _dispatch(self, parts: list[str], payload: dict[str, Any]) -> None:
        master = self.master
        message = payload.get("message")
        framework_id = payload.get("framework_id")
        match parts:
            case ["agents", agent_id, "lose"]:
                master.lose_agent(agent_id)
            case ["agents", agent_id, "return"]:
                master.return_agent(agent_id)
            case ["agents", agent_id, "gone"]:
                master.gone_agent(agent_id)
            case ["tasks", task_id, "fail"]:
                master.fail_task(task_id, message=message, framework_id=framework_id)
            case ["tasks", task_id, "finish"]:
                master.finish_task(task_id, message=message, framework_id=framework_id)
            case ["executors", agent_id, executor_id, "message"]:
                data = base64.b64decode(str(payload.get("data", "")), validate=True)
                master.send_executor_message(agent_id, executor_id, data, framework_id=framework_id)
            case ["frameworks", fid, "disconnect"]:
                master.disconnect_framework(fid)
            case ["frameworks", fid, "error"]:
                master.send_error(fid, str(message or "error sent by the development cluster"))
            case _:
                raise LookupError(f"no control endpoint /devcluster/{'/'.join(parts)}")
