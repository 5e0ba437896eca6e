"""The demo node's transport port: discovery probes only (development tool, not Elasticsearch).

Elasticsearch's transport protocol is binary; the demo's transport port is a plain TCP listener
that answers every connection with one JSON line describing the node (name, id, cluster name and
uuid, HTTP address, roles, the transport addresses it reaches, whether it is master, its cluster
state version, its Elasticsearch version). The prober answers with its own transport address, so that a
node finds the nodes that probe it even when they are not in its seed list. Everything else between nodes travels as
JSON over HTTP (see :mod:`~es_framework.dev.demo_es.client`). With transport TLS (:mod:`.channel`) the probe runs
inside mutual TLS, the prober's line first, and the listener is :mod:`.secure_transport`'s.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socketserver
import ssl
from dataclasses import dataclass, field
from typing import Any, Protocol

from es_framework.dev.demo_es import channel
from es_framework.dev.demo_es.cluster_state import NodeInfo
from es_framework.dev.demo_es.version import DEMO_VERSION

PROBE_TIMEOUT = 0.5

logger = logging.getLogger("es_framework.dev.demo_es")
#: Addresses whose TLS handshake failed, logged at WARN once each (discovery probes them every round).
_refused: set[str] = set()


def _refused_peer(address: str, error: ssl.SSLError) -> None:
    level = logging.DEBUG if address in _refused else logging.WARNING
    _refused.add(address)
    logger.log(
        level,
        "transport: TLS handshake with [%s] failed, the peer is not trusted or does not trust us: %s",
        address,
        error,
    )


@dataclass
class Peer:
    """Another node as a probe found it."""

    name: str
    node_id: str
    cluster_name: str
    cluster_uuid: str | None
    http: str
    transport: str
    roles: list[str]
    #: Transport addresses of the nodes this peer reaches.
    known: list[str] = field(default_factory=list)
    master: bool = False
    state_version: int = -1
    version: str = DEMO_VERSION
    #: Whether it serves from a cluster state received since it started (False right after a restart).
    live: bool = True

    def info(self) -> NodeInfo:
        return NodeInfo(self.node_id, self.name, tuple(self.roles), self.http, self.transport, self.version)


def probe(address: str, own_transport: str, disconnected: set[str] | None = None) -> Peer | None:
    """Ask the node at ``address`` (``host:port``) who it is; None if nothing sensible answers. An address whose
    connection failed other than by a timeout (refused, reset, unreachable: nothing listens there any more, unlike a
    slow node that answers late) is added to ``disconnected`` (see :mod:`.fault_detection`)."""
    host, _, port = address.rpartition(":")
    if not host:
        host, port = address, "9300"
    secure = channel.current().transport_tls is not None
    try:
        with channel.connect(host, int(port), PROBE_TIMEOUT) as sock:
            sock.settimeout(PROBE_TIMEOUT)
            if secure:
                # Inside TLS the prober speaks first (see secure_transport): its first line tells a probe from
                # an internal call on the same port.
                sock.sendall((own_transport + "\n").encode("utf-8"))
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
            if not secure:
                # Say who probes (see TransportHandler.handle).
                with contextlib.suppress(OSError):
                    sock.sendall((own_transport + "\n").encode("utf-8"))
        info = json.loads(data.decode("utf-8"))
        return Peer(
            name=str(info["name"]),
            node_id=str(info["node_id"]),
            cluster_name=str(info["cluster_name"]),
            cluster_uuid=info.get("cluster_uuid"),
            http=str(info["http"]),
            transport=str(info["transport"]),
            roles=[str(r) for r in info.get("roles", [])],
            known=[str(a) for a in info.get("known", [])],
            master=bool(info.get("master", False)),
            state_version=int(info.get("state_version", -1)),
            version=str(info.get("version", DEMO_VERSION)),
            live=bool(info.get("live", True)),
        )
    except TimeoutError:
        # No answer in time: maybe a slow (CPU-starved) node, maybe a vanished host; fault detection waits.
        return None
    except ssl.SSLError as error:
        # A TLS handshake that failed: a peer this node does not trust, or one that does not trust this node.
        _refused_peer(address, error)
        if disconnected is not None:
            disconnected.add(address)
        return None
    except OSError:
        # Refused, reset, unreachable: Elasticsearch's ConnectTransportException, a disconnected node.
        if disconnected is not None:
            disconnected.add(address)
        return None
    except (ValueError, KeyError):
        return None


class Discoverable(Protocol):
    """What the transport listener needs of its node."""

    def describe(self) -> dict[str, Any]: ...

    def heard_from(self, address: str) -> None: ...


class TransportServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], node: Discoverable) -> None:
        self.node = node
        super().__init__(address, TransportHandler)


class TransportHandler(socketserver.BaseRequestHandler):
    server: TransportServer

    def handle(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.request.sendall((json.dumps(self.server.node.describe()) + "\n").encode("utf-8"))
            # The prober answers with its own transport address: the way a node that found this one
            # through its seed list joins, so nodes outside the seed list (data-only nodes) are found.
            self.request.settimeout(PROBE_TIMEOUT)
            data = b""
            while not data.endswith(b"\n") and len(data) < 512:
                chunk = self.request.recv(512)
                if not chunk:
                    break
                data += chunk
            address = data.decode("utf-8").strip()
            if address:
                self.server.node.heard_from(address)
