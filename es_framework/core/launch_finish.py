"""What the shell adds to a node's TaskInfo after the plan built it and before the ACCEPT leaves, and
to the calls of a (re)registration.

The plan (:mod:`es_framework.core.plan`) builds every TaskInfo from the offer and the configuration
alone, deterministically. Some of what a node needs cannot be made in the pure core: with
``--elasticsearchSecurity auto`` each node gets a private key drawn from the system's randomness and a
certificate for its agent (:class:`es_framework.app.node_certificates.NodeIssuer`). The engine hands
each launch to the :class:`LaunchHook`'s ``finish_launch``, when one is installed, together with the
cycle's raw offers (the agent's IP is only in the offer's ``url``), and sends what it returns. The
state was written before: nothing the finisher adds is ever stored.

After every (re)registration the engine also sends what the :class:`LaunchHook`'s
``after_registration`` returns (e.g. where running executors fetch changed credentials:
:mod:`es_framework.app.credentials_rotation`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from es_framework.core.mesos_calls import Call
    from es_framework.core.plan import Launch

#: (the launch, the cycle's raw offers) -> the TaskInfo to send.
LaunchFinisher = Callable[["Launch", Sequence[object]], dict[str, Any]]
#: () -> the calls to send after a (re)registration's own (on the engine's thread).
AfterRegistration = Callable[[], "list[Call]"]


class LaunchHook:
    """The engine's slots for what the shell adds: a :data:`LaunchFinisher` (None: the plan's
    TaskInfo goes as built) and an :data:`AfterRegistration` (None: nothing more)."""

    finish_launch: LaunchFinisher | None = None
    after_registration: AfterRegistration | None = None


def offer_id(raw: object) -> str | None:
    """The id of a raw (v1 JSON) offer, None when it has none."""
    if isinstance(raw, dict):
        inner = raw.get("id")
        value = inner.get("value") if isinstance(inner, dict) else None
        if isinstance(value, str):
            return value
    return None


def agent_ip(raw_offers: Sequence[object], wanted: str) -> str | None:
    """The agent's IP from offer ``wanted``'s ``url.address.ip`` (``Offer.url`` in apache/mesos
    ``include/mesos/v1/mesos.proto``: the agent's URL, whose ``Address`` carries ``hostname`` and
    ``ip``), None when the offer does not say."""
    for raw in raw_offers:
        if offer_id(raw) != wanted or not isinstance(raw, Mapping):
            continue
        url = raw.get("url")
        address = url.get("address") if isinstance(url, Mapping) else None
        ip = address.get("ip") if isinstance(address, Mapping) else None
        return ip if isinstance(ip, str) and ip else None
    return None
