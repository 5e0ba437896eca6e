"""Serving the API: a threaded stdlib WSGI server in a daemon thread.

Each request gets its own thread, so a slow proxied search never holds up ``/health``; the
threads are daemons, so a stuck client cannot keep the scheduler process alive at exit.
wsgiref's per-request log lines go to :mod:`logging` at DEBUG instead of stderr.
"""

from __future__ import annotations

import logging
import socketserver
import threading
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

logger = logging.getLogger(__name__)


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


class ApiServer:
    """A running server; :meth:`shutdown` stops it and closes its socket."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve(app: Any, host: str, port: int) -> ApiServer:
    """Serve the WSGI ``app`` on ``host:port`` (port 0: any free port) until ``shutdown()``."""
    server = make_server(host, port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name=f"api-{port}", daemon=True)
    thread.start()
    logger.info("REST API and web UI on http://%s:%d/", host or "0.0.0.0", server.server_address[1])
    return ApiServer(server, thread)
