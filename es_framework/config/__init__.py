"""The scheduler's configuration: one immutable, typed object built from flags and environment.

Flag names and meanings follow the older Java framework (mesos/elasticsearch), so existing
Marathon apps keep working. Every flag can also come from ``ES_MESOS_<FLAG_IN_UPPER_SNAKE>``
(``--elasticsearchCpu`` ← ``ES_MESOS_ELASTICSEARCH_CPU``); a flag on the command line wins. Only
that prefix is read, so Marathon's own ``PORT0``, ``HOST`` … never leak in by accident.

:func:`resolve_config` reads nothing but the given mapping and, for the two flags that name
files, those files; it writes nothing. Every invalid value is reported at once, each naming the
flag, the value and what is allowed.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import SplitResult, urlsplit

from es_framework import __version__
from identity.naming import framework_name_problem

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
    (local mode: a development master started in-process; ``url`` is ``local`` and ``hosts`` empty)."""

    kind: MasterKind
    #: ``zk://h1:2181,h2:2181/mesos`` or ``http://host:5050``; ZooKeeper credentials are kept
    #: out of this field (see ``zk_auth``).
    url: str
    hosts: tuple[tuple[str, int], ...]
    #: The znode path for ``zk``; empty for ``http``.
    path: str = ""
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


@dataclass(frozen=True)
class Config:
    """Every setting of one framework instance. Build it with :func:`resolve_config`; the defaults
    live in :data:`FLAGS`, once."""

    framework_name: str
    cluster_name: str
    elasticsearch_nodes: int
    mesos_master: MesosMaster | None
    zookeeper_mesos_timeout_ms: int
    settings_location: str | None
    cpus: float
    mem_mb: float
    disk_mb: float
    ports: Ports
    docker_image: str
    binary_url: str | None
    force_pull_image: bool
    executor_name: str
    executor_labels: tuple[tuple[str, str], ...]
    data_dir: str
    failover_timeout_s: float
    #: May hold ZooKeeper credentials, so it is kept as a :class:`Secret`.
    state_url: Secret | None
    role: str
    principal: str | None
    secret: Secret | None
    use_docker: bool
    use_ip_address: bool
    web_ui_port: int
    external_volume_driver: str | None
    external_volume_options: tuple[tuple[str, str], ...]
    external_volume_config_options: tuple[tuple[str, str], ...]
    external_volume_method: VolumeMethod
    nofile: int
    elasticsearch_user: str
    allow_gpu_agents: bool
    master_nodes: int = 3
    #: Both set: Elasticsearch security on (see :attr:`security_enabled`).
    elastic_password: Secret | None = None
    certificates_url: str | None = None
    api_token: Secret | None = None
    #: The settings of --elasticsearchSettingsLocation, once read (:mod:`es_framework.shell.user_settings`).
    user_settings: Mapping[str, str | list[str]] = field(default_factory=dict, compare=False)
    #: Local mode only: number of simulated agents and the development cluster's work directory.
    local_agents: int = 4
    local_work_dir: str = "./.es-mesos-local"
    #: What the operator should know about accepted but questionable values.
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def strategy_name(self) -> Literal["normal", "external"]:
        return "external" if self.external_volume_driver else "normal"

    @property
    def local_mode(self) -> bool:
        """``--mesosMaster local``: a development cluster on this machine (see :mod:`es_framework.dev.local`)."""
        return self.mesos_master is not None and self.mesos_master.is_local

    @property
    def security_enabled(self) -> bool:
        return self.elastic_password is not None and self.certificates_url is not None

    @property
    def security_warning(self) -> str | None:
        """What the scheduler logs at start and the API shows while security is off (a deliberate
        default that must never be silent)."""
        return None if self.security_enabled else SECURITY_OFF_WARNING

    @property
    def heap_mb(self) -> int:
        """Elasticsearch's heap: half the container's memory (the rest is for Lucene's page cache)."""
        return max(1, int(self.mem_mb // 2))

    def public_dict(self) -> dict[str, Any]:
        """The configuration as flag names and JSON values, with secrets masked."""
        out: dict[str, Any] = {}
        for spec in FLAGS:
            if spec.name != "zookeeperMesosUrl":  # an alias of mesosMaster
                out[spec.name] = _to_public(getattr(self, spec.attr), url=spec.metavar == "URL")
        return out


def _to_public(value: Any, *, url: bool = False) -> Any:
    if isinstance(value, Secret):
        return _redact(value.reveal(), value.reveal()) if url else "****"
    if isinstance(value, MesosMaster):
        return value.url
    if isinstance(value, Ports):
        return {"http": value.http, "transport": value.transport}
    if isinstance(value, tuple):
        if all(isinstance(v, tuple) and len(v) == 2 for v in value):
            return dict(value)
        return list(value)
    if isinstance(value, str):
        return _redact(value, value)
    return value


# --- value parsers: str -> value, or ValueError saying what is allowed -------------------------

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("must be true or false")


def _positive_number(text: str, *, unit: str = "") -> float:
    if not _DECIMAL.fullmatch(text.strip()):
        raise ValueError(f"must be a number greater than 0{unit}")
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"must be a number greater than 0{unit}")
    # Mesos keeps scalars to three decimal places; anything finer is silently lost there.
    rounded = round(value, 3)
    if rounded <= 0:
        raise ValueError(f"must be at least 0.001{unit} (Mesos keeps three decimal places)")
    return rounded


# ASCII only: int() and float() also take "１０", "1_000" and "infinity", which no operator means.
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _ascii_int(text: str) -> int:
    stripped = text.strip()
    if not _INTEGER.fullmatch(stripped):
        raise ValueError(f"{text!r} is not an integer")
    return int(stripped)


def _int_in(text: str, low: int, high: int | None = None, what: str = "an integer") -> int:
    allowed = f"{what} from {low} to {high}" if high is not None else f"{what} of at least {low}"
    try:
        value = _ascii_int(text)
    except ValueError:
        raise ValueError(f"must be {allowed}") from None
    if value < low or (high is not None and value > high):
        raise ValueError(f"must be {allowed}")
    return value


def parse_ports(text: str) -> Ports:
    stripped = text.strip()
    allowed = "must be empty (both from the offer) or HTTP,TRANSPORT: two integers, each 0 (from the offer) or 1-65535"
    if not stripped:
        return Ports()
    parts = stripped.split(",")
    if len(parts) != 2:
        raise ValueError(allowed)
    try:
        http, transport = (_ascii_int(p) for p in parts)
    except ValueError:
        raise ValueError(allowed) from None
    if not all(0 <= p <= 65535 for p in (http, transport)):
        raise ValueError(allowed)
    if http and http == transport:
        raise ValueError("the HTTP and transport ports must differ")
    return Ports(http, transport)


_HOST_PORT = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::(?P<port>[0-9]+))?")


