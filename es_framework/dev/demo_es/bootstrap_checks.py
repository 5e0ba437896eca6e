"""The demo node's production-mode bootstrap checks (development tool, not Elasticsearch).

The demo node runs the checks of Elasticsearch's ``BootstrapChecks`` (elastic/elasticsearch,
``server/src/main/java/org/elasticsearch/bootstrap/BootstrapChecks.java``; the reference's "Bootstrap
checks" pages, https://www.elastic.co/guide/en/elasticsearch/reference/7.17/bootstrap-checks.html)
that depend on the machine, with Elasticsearch's thresholds and messages, so that a test world with a
short agent fails the way real Elasticsearch fails on it:

- **Enforced** (``BootstrapChecks.enforceLimits``) when the transport binds or publishes a non-loopback
  address (``transport.bind_host`` → ``transport.host`` → ``network.bind_host`` → ``network.host``,
  default ``_local_``; the same for ``publish_host``) and ``discovery.type`` is not ``single-node``,
  or when ``-Des.enforce.bootstrap.checks=true`` is in ``ES_JAVA_OPTS`` (any other value of that
  property refuses to start, as Elasticsearch does). Then failures stop the node: exit 78 with
  "bootstrap check failure [i] of [n]: ..." lines. Otherwise they are logged as warnings.
- **Checked**, in Elasticsearch's order: max file descriptors ≥ 65535, memory locked when
  ``bootstrap.memory_lock: true`` (here: ``RLIMIT_MEMLOCK`` unlimited, since the demo node locks
  nothing), max threads (``RLIMIT_NPROC``) ≥ 4096, max virtual memory (``RLIMIT_AS``) and max file
  size (``RLIMIT_FSIZE``) unlimited, ``vm.max_map_count`` ≥ 262144.
- **The values**: each from its ``ES_MESOS_AGENT_*`` variable when set (how tests and development
  agents simulate a short agent; the names are :mod:`es_framework.contract`'s, spelt out here because
  the demo node ships alone in the stand-in image), else the machine's: ``/proc/sys/vm/max_map_count``
  and the soft limits, but the hard ``RLIMIT_NOFILE``, which a JVM raises its soft limit to at start
  (HotSpot ``os::init_2``, ``-XX:+MaxFDLimit``).
"""

from __future__ import annotations

import getpass
import ipaddress
import resource
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from es_framework.dev.demo_es.settings import Settings

UNLIMITED = resource.RLIM_INFINITY
MIN_MAX_MAP_COUNT = 262144
MIN_FILE_DESCRIPTORS = 65535
MIN_THREADS = 4096
ENFORCE_PROPERTY = "es.enforce.bootstrap.checks"
MAX_MAP_COUNT_PATH = Path("/proc/sys/vm/max_map_count")

ENV_MAX_MAP_COUNT = "ES_MESOS_AGENT_VM_MAX_MAP_COUNT"
ENV_MAX_FILE_DESCRIPTORS = "ES_MESOS_AGENT_MAX_FILE_DESCRIPTORS"
ENV_MAX_THREADS = "ES_MESOS_AGENT_MAX_THREADS"
ENV_MEMLOCK = "ES_MESOS_AGENT_MEMLOCK_LIMIT"
ENV_MAX_VIRTUAL_MEMORY = "ES_MESOS_AGENT_MAX_VIRTUAL_MEMORY"
ENV_MAX_FILE_SIZE = "ES_MESOS_AGENT_MAX_FILE_SIZE"

Resolver = Callable[[str], tuple[str, ...]]


class BootstrapCheckError(ValueError):
    """What makes Elasticsearch refuse to start before any check runs (exit 1)."""


@dataclass(frozen=True)
class Limits:
    """The machine's values (None: unknown, the check passes as Elasticsearch's ``-1`` does)."""

    max_map_count: int | None = None
    max_file_descriptors: int | None = None
    max_threads: int | None = None
    memlock: int | None = None
    max_virtual_memory: int | None = None
    max_file_size: int | None = None


_ENV = {
    "max_map_count": ENV_MAX_MAP_COUNT,
    "max_file_descriptors": ENV_MAX_FILE_DESCRIPTORS,
    "max_threads": ENV_MAX_THREADS,
    "memlock": ENV_MEMLOCK,
    "max_virtual_memory": ENV_MAX_VIRTUAL_MEMORY,
    "max_file_size": ENV_MAX_FILE_SIZE,
}


def _proc_max_map_count() -> int | None:
    try:
        return int(MAX_MAP_COUNT_PATH.read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _rlimit(kind: int, hard: bool = False) -> int | None:
    try:
        soft_value, hard_value = resource.getrlimit(kind)
    except (OSError, ValueError):
        return None
    return hard_value if hard else soft_value


def machine_limits() -> Limits:
    return Limits(
        max_map_count=_proc_max_map_count(),
        max_file_descriptors=_rlimit(resource.RLIMIT_NOFILE, hard=True),
        max_threads=_rlimit(resource.RLIMIT_NPROC),
        memlock=_rlimit(resource.RLIMIT_MEMLOCK),
        max_virtual_memory=_rlimit(resource.RLIMIT_AS),
        max_file_size=_rlimit(resource.RLIMIT_FSIZE),
    )


def read_limits(environ: Mapping[str, str], machine: Callable[[], Limits] = machine_limits) -> Limits:
    """Each injected ``ES_MESOS_AGENT_*`` value (a number or ``unlimited``), else the machine's."""
    found = machine()
    values: dict[str, int | None] = {}
    for name, variable in _ENV.items():
        raw = environ.get(variable, "").strip().lower()
        if not raw:
            values[name] = getattr(found, name)
        elif raw in ("unlimited", "infinity"):
            values[name] = UNLIMITED
        elif raw.isdigit():
            values[name] = int(raw)
        else:
            raise BootstrapCheckError(f"{variable}={raw!r} is neither a number nor unlimited")
    return Limits(**values)


def enforce_property(java_opts: str) -> bool:
    """``-Des.enforce.bootstrap.checks`` in ``ES_JAVA_OPTS`` (the last one counts): true, absent, or refused."""
    value: str | None = None
    for option in java_opts.split():
        if option.startswith(f"-D{ENFORCE_PROPERTY}="):
            value = option.split("=", 1)[1]
    if value is not None and value != "true":
        raise BootstrapCheckError(f"[{ENFORCE_PROPERTY}] must be [true] but was [{value}]")
    return value == "true"


def system_resolver(name: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(i[4][0]) for i in socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)))


