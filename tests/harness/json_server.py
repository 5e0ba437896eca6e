"""Stand-ins for a node's or the scheduler's HTTP API in the executor's tests: a threaded server on
127.0.0.1 (port 0) served for the ``with`` block, and JSON answers written as both write them."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

#: What a demo node answers at ``GET /`` (the executor's identity probe reads these fields).
NODE_ROOT = {"name": "elasticsearch1", "cluster_uuid": "uuid-1", "version": {"number": "8.15.1"}}

S = TypeVar("S", bound=ThreadingHTTPServer)


def answer_json(
    handler: BaseHTTPRequestHandler, status: int, body: Any, headers: tuple[tuple[str, str], ...] = ()
) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    for name, value in headers:
        handler.send_header(name, value)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


@contextlib.contextmanager
def serving(server: S) -> Iterator[S]:
    """``server`` answering in a daemon thread until the block ends, then shut down and closed."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