def _host_port(text: str, default_port: int | None) -> tuple[str, int]:
    match = _HOST_PORT.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not host[:port]")
    port_text = match["port"]
    if port_text is None:
        if default_port is None:
            raise ValueError(f"{text!r} needs a port")
        return match["host"], default_port
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is outside 1-65535")
    return match["host"], port


def parse_zk_url(text: str) -> MesosMaster:
    allowed = "must be zk://[user:password@]host:port[,host:port...]/path"
    if not text.startswith("zk://"):
        raise ValueError(allowed)
    rest = text[len("zk://") :]
    auth: Secret | None = None
    if "@" in rest.split("/", 1)[0]:
        credentials, rest = rest.split("@", 1)
        auth = Secret(credentials)
    hosts_text, slash, path = rest.partition("/")
    if not slash or not path.strip("/"):
        raise ValueError(f"{allowed} (the path, e.g. /mesos, is missing)")
    if not hosts_text:
        raise ValueError(f"{allowed} (no host given)")
    try:
        hosts = tuple(_host_port(h, 2181) for h in hosts_text.split(","))
    except ValueError as exc:
        raise ValueError(f"{allowed} ({exc})") from None
    path = "/" + path.strip("/")
    if "//" in path or any(part in (".", "..") for part in path.split("/")) or not path.isprintable():
        raise ValueError(f"{allowed} (the path {path!r} is not a valid znode path)")
    url = "zk://" + ",".join(f"{h}:{p}" for h, p in hosts) + path
    return MesosMaster(kind="zk", url=url, hosts=hosts, path=path, zk_auth=auth)