def is_loopback(host: str, resolve: Resolver) -> bool:
    """``InetAddress.isLoopbackAddress`` of what ``host`` binds or publishes: ``_local_``/``_lo_`` are,
    other ``_special_`` values and the wildcard are not; a name is when all its addresses are."""
    text = host.strip().strip("[]")
    if text.startswith("_") and text.endswith("_"):
        return text.strip("_").split(":")[0] in ("local", "lo")
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        pass
    try:
        addresses = resolve(text)
    except OSError:
        return False  # Elasticsearch would not start with it at all
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


def _hosts(settings: Settings, *keys: str) -> list[str]:
    for key in keys:
        values = settings.get_list(key)
        if values:
            return values
    return ["_local_"]


def enforce_limits(settings: Settings, resolve: Resolver) -> bool:
    """``BootstrapChecks.enforceLimits``: the transport binds or publishes a non-loopback address, and
    the node does not use single-node discovery."""
    bound = _hosts(settings, "transport.bind_host", "transport.host", "network.bind_host", "network.host")
    published = _hosts(settings, "transport.publish_host", "transport.host", "network.publish_host", "network.host")
    outside = any(not is_loopback(host, resolve) for host in (*bound, *published))
    return outside and settings.get("discovery.type") != "single-node"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "elasticsearch"


def failures(limits: Limits, settings: Settings, user: str | None = None) -> list[str]:
    """Elasticsearch's message for every check the machine fails, in its order."""
    who = user or _user()
    out: list[str] = []

    def below(value: int | None, minimum: int) -> bool:
        return value is not None and value != UNLIMITED and value < minimum

    def limited(value: int | None) -> bool:
        return value is not None and value != UNLIMITED

    if below(limits.max_file_descriptors, MIN_FILE_DESCRIPTORS):
        out.append(
            f"max file descriptors [{limits.max_file_descriptors}] for elasticsearch process is too low, "
            f"increase to at least [{MIN_FILE_DESCRIPTORS}]"
        )
    if settings.get_bool("bootstrap.memory_lock") and limited(limits.memlock):
        out.append("memory locking requested for elasticsearch process but memory is not locked")
    if below(limits.max_threads, MIN_THREADS):
        out.append(
            f"max number of threads [{limits.max_threads}] for user [{who}] is too low, "
            f"increase to at least [{MIN_THREADS}]"
        )
    if limited(limits.max_virtual_memory):
        out.append(
            f"max size virtual memory [{limits.max_virtual_memory}] for user [{who}] is too low, "
            "increase to [unlimited]"
        )
    if limited(limits.max_file_size):
        out.append(f"max file size [{limits.max_file_size}] for user [{who}] is too low, increase to [unlimited]")
    # MaxMapCountCheck runs only while a store may use mmap (node.store.allow_mmap, default true).
    if settings.get_bool("node.store.allow_mmap", True) and below(limits.max_map_count, MIN_MAX_MAP_COUNT):
        out.append(
            f"max virtual memory areas vm.max_map_count [{limits.max_map_count}] is too low, "
            f"increase to at least [{MIN_MAX_MAP_COUNT}]"
        )
    return out


@dataclass(frozen=True)
class Outcome:
    """What the checks decided: the lines to log at INFO, the warnings, and the failures that stop the node."""

    info: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = field(default=())


def run_checks(
    settings: Settings,
    environ: Mapping[str, str],
    *,
    always: tuple[str, ...] = (),
    xpack: tuple[str, ...] = (),
    resolve: Resolver = system_resolver,
    machine: Callable[[], Limits] = machine_limits,
) -> Outcome:
    """``BootstrapChecks.check``: the failures of the machine's checks, then of the x-pack checks (``xpack``,
    e.g. the transport TLS check of :mod:`.security`, which plugins add after the built-in ones), are errors
    when enforced, else warnings; ``always`` are failures of always-enforced checks (the demo's own switch)."""
    forced = enforce_property(environ.get("ES_JAVA_OPTS", ""))
    enforced = enforce_limits(settings, resolve)
    info: list[str] = []
    if enforced:
        info.append("bound or publishing to a non-loopback address, enforcing bootstrap checks")
    elif forced:
        info.append("explicitly enforcing bootstrap checks")
    found = [*failures(read_limits(environ, machine), settings), *xpack]
    if enforced or forced:
        return Outcome(tuple(info), (), tuple(dict.fromkeys([*found, *always])))
    return Outcome(tuple(info), tuple(found), tuple(always))


def failure_text(errors: tuple[str, ...]) -> str:
    """The ``NodeValidationException`` message Elasticsearch stops with."""
    count = len(errors)
    lines = [
        f"[{count}] bootstrap checks failed. You must address the points described in the following "
        f"[{count}] lines before starting Elasticsearch."
    ]
    lines += [f"bootstrap check failure [{i}] of [{count}]: {error}" for i, error in enumerate(errors, start=1)]
    return "\n".join(lines)
