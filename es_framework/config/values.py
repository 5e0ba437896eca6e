"""The small value types of the configuration and its constants: no parsing, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from es_framework import __version__

ENV_PREFIX = "ES_MESOS_"
#: The executor image of this release (docker/executor); pinned, never ``latest``.
DEFAULT_EXECUTOR_IMAGE = f"es-mesos/elasticsearch-executor:{__version__}"

#: 4 weeks. Mesos kills every task of a framework that stays away longer than this, so it must
#: outlast any realistic scheduler outage (pymesos would otherwise send 100 s).
DEFAULT_FAILOVER_TIMEOUT_S = 28 * 24 * 3600
#: Elasticsearch's bootstrap check wants at least this many open files.
ES_REQUIRED_NOFILE = 65535
DEFAULT_MASTER_NODES = 3
SECURITY_OFF_WARNING = (
    "Elasticsearch security is OFF (xpack.security.enabled: false): anyone who can reach a node's HTTP port can "
    "read and change all data. Give --elasticsearchPasswordFile and --elasticsearchCertificatesUrl to turn it on."
)
#: Labels under this prefix are the framework's own (node id, cluster); users may not set them.
RESERVED_LABEL_PREFIX = "es-mesos."

VolumeMethod = Literal["dockerVolume", "dvdi"]
MasterKind = Literal["zk", "http", "local"]
#: ``--mesosMaster local``: the whole framework on one machine against the development cluster.
LOCAL_MASTER = "local"
#: What local mode is, said at start and in ``--help``.
LOCAL_MODE_WARNING = (
    "local mode: a single-machine development cluster and, unless you give Elasticsearch, a demo node that is "
    "NOT Elasticsearch; production runs on real Mesos"
)
#: Local mode gives each simulated agent a loopback address of its own (127.0.0.<n>).
MAX_LOCAL_AGENTS = 254


class ConfigError(ValueError):
    """One or more flags are invalid. ``problems`` holds one message per invalid flag."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in self.problems))


class Secret:
    """A secret string that never shows in ``repr``/``str`` (logs, API dumps, tracebacks)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('****')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class MesosMaster:
    """Where Mesos is: a ZooKeeper URL (leader detection), one master's HTTP address, or ``local``
    (local mode: a development master started in-process; ``url`` is ``local`` and ``hosts`` empty).

    Build it with :func:`es_framework.config.urls.parse_mesos_master`."""

    kind: MasterKind
    #: ``zk://h1:2181,h2:2181/mesos`` or ``http://host:5050``; ZooKeeper credentials are kept
    #: out of this field (see ``zk_auth``).
    url: str
    #: ``(host, port)`` pairs; an IPv6 host without its brackets (``::1``), as everywhere in
    #: :mod:`es_framework.config.urls`.
    hosts: tuple[tuple[str, int], ...]
    #: The znode path for ``zk``; empty for ``http``.
    path: str = ""
    #: ``user:password`` (percent-decoded) for ZooKeeper's digest scheme.
    zk_auth: Secret | None = None

    def __str__(self) -> str:
        return self.url

    @property
    def is_local(self) -> bool:
        return self.kind == "local"


@dataclass(frozen=True)
class Ports:
    """Elasticsearch's HTTP and transport ports; 0 means "take one from the offer"."""

    http: int = 0
    transport: int = 0

    @property
    def fixed(self) -> tuple[int, ...]:
        return tuple(p for p in (self.http, self.transport) if p)