def _urlsplit(text: str, allowed: str) -> SplitResult:
    try:
        return urlsplit(text)
    except ValueError:  # e.g. "Invalid IPv6 URL", which would not say what is allowed
        raise ValueError(allowed) from None


def parse_mesos_master(text: str) -> MesosMaster:
    stripped = text.strip()
    allowed = "must be host:port, http(s)://host:port or zk://host:port[,...]/path (or local: local mode)"
    if stripped == LOCAL_MASTER:
        return MesosMaster(kind="local", url=LOCAL_MASTER, hosts=())
    if stripped.startswith("zk://"):
        return parse_zk_url(stripped)
    scheme = "http"
    rest = stripped
    if "://" in stripped:
        parts = _urlsplit(stripped, allowed)
        if parts.scheme not in ("http", "https") or parts.query or parts.fragment or parts.path not in ("", "/"):
            raise ValueError(allowed)
        scheme, rest = parts.scheme, parts.netloc
    try:
        host, port = _host_port(rest, 5050)
    except ValueError as exc:
        raise ValueError(f"{allowed} ({exc})") from None
    return MesosMaster(kind="http", url=f"{scheme}://{host}:{port}", hosts=((host, port),))


def parse_key_values(text: str) -> tuple[tuple[str, str], ...]:
    """``k=v,k=v`` (volume driver options). Empty means none."""
    allowed = "must be a comma-separated list of key=value (e.g. size=100,volumetype=io1,iops=3000)"
    stripped = text.strip()
    if not stripped:
        return ()
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for item in stripped.split(","):
        key, eq, value = item.strip().partition("=")
        if not eq or not re.fullmatch(r"[A-Za-z0-9_.-]+", key) or not value or '"' in value or "'" in value:
            raise ValueError(f"{allowed}; {item.strip()!r} is not")
        if key in seen:
            raise ValueError(f"{allowed}; {key!r} is given twice")
        seen.add(key)
        pairs.append((key, value))
    return tuple(pairs)


def parse_labels(text: str) -> tuple[tuple[str, str], ...]:
    """``k=v k=v`` (whitespace- or comma-separated), as the Java framework took them."""
    allowed = "must be key=value items separated by spaces or commas"
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for item in re.split(r"[\s,]+", text.strip()):
        if not item:
            continue
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ValueError(f"{allowed}; {item!r} is not")
        if key.startswith(RESERVED_LABEL_PREFIX):
            raise ValueError(
                f"label keys starting with {RESERVED_LABEL_PREFIX!r} belong to the framework; {key!r} is not allowed"
            )
        if key in seen:
            raise ValueError(f"label {key!r} is given twice")
        seen.add(key)
        pairs.append((key, value))
    return tuple(pairs)


def _framework_name(text: str) -> str:
    problem = framework_name_problem(text)
    if problem:
        raise ValueError(f"is not allowed: {problem}")
    return text


def _cluster_name(text: str) -> str:
    # The name is a path segment (state znode, data directory) and Elasticsearch forbids ':'.
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}", text):
        raise ValueError(
            "must be letters, digits, '.', '_' or '-', starting with a letter or digit, at most 255 characters"
        )
    return text


_ROLE_FORBIDDEN = re.compile(r"[\s\\\x00-\x1f\x7f]")


def _role(text: str) -> str:
    allowed = (
        "must be '*' or a Mesos role name (no spaces or '\\', not starting with '-', no '.', '..' or empty path parts)"
    )
    if text == "*":
        return text
    if not text or _ROLE_FORBIDDEN.search(text) or text.startswith("-"):
        raise ValueError(allowed)
    if any(part in ("", ".", "..") or part.startswith("-") for part in text.split("/")) or "*" in text:
        raise ValueError(allowed)
    return text


def _principal(text: str) -> str:
    if not text or re.search(r"\s", text):
        raise ValueError("must be a non-empty name without whitespace")
    return text


def _docker_image(text: str) -> str:
    component = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    registry = r"(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?"
    tag = r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    digest = r"(?:@sha256:[0-9a-f]{64})?"
    pattern = rf"{registry}{component}(?:/{component})*{tag}{digest}"
    if not re.fullmatch(pattern, text):
        raise ValueError("must be a Docker image reference such as registry.example.com/es-mesos/executor:1.0")
    return text


