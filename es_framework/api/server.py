"""Serving the API: uvicorn (h11, asyncio) in a daemon thread of the scheduler process.

The scheduler owns the process's signals (SIGTERM, SIGINT: es_framework/app/run.py): uvicorn
installs its handlers only when it runs in the main thread, and here it never does. The socket is
bound here before uvicorn starts, so port 0 means any free port and :attr:`ApiServer.port` is the one
bound, readable as soon as :func:`serve` returns (which waits until uvicorn accepts requests).
uvicorn's access log is off: :class:`es_framework.api.asgi.Guard` logs each request at DEBUG instead,
and uvicorn's own lines go to :mod:`logging` (no handler of its own, nothing on stderr), WARNING and up.
The routes that block (the core, the proxy) run in Starlette's thread pool, so a slow proxied search
never holds up ``/health``; the thread is a daemon, so a stuck client cannot keep the process alive.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

import uvicorn

logger = logging.getLogger(__name__)

#: How long :meth:`ApiServer.shutdown` lets requests under way finish.
GRACE_S = 2.0


class ApiServer:
    """A running server; :meth:`shutdown` stops it and closes its socket."""

    def __init__(self, server: uvicorn.Server, sock: socket.socket, thread: threading.Thread) -> None:
        self._server = server
        self._socket = sock
        self._address = sock.getsockname()
        self._thread = thread

    @property
    def host(self) -> str:
        return str(self._address[0])

    @property
    def port(self) -> int:
        return int(self._address[1])

    def shutdown(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=GRACE_S + 3)
        self._socket.close()


def serve(app: Any, host: str, port: int) -> ApiServer:
    """Serve the ASGI ``app`` on ``host:port`` (port 0: any free port) until ``shutdown()``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    config = uvicorn.Config(
        app,
        loop="asyncio",
        http="h11",
        ws="none",
        lifespan="off",
        interface="asgi3",
        access_log=False,
        log_config=None,
        log_level=logging.WARNING,
        timeout_graceful_shutdown=int(GRACE_S),
        server_header=False,
    )
    server = uvicorn.Server(config)
    ready = threading.Event()
    failed: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as problem:
            failed.append(problem)
            logger.exception("the REST API's server stopped")
        finally:
            ready.set()

    bound = sock.getsockname()[1]
    thread = threading.Thread(target=run, name=f"api-{bound}", daemon=True)
    thread.start()
    # Until uvicorn accepts, a request would wait in the socket's backlog; a caller that asks at once
    # (the tests, the scheduler's own health check) must be answered.
    while not server.started and not ready.wait(0.01):
        pass
    if failed:
        sock.close()
        raise RuntimeError(f"the REST API's server did not start on {host}:{bound}") from failed[0]
    logger.info("REST API and web UI on http://%s:%d/", host or "0.0.0.0", bound)
    return ApiServer(server, sock, thread)
