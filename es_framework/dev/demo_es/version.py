"""Which Elasticsearch version the demo node (development tool, not Elasticsearch) plays, and Elasticsearch's
version rules between nodes.

**Which version.** ``ELASTICSEARCH_VERSION`` in the node's environment (the name of
``es_framework.contract.ENV_VERSION``; the executor hands its whole environment to the process it starts, and a
launcher written by :func:`~es_framework.dev.demo_es.node.write_launcher` with a version sets it, as a
distribution of that version would be), else :data:`DEMO_VERSION`. Accepted: ``7.17.<patch>`` and
``8.<minor>.<patch>`` (the project supports 7.9+ and 8.x, but rollouts only meet 7.17 and 8.x: an upgrade to 8
goes through 7.17), and ``8`` for the default. Anything else stops the node at start (exit 1) naming the
variable. :data:`DEMO_VERSION` (``8.x-demo``) is reported as it is and follows the rules below as 8.0.0.

**Compatibility** (``org.elasticsearch.Version`` in elastic/elasticsearch, server/src/main/java/org/elasticsearch/
Version.java: ``minimumCompatibilityVersion`` and ``isCompatible``): a node talks to another only when each is at
least the other's minimum wire-compatible version, which is the last minor of the previous major (8.x: 7.17.0,
7.x: 6.8.0). ``GET /`` reports it with the minimum index-compatible version (8.x: 7.0.0, 7.x: 6.0.0-beta1).

**Joining** (``JoinTaskExecutor`` in server/src/main/java/org/elasticsearch/cluster/coordination/
JoinTaskExecutor.java, ``ensureNodesCompatibility`` and ``ensureVersionBarrier``): a node joins only if its
version is compatible with both the oldest and the newest node of the cluster, and is not older than the
cluster's oldest node (once every node is upgraded, an older node can no longer join). :func:`join_refusal`
gives Elasticsearch's message.

**Allocation** (``NodeVersionAllocationDecider`` in server/src/main/java/org/elasticsearch/cluster/routing/
allocation/decider/NodeVersionAllocationDecider.java): a replica is never recovered onto a node older than the
node of its primary, and a primary never relocates to an older node — see :mod:`.routing`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

DEMO_VERSION = "8.x-demo"
TAGLINE = "es-mesos demo node — not Elasticsearch"
#: es_framework.contract.ENV_VERSION (not imported: the demo node ships without the rest of es_framework).
VERSION_ENV = "ELASTICSEARCH_VERSION"

_FULL = re.compile(r"(7)\.(17)\.(\d+)|(8)\.(\d+)\.(\d+)")


class VersionError(ValueError):
    """A version the demo node cannot play (the message names the variable)."""


@dataclass(frozen=True, order=True)
class EsVersion:
    """A version as Elasticsearch orders it; ``text`` is what ``GET /`` and ``_nodes`` report."""

    major: int
    minor: int
    patch: int
    text: str = ""

    def __str__(self) -> str:
        return self.text or f"{self.major}.{self.minor}.{self.patch}"

    @property
    def minimum_wire_compatibility(self) -> EsVersion:
        return EsVersion(7, 17, 0) if self.major == 8 else EsVersion(6, 8, 0)

    @property
    def minimum_index_compatibility(self) -> str:
        return "7.0.0" if self.major == 8 else "6.0.0-beta1"

    def is_compatible(self, other: EsVersion) -> bool:
        """Wire compatibility, both ways (``Version.isCompatible``)."""
        return self.key() >= other.minimum_wire_compatibility.key() and other.key() >= (
            self.minimum_wire_compatibility.key()
        )

    def key(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def before(self, other: EsVersion) -> bool:
        return self.key() < other.key()


def parse_version(text: str) -> EsVersion:
    """A version the demo node can play; :class:`VersionError` otherwise."""
    value = text.strip()
    if value in (DEMO_VERSION, "8"):
        return EsVersion(8, 0, 0, DEMO_VERSION)
    match = _FULL.fullmatch(value)
    if match is None:
        raise VersionError(
            f"{VERSION_ENV}={text!r}: the demo node plays Elasticsearch 7.17.x or 8.x, given as major.minor.patch "
            f"(e.g. 7.17.22 or 8.15.1), or 8 for its default {DEMO_VERSION}"
        )
    numbers = [int(g) for g in match.groups() if g is not None]
    return EsVersion(numbers[0], numbers[1], numbers[2], value)


def node_version(environ: Mapping[str, str]) -> EsVersion:
    """The version this node plays, from its environment (see the module docstring)."""
    raw = environ.get(VERSION_ENV, "").strip()
    return parse_version(raw) if raw else parse_version(DEMO_VERSION)


def join_refusal(joining: EsVersion, cluster: Iterable[EsVersion]) -> str | None:
    """Why the master refuses a node of version ``joining`` into a cluster of nodes of the versions ``cluster``
    (Elasticsearch's wording), or None."""
    versions = list(cluster)
    if not versions:
        return None
    oldest = min(versions, key=EsVersion.key)
    newest = max(versions, key=EsVersion.key)
    for bound in (newest, oldest):
        if not joining.is_compatible(bound):
            return (
                f"node version [{joining}] is not supported.The cluster contains nodes with version [{bound}], "
                "which is incompatible."
            )
    if joining.before(oldest):
        return f"node version [{joining}] may not join a cluster comprising only nodes of version [{oldest}] or greater"
    return None


def handshake_refusal(local: EsVersion, remote: EsVersion, remote_name: str) -> str | None:
    """Two nodes whose versions are not wire-compatible never connect (``TransportService`` handshake)."""
    if local.is_compatible(remote):
        return None
    return (
        f"handshake with [{remote_name}] failed: remote node version [{remote}] is incompatible with local node "
        f"version [{local}]"
    )
