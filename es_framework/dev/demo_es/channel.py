"""How this demo node reaches the others (development tool, not Elasticsearch): plain, or over the transport's
mutual TLS.

In Elasticsearch everything between nodes travels on the transport port, so transport TLS covers all of it.
The demo's nodes talk twice: discovery probes on the transport port (:mod:`.transport`) and JSON calls for
publication, master actions and shard operations (:mod:`.client`). Without transport TLS the calls go to the
peers' HTTP ports, as they always did. With it (:func:`configure`, once at start: one node per process) both
go to the peer's *transport* port inside mutual TLS — the probe and the calls share the port, the listener
tells them apart by their first line (:mod:`.secure_transport`) — so a peer without a certificate this node
trusts is refused on every path and never joins, and the HTTP port no longer serves the internal paths.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from typing import Protocol


class Reachable(Protocol):
    """A node as the others know it (``NodeInfo``, ``Peer``)."""

    @property
    def http(self) -> str: ...

    @property
    def transport(self) -> str: ...


@dataclass(frozen=True)
class Channel:
    #: The transport's client side (this node's certificate, its trust), None without transport TLS.
    transport_tls: ssl.SSLContext | None = None
    #: Without transport TLS but with HTTPS, the internal calls use HTTPS unverified: like Elasticsearch's plain
    #: transport, nothing checks the peer then.
    http_scheme: str = "http"


class _Current:
    channel = Channel()


def configure(channel: Channel) -> None:
    _Current.channel = channel


def current() -> Channel:
    return _Current.channel


def internal_url(target: Reachable, path: str) -> tuple[str, ssl.SSLContext | None]:
    """Where an internal call to ``target`` goes, and the TLS context it needs."""
    channel = _Current.channel
    if channel.transport_tls is not None:
        return f"https://{target.transport}{path}", channel.transport_tls
    if channel.http_scheme == "https":
        unverified = ssl.create_default_context()
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE
        return f"https://{target.http}{path}", unverified
    return f"http://{target.http}{path}", None


def connect(host: str, port: int, timeout: float) -> socket.socket:
    """A connection to a transport port: TLS (this node's certificate presented, the peer's checked) when
    configured; an untrusted peer fails here with :class:`ssl.SSLError`."""
    sock = socket.create_connection((host, port), timeout=timeout)
    context = _Current.channel.transport_tls
    if context is None:
        return sock
    try:
        return context.wrap_socket(sock, server_hostname=host)
    except BaseException:
        sock.close()
        raise