def _executor_name(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", text):
        raise ValueError("must be letters, digits, '.', '_' or '-', starting with a letter or digit")
    return text


def _absolute_path(text: str) -> str:
    if not text.startswith("/") or any(part in (".", "..") for part in text.split("/")):
        raise ValueError("must be an absolute path without '.' or '..' parts")
    return text.rstrip("/") or "/"


def _location(text: str, schemes: tuple[str, ...]) -> str:
    """A path (which must exist here) or a URL with one of ``schemes``."""
    if "://" in text:
        allowed = f"must be a path or a URL with scheme {', '.join(schemes)}"
        parts = _urlsplit(text, allowed)
        if parts.scheme not in schemes or (parts.scheme != "file" and not parts.netloc):
            raise ValueError(allowed)
        if parts.scheme == "file" and not os.path.isfile(parts.path):
            raise ValueError(f"names the file {parts.path!r}, which does not exist")
        return text
    if not os.path.isfile(text):
        raise ValueError("is neither an existing file nor a URL")
    return text


def _local_work_dir(text: str) -> str:
    if not text.strip() or "\x00" in text:
        raise ValueError("must be a directory path")
    return text


def _settings_location(text: str) -> str:
    return _location(text, ("http", "https", "file"))


def _binary_url(text: str) -> str:
    # The Mesos fetcher downloads it on the agent, so a URL cannot be checked from here.
    if "://" in text:
        allowed = "must be a URL the Mesos fetcher understands (http, https, ftp, hdfs, s3, file) or an absolute path"
        parts = _urlsplit(text, allowed)
        if parts.scheme not in ("http", "https", "ftp", "ftps", "hdfs", "s3", "s3a", "s3n", "file") or not (
            parts.netloc or parts.scheme == "file"
        ):
            raise ValueError(allowed)
        return text
    return _absolute_path(text)


def _volume_driver(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}", text):
        raise ValueError("must be a Docker volume driver name such as rexray or rexray/ebs:latest")
    return text


def _volume_method(text: str) -> str:
    if text not in ("dockerVolume", "dvdi"):
        raise ValueError("must be dockerVolume (docker/volume isolator) or dvdi (mesos-module-dvdi)")
    return text


def _user(text: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", text):
        raise ValueError("must be a Unix user name")
    if text == "root":
        raise ValueError("must not be root: Elasticsearch refuses to run as root")
    return text


_URL_CREDENTIALS = re.compile(r"://([^/\s]+)@")


def _redact(message: str, text: str) -> str:
    """``message`` with the ``user:password`` of a URL in ``text`` (e.g. ZooKeeper digest auth) masked."""
    match = _URL_CREDENTIALS.search(text)
    return message.replace(match[1], "****") if match else message


def redact_url(url: str | None) -> str | None:
    """``url`` with any ``user:password@`` masked, for logs and stored state."""
    return None if url is None else _redact(url, url)


def _state_url(text: str) -> Secret:
    # Imported here: the state store depends on this module's types.
    from es_framework.shell.state_store import StateUrlError, parse_state_url  # noqa: PLC0415

    try:
        parse_state_url(text)
    except StateUrlError as exc:
        raise ValueError(str(exc)) from None
    return Secret(text)


def _optional(parser: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        return parser(text) if text.strip() else None

    return parse


@dataclass(frozen=True)
class FlagSpec:
    name: str
    attr: str
    default: str
    parse: Callable[[str], Any]
    help: str
    metavar: str = "VALUE"
    secret: bool = False

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + re.sub(r"(?<!^)(?=[A-Z])", "_", self.name).upper()


FLAGS: tuple[FlagSpec, ...] = (
    FlagSpec(
        "mesosMaster",
        "mesos_master",
        "",
        _optional(parse_mesos_master),
        "Mesos master: host:port, http(s)://host:port, or zk://host:port[,...]/path (leader detection); "
        f"'local' runs everything on this machine ({LOCAL_MODE_WARNING}).",
        "URL",
    ),
    FlagSpec(
        "zookeeperMesosUrl",
        "mesos_master",
        "",
        _optional(parse_zk_url),
        "Mesos' ZooKeeper URL, zk://host:port[,...]/path (the Java framework's spelling of --mesosMaster).",
        "URL",
    ),
    FlagSpec(
        "zookeeperMesosTimeout",
        "zookeeper_mesos_timeout_ms",
        "20000",
        lambda t: _int_in(t, 1, what="a number of milliseconds"),
        "ZooKeeper session timeout, in milliseconds.",
        "MS",
    ),
    FlagSpec(
        "elasticsearchNodes",
        "elasticsearch_nodes",
        "3",
        lambda t: _int_in(t, 1, what="a whole number of nodes"),
        "Number of Elasticsearch nodes (an odd number is recommended).",
        "N",
    ),
    FlagSpec(
        "elasticsearchClusterName", "cluster_name", "mesos-ha", _cluster_name, "Elasticsearch cluster.name.", "NAME"
    ),
    FlagSpec(
        "elasticsearchSettingsLocation",
        "settings_location",
        "",
        _optional(_settings_location),
        "Path or http(s)/file URL of an elasticsearch.yml whose settings are added to every node.",
        "PATH|URL",
    ),
    FlagSpec(
        "elasticsearchMasterNodes",
        "master_nodes",
        str(DEFAULT_MASTER_NODES),
        lambda t: _int_in(t, 1, what="a whole number of nodes"),
        "Master-eligible nodes: node ids 1..N are master-eligible (and hold data), higher ids hold data only.",
        "N",
    ),
    FlagSpec(
        "elasticsearchPasswordFile",
        "elastic_password",
        "",
        lambda t: t or None,
        "File holding the password of Elasticsearch's built-in elastic user. With --elasticsearchCertificatesUrl "
        "it turns Elasticsearch security on; without both, security is off (and the log and API say so).",
        "PATH",
        secret=True,
    ),
    FlagSpec(
        "elasticsearchCertificatesUrl",
        "certificates_url",
        "",
        _optional(_binary_url),
        "PKCS#12 bundle made by elasticsearch-certutil (CA and node certificate, no password), fetched into every "
        "node's sandbox for transport TLS; needs --elasticsearchPasswordFile.",
        "URL",
    ),
    FlagSpec("elasticsearchCpu", "cpus", "1.0", _positive_number, "CPUs per node.", "CPUS"),
    FlagSpec(
        "elasticsearchRam",
        "mem_mb",
        "2048",
        lambda t: _positive_number(t, unit=" (MB)"),
        "Memory per node, in MB; the Elasticsearch heap is half of it.",
        "MB",
    ),
    FlagSpec(
        "elasticsearchDisk",
        "disk_mb",
        "1024",
        lambda t: _positive_number(t, unit=" (MB)"),
        "Local disk per node, in MB (normal strategy only; ignored with --externalVolumeDriver).",
        "MB",
    ),
    FlagSpec(
        "elasticsearchPorts",
        "ports",
        "",
        parse_ports,
        "HTTP,TRANSPORT ports, e.g. 9200,9300; 0 or empty takes a port from the offer.",
        "HTTP,TRANSPORT",
    ),
    FlagSpec(
        "elasticsearchDockerImage",
        "docker_image",
        DEFAULT_EXECUTOR_IMAGE,
        _docker_image,
        "Executor image (Docker containerizer).",
        "IMAGE",
    ),
    FlagSpec(
        "elasticsearchBinaryUrl",
        "binary_url",
        "",
        _optional(_binary_url),
        "Elasticsearch distribution tarball, fetched by the Mesos fetcher (Mesos containerizer).",
        "URL",
    ),
    FlagSpec(
        "executorForcePullImage",
        "force_pull_image",
        "false",
        parse_bool,
        "Pull the executor image even if the agent has it.",
        "BOOL",
    ),
    FlagSpec(
        "executorName", "executor_name", "elasticsearch-executor", _executor_name, "Executor name prefix.", "NAME"
    ),
    FlagSpec(
        "executorLabels",
        "executor_labels",
        "",
        parse_labels,
        "Labels for every node's task and executor: key=value, separated by spaces or commas.",
        "K=V",
    ),
    FlagSpec(
        "dataDir",
        "data_dir",
        "/var/lib/mesos/slave/elasticsearch",
        _absolute_path,
        "Agent directory for node data (normal strategy): <dataDir>/<frameworkName>/<clusterName>.",
        "DIR",
    ),
    FlagSpec(
        "frameworkName",
        "framework_name",
        "elasticsearch",
        _framework_name,
        "Framework name; also the prefix of volume and node names (<name><id>data). Lowercase letters, digits "
        "and '-', starting and ending with a letter. Clusters sharing a storage backend need different names.",
        "NAME",
    ),
    FlagSpec(
        "frameworkFailoverTimeout",
        "failover_timeout_s",
        str(DEFAULT_FAILOVER_TIMEOUT_S),
        lambda t: _positive_number(t, unit=" (seconds)"),
        "Seconds Mesos keeps the nodes running while no scheduler is connected (default: 28 days).",
        "SECONDS",
    ),
    FlagSpec(
        "frameworkStateUrl",
        "state_url",
        "",
        _optional(_state_url),
        "Where the scheduler keeps its state: zk://[user:password@]host:port[,...][/chroot], or file:///dir on a "
        "single machine. Default: the ZooKeeper of --zookeeperMesosUrl; required with an HTTP master.",
        "URL",
    ),
    FlagSpec("frameworkRole", "role", "*", _role, "Mesos role to register with.", "ROLE"),
    FlagSpec(
        "frameworkPrincipal", "principal", "", _optional(_principal), "Principal for Mesos authentication.", "NAME"
    ),
    FlagSpec(
        "frameworkSecretPath",
        "secret",
        "",
        lambda t: t or None,
        "File holding the secret for --frameworkPrincipal (a trailing newline is stripped).",
        "PATH",
        secret=True,
    ),
    FlagSpec(
        "frameworkUseDocker",
        "use_docker",
        "true",
        parse_bool,
        "true: Docker containerizer; false: Mesos containerizer with --elasticsearchBinaryUrl.",
        "BOOL",
    ),
    FlagSpec(
        "useIpAddress",
        "use_ip_address",
        "false",
        parse_bool,
        "Publish the agent's IP address instead of its hostname.",
        "BOOL",
    ),
    FlagSpec(
        "webUiPort",
        "web_ui_port",
        "31100",
        lambda t: _int_in(t, 1, 65535, "a port"),
        "Port of the API and web UI.",
        "PORT",
    ),
    FlagSpec(
        "apiTokenFile",
        "api_token",
        "",
        lambda t: t or None,
        "File holding the bearer token that changing API requests (PUT, POST) must carry; without it the API is "
        "open to anyone who can reach it (a warning says so).",
        "PATH",
        secret=True,
    ),
    FlagSpec(
        "externalVolumeDriver",
        "external_volume_driver",
        "",
        _optional(_volume_driver),
        "Docker volume driver (e.g. rexray): selects the external strategy, volumes <frameworkName><id>config/data.",
        "DRIVER",
    ),
    FlagSpec(
        "externalVolumeOptions",
        "external_volume_options",
        "",
        parse_key_values,
        "Driver options for each data volume, k=v,k=v (e.g. size=100,volumetype=io1,iops=3000).",
        "K=V,...",
    ),
    FlagSpec(
        "externalVolumeConfigOptions",
        "external_volume_config_options",
        "size=1",
        parse_key_values,
        "Driver options for each config volume, k=v,k=v.",
        "K=V,...",
    ),
    FlagSpec(
        "externalVolumeMethod",
        "external_volume_method",
        "dockerVolume",
        _volume_method,
        "With --frameworkUseDocker false: dockerVolume (docker/volume isolator) or dvdi (mesos-module-dvdi).",
        "METHOD",
    ),
    FlagSpec(
        "elasticsearchNofile",
        "nofile",
        str(ES_REQUIRED_NOFILE),
        lambda t: _int_in(t, 1, what="a number of files"),
        "Open-file limit for the Elasticsearch container (Elasticsearch requires 65535 in production).",
        "N",
    ),
    FlagSpec(
        "elasticsearchUser",
        "elasticsearch_user",
        "elasticsearch",
        _user,
        "User that runs Elasticsearch under the Mesos containerizer.",
        "USER",
    ),
    FlagSpec(
        "allowGpuAgents",
        "allow_gpu_agents",
        "false",
        parse_bool,
        "Accept offers from agents with GPUs (declined by default to keep GPUs for GPU work).",
        "BOOL",
    ),
    FlagSpec(
        "localAgents",
        "local_agents",
        "4",
        lambda t: _int_in(t, 1, MAX_LOCAL_AGENTS, "a number of agents"),
        "Local mode only: number of simulated agents (one node each, each with its own loopback address "
        "127.0.0.<n> and port range).",
        "N",
    ),
    FlagSpec(
        "localWorkDir",
        "local_work_dir",
        "./.es-mesos-local",
        _local_work_dir,
        "Local mode only: work directory of the development cluster (sandboxes, volumes/<name>, and the "
        "default state, file://<dir>/state).",
        "DIR",
    ),
)

FLAGS_BY_NAME: dict[str, FlagSpec] = {spec.name: spec for spec in FLAGS}


def _read_secret(path: str, warnings: list[str], flag: str) -> Secret:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise ValueError("names a file that does not exist") from None
    except OSError as exc:
        raise ValueError(f"cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError("is not a UTF-8 text file") from None
    stripped = text.rstrip("\r\n")
    if stripped != text:
        warnings.append(f"--{flag}: {path} ends with a newline; it was stripped from the secret")
    if not stripped:
        raise ValueError("names an empty file")
    return Secret(stripped)


def resolve_config(given: Mapping[str, str], env: Mapping[str, str] | None = None) -> Config:
    """Build the configuration from flags given on the command line (name -> text) and the environment.

    Raises :class:`ConfigError` listing every invalid flag; returns a :class:`Config` whose
    ``warnings`` list what is accepted but questionable.
    """
    env = {} if env is None else env
    unknown = sorted(set(given) - set(FLAGS_BY_NAME))
    if unknown:
        raise ConfigError([f"unknown flag --{name}" for name in unknown])

    problems: list[str] = []
    warnings: list[str] = []
    known_env = {spec.env_var for spec in FLAGS}
    warnings.extend(
        f"{name} is set but is not one of es-framework's variables (a typo?); it is ignored"
        for name in sorted(env)
        if name.startswith(ENV_PREFIX) and name not in known_env
    )
    values: dict[str, Any] = {}
    explicit: set[str] = set()

    for spec in FLAGS:
        if spec.name in given:
            text, source = given[spec.name], f"--{spec.name}"
        elif spec.env_var in env:
            text, source = env[spec.env_var], f"--{spec.name} (from {spec.env_var})"
        else:
            text, source = spec.default, f"--{spec.name} (default)"
        if spec.name in given or spec.env_var in env:
            explicit.add(spec.name)
        try:
            value = spec.parse(text)
            if spec.secret and value is not None:
                value = _read_secret(value, warnings, spec.name)
        except ValueError as exc:
            shown = "****" if spec.secret else text
            problems.append(_redact(f"{source}: {shown!r} {exc}", text))
            continue
        values[spec.name] = value

    # Cross-flag rules, only where both sides parsed; otherwise the message would be noise.
    master = values.get("mesosMaster")
    zk_master = values.get("zookeeperMesosUrl")
    if master is not None and zk_master is not None and master.url != zk_master.url:
        problems.append(
            f"--mesosMaster {master.url!r} and --zookeeperMesosUrl {zk_master.url!r} disagree; give one of them"
        )
    values["mesosMaster"] = master or zk_master
    if (
        values.get("frameworkSecretPath") is not None
        and "frameworkPrincipal" in values
        and values["frameworkPrincipal"] is None
    ):
        problems.append("--frameworkSecretPath is given without --frameworkPrincipal; Mesos needs both")
    password_given = values.get("elasticsearchPasswordFile") is not None
    certificates_given = values.get("elasticsearchCertificatesUrl") is not None
    both_parsed = "elasticsearchPasswordFile" in values and "elasticsearchCertificatesUrl" in values
    if both_parsed and password_given != certificates_given:
        given_flag, missing_flag = (
            ("elasticsearchPasswordFile", "elasticsearchCertificatesUrl")
            if password_given
            else ("elasticsearchCertificatesUrl", "elasticsearchPasswordFile")
        )
        problems.append(
            f"--{given_flag} is given without --{missing_flag}: Elasticsearch security needs both (a cluster of "
            "several nodes needs transport TLS, and its users need the elastic password)"
        )
    nodes = values.get("elasticsearchNodes")
    if isinstance(nodes, int) and nodes % 2 == 0:
        warnings.append(
            f"--elasticsearchNodes {nodes}: an even number of nodes is allowed but not recommended "
            "(it adds no fault tolerance over one node fewer)"
        )
    driver = values.get("externalVolumeDriver")
    if driver is None and "externalVolumeDriver" in values:
        for name in ("externalVolumeOptions", "externalVolumeConfigOptions", "externalVolumeMethod"):
            if name in explicit and values.get(name):
                problems.append(f"--{name} needs --externalVolumeDriver")
    if (
        values.get("frameworkUseDocker") is True
        and "externalVolumeMethod" in explicit
        and "externalVolumeMethod" in values
    ):
        problems.append(
            "--externalVolumeMethod applies to the Mesos containerizer only (--frameworkUseDocker false); "
            "with Docker the volumes always go through docker parameters"
        )
    if (
        values.get("frameworkUseDocker") is False
        and "elasticsearchBinaryUrl" in values
        and values["elasticsearchBinaryUrl"] is None
    ):
        problems.append(
            "--frameworkUseDocker false needs --elasticsearchBinaryUrl (the Mesos containerizer has no image)"
        )
    if driver is not None and "elasticsearchDisk" in explicit:
        warnings.append("--elasticsearchDisk is ignored with --externalVolumeDriver: the volume driver manages storage")
    nofile = values.get("elasticsearchNofile")
    if isinstance(nofile, int) and nofile < ES_REQUIRED_NOFILE:
        warnings.append(
            f"--elasticsearchNofile {nofile} is below {ES_REQUIRED_NOFILE}: Elasticsearch's bootstrap check fails "
            "in production mode (fine for development machines that cap the limit)"
        )
    mem = values.get("elasticsearchRam")
    if isinstance(mem, float) and mem < 1024:
        warnings.append(
            f"--elasticsearchRam {mem:g} MB gives a heap of {int(mem // 2)} MB; Elasticsearch needs 512 MB or more"
        )

    _local_mode_rules(values, explicit, problems, warnings)

    if problems:
        raise ConfigError(problems)

    kwargs = {spec.attr: values[spec.name] for spec in FLAGS if spec.name != "zookeeperMesosUrl"}
    return Config(**kwargs, warnings=tuple(warnings))


def _local_mode_rules(values: Mapping[str, Any], explicit: set[str], problems: list[str], warnings: list[str]) -> None:
    master = values.get("mesosMaster")
    if master is None or not master.is_local:
        warnings.extend(
            f"--{name} applies to local mode only (--mesosMaster local); it is ignored"
            for name in ("localAgents", "localWorkDir")
            if name in explicit and name in values
        )
        return
    ports = values.get("elasticsearchPorts")
    if isinstance(ports, Ports) and ports.fixed:
        problems.append(
            "--elasticsearchPorts must be empty in local mode: every node runs on this machine, so each takes its "
            "ports from its agent's own range"
        )
    agents, nodes = values.get("localAgents"), values.get("elasticsearchNodes")
    if isinstance(agents, int) and isinstance(nodes, int) and agents < nodes:
        warnings.append(
            f"--localAgents {agents} is fewer than --elasticsearchNodes {nodes}: one node runs per agent, so only "
            f"{agents} will run"
        )
    binary = values.get("elasticsearchBinaryUrl")
    if isinstance(binary, str):
        path = binary.removeprefix("file://") if binary.startswith("file://") else binary
        if "://" in path or not path.startswith("/"):
            problems.append(
                f"--elasticsearchBinaryUrl {binary!r}: local mode runs Elasticsearch from this machine: give an "
                "absolute path (or file:// URL) of an Elasticsearch directory with bin/elasticsearch or of its tarball"
            )
        elif not (os.path.isfile(os.path.join(path, "bin", "elasticsearch")) or os.path.isfile(path)):
            problems.append(
                f"--elasticsearchBinaryUrl {binary!r}: neither a directory with bin/elasticsearch nor a tarball"
            )
