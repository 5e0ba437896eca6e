"""The development master's HTTP server when a client dies mid-request."""

from __future__ import annotations

import socket
import struct
import threading
import time
from typing import Any

import pytest

from es_framework.dev.devcluster.http_api import MasterHTTPServer


def test_a_client_reset_mid_request_prints_no_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    server = MasterHTTPServer(("127.0.0.1", 0), master=Any)  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        client = socket.create_connection(("127.0.0.1", server.server_address[1]))
        client.sendall(b"GET /state HTTP/1.1\r\nHost: x")  # no end of line: the server is still reading
        time.sleep(0.2)
        # SO_LINGER 0: close() sends RST, as the kernel does for a process SIGKILLed with data unread.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        deadline = time.monotonic() + 5
        while server._connections and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not server._connections  # the server finished with that request
    finally:
        server.shutdown()
        server.server_close()
    assert "Traceback" not in capsys.readouterr().err
