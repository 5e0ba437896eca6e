"""The demo node's transport listener with TLS (development tool, not Elasticsearch).

With ``xpack.security.transport.ssl.enabled`` (and security on) the transport port takes only mutual-TLS
connections (:mod:`.tls_server`, contexts from :mod:`.ssl_config`): a peer must present a certificate signed by
a CA this node trusts, or the handshake fails and nothing else happens on that connection. Inside, the peer
speaks first, and its first line says what it wants (see :mod:`.channel`):

- a transport address (``host:port``): a discovery probe; the node notes the prober and answers its one JSON
  line, as the plain listener of :mod:`.transport` does;
- an HTTP request line: an internal call (``/_demo/...``: publication, master actions, shard operations),
  answered by the same code as on the HTTP port (:mod:`.rest`); public paths are not served here.
"""

from __future__ import annotations

import json
import re
import socketserver
from typing import Protocol

from es_framework.dev.demo_es.errors import EsError
from es_framework.dev.demo_es.node_api import NodeAPI
from es_framework.dev.demo_es.rest import DemoRequestHandler
from es_framework.dev.demo_es.ssl_config import SslConfig
from es_framework.dev.demo_es.tls_server import TlsServerMixin
from es_framework.dev.demo_es.transport import Discoverable

REQUEST_LINE = re.compile(rb"^[A-Z]+ \S+ HTTP/1\.[01]\r?\n$")


class TransportNode(NodeAPI, Discoverable, Protocol):
    """What the TLS transport listener needs of its node: probes and internal calls."""


class SecureTransportServer(TlsServerMixin, socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    tls_label = "transport"

    def __init__(self, address: tuple[str, int], node: TransportNode, tls: SslConfig) -> None:
        self.node = node
        # Client authentication required: the transport's default (``client_authentication: required``).
        self.ssl_context = tls.server_context(client_auth=True)
        super().__init__(address, SecureTransportHandler)


class SecureTransportHandler(DemoRequestHandler):
    server: SecureTransportServer  # type: ignore[assignment]

    def handle_one_request(self) -> None:
        line = self.rfile.readline(65537)
        if not line:
            self.close_connection = True
            return
        if REQUEST_LINE.match(line) is None:
            self.close_connection = True
            address = line.decode("utf-8", "replace").strip()
            if address and len(address) < 256:
                self.server.node.heard_from(address)
            self.wfile.write((json.dumps(self.server.node.describe()) + "\n").encode("utf-8"))
            self.wfile.flush()
            return
        self.raw_requestline = line
        if not self.parse_request():
            return
        handler = getattr(self, f"do_{self.command}", None)
        if handler is None:
            self.send_error(501, f"Unsupported method ({self.command!r})")
            return
        handler()
        self.wfile.flush()

    def admit(self, segments: tuple[str, ...]) -> None:
        if not segments or segments[0] != "_demo":
            raise EsError(400, "illegal_argument_exception", "the transport port serves the nodes' internal paths only")
