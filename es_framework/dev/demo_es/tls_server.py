"""TLS for the demo node's listeners (development tool, not Elasticsearch): HTTPS on the HTTP port, mutual TLS
on the transport port. The handshake runs in the connection's own thread, so a slow or hostile client never
holds up the accept loop; a client that fails it (no certificate, one from a CA this node does not trust, or it
does not trust this node) is closed before any byte of the protocol, and logged once per host at WARN."""

from __future__ import annotations

import logging
import socket
import socketserver
import ssl
from typing import Any

logger = logging.getLogger("es_framework.dev.demo_es")

HANDSHAKE_TIMEOUT = 10.0
#: After the handshake: long enough for any internal call the node answers.
IO_TIMEOUT = 60.0


class TlsServerMixin(socketserver.BaseServer):
    """Put before a ``socketserver`` server class: with ``ssl_context`` set, every connection is TLS."""

    ssl_context: ssl.SSLContext | None = None
    #: What the log calls this listener.
    tls_label = "tls"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._refused_hosts: set[str] = set()
        super().__init__(*args, **kwargs)

    def finish_request(self, request: Any, client_address: Any) -> None:
        context = self.ssl_context
        if context is None:
            super().finish_request(request, client_address)
            return
        assert isinstance(request, socket.socket)
        request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            secured = context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as error:
            host = str(client_address[0]) if isinstance(client_address, tuple) else str(client_address)
            level = logging.DEBUG if host in self._refused_hosts else logging.WARNING
            self._refused_hosts.add(host)
            logger.log(
                level, "%s: refused a connection from [%s]: TLS handshake failed: %s", self.tls_label, host, error
            )
            return
        try:
            secured.settimeout(IO_TIMEOUT)
            super().finish_request(secured, client_address)
        finally:
            secured.close()
