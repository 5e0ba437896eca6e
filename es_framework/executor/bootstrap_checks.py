"""Elasticsearch's production-mode bootstrap checks that depend on the agent, run by the executor
before it starts Elasticsearch, so that a short agent ends the task with a message that names the
agent, each value found and needed, and the fix (instead of an exit 78 in a log nobody reads).

Elasticsearch's own: ``BootstrapChecks`` and ``JNANatives`` in elastic/elasticsearch
(``server/src/main/java/org/elasticsearch/bootstrap/``), and the reference's "Bootstrap checks"
pages (https://www.elastic.co/guide/en/elasticsearch/reference/7.17/bootstrap-checks.html, one page
per check below; 8.x: https://www.elastic.co/docs/deploy-manage/deploy/self-managed/bootstrap-checks).

- **When they are enforced** (:func:`enforced`, ``BootstrapChecks.enforceLimits``): when the
  transport is bound to, or publishes, a non-loopback address and ``discovery.type`` is not
  ``single-node``; or always with the system property ``es.enforce.bootstrap.checks=true``, which
  the executor passes in ``ES_JAVA_OPTS`` when :data:`~es_framework.contract.ENV_ENFORCE_BOOTSTRAP_CHECKS`
  is ``true``. Otherwise (development mode) a failed check is a warning only, as in Elasticsearch.
- **The checks** (:data:`CHECKS`, in ``BootstrapChecks.checks()`` order): max file descriptors
  ≥ 65535 (``FileDescriptorCheck``); memory locked when ``bootstrap.memory_lock: true``
  (``MlockallCheck``: here ``RLIMIT_MEMLOCK`` unlimited, what ``mlockall`` of the whole JVM needs
  of a non-root process); max threads ≥ 4096 (``MaxNumberOfThreadsCheck``, ``RLIMIT_NPROC``); max
  virtual memory unlimited (``MaxSizeVirtualMemoryCheck``, ``RLIMIT_AS``); max file size unlimited
  (``MaxFileSizeCheck``, ``RLIMIT_FSIZE``); ``vm.max_map_count`` ≥ 262144 (``MaxMapCountCheck``,
  only while ``node.store.allow_mmap`` is true, its default). An unknown value passes, as
  Elasticsearch's ``-1`` does.
- **The values** (:func:`read_limits`): each from its injected variable
  (``ES_MESOS_AGENT_*``, :mod:`es_framework.contract`) if set, else from the system as Elasticsearch
  would see it: ``/proc/sys/vm/max_map_count``, and the soft limits, except ``RLIMIT_NOFILE``'s hard
  one: the JVM raises its soft file limit to the hard one at start (HotSpot ``os::init_2``,
  ``-XX:+MaxFDLimit``, on by default). Elasticsearch is this executor's child: it inherits them.
- **Elasticsearch's own verdict** (:func:`parse_failures`): the messages of an Elasticsearch that
  exited 78 are read back into the same checks.
"""

from __future__ import annotations

import ipaddress
import resource
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from es_framework import contract
from es_framework.contract import AgentCheck, AgentCheckReport
from es_framework.core.agent_checks import (
    CHECKS as ES_CHECKS,
)
from es_framework.core.agent_checks import (
    EsCheck,
    refused_checks,
)

#: ``RLIM_INFINITY`` as :func:`resource.getrlimit` gives it.
UNLIMITED = resource.RLIM_INFINITY
#: Elasticsearch's system property that forces the checks, and what the executor appends to ES_JAVA_OPTS.
ENFORCE_PROPERTY = "es.enforce.bootstrap.checks"
ENFORCE_JAVA_OPTION = f"-D{ENFORCE_PROPERTY}=true"
MAX_MAP_COUNT_PATH = Path("/proc/sys/vm/max_map_count")
#: A limit's value: a number, :data:`UNLIMITED`, or None when it could not be read.
Limit = int | None
Resolver = Callable[[str], tuple[str, ...]]
SettingValue = str | list[str]


class BootstrapCheckError(ValueError):
    """An injected limit or the enforcement switch has a value that means nothing."""


@dataclass(frozen=True)
class AgentLimits:
    """The agent's values the checks look at (None: unknown, the check passes)."""

    max_map_count: Limit = None
    max_file_descriptors: Limit = None
    max_threads: Limit = None
    memlock: Limit = None
    max_virtual_memory: Limit = None
    max_file_size: Limit = None


@dataclass(frozen=True)
class Check:
    """One agent-dependent bootstrap check (:data:`es_framework.core.agent_checks.CHECKS`) and the
    variable that injects its value."""

    es: EsCheck
    #: The variable that injects the value.
    env: str

    @property
    def field(self) -> str:
        return self.es.field

    @property
    def name(self) -> str:
        return self.es.name

    @property
    def needed(self) -> str:
        return self.es.needed

    @property
    def fix(self) -> str:
        return self.es.fix

    def passes(self, value: Limit) -> bool:
        if value is None or value == UNLIMITED:
            return True
        return self.es.minimum is not None and value >= self.es.minimum


_ENV = {
    "max_file_descriptors": contract.ENV_AGENT_MAX_FILE_DESCRIPTORS,
    "memlock": contract.ENV_AGENT_MEMLOCK_LIMIT,
    "max_threads": contract.ENV_AGENT_MAX_THREADS,
    "max_virtual_memory": contract.ENV_AGENT_MAX_VIRTUAL_MEMORY,
    "max_file_size": contract.ENV_AGENT_MAX_FILE_SIZE,
    "max_map_count": contract.ENV_AGENT_MAX_MAP_COUNT,
}
#: Elasticsearch's agent-dependent checks, in its order.
CHECKS: tuple[Check, ...] = tuple(Check(es, _ENV[es.field]) for es in ES_CHECKS)


# ---------------------------------------------------------------------- the values


def describe(value: Limit) -> str:
    if value is None:
        return "unknown"
    return "unlimited" if value == UNLIMITED else str(value)


def parse_limit(text: str) -> int:
    """An injected value: a non-negative number, or ``unlimited``."""
    cleaned = text.strip().lower()
    if cleaned in ("unlimited", "infinity"):
        return UNLIMITED
    if not cleaned.isdigit():
        raise BootstrapCheckError(f"{text!r} is neither a number nor unlimited")
    return int(cleaned)


def _system_max_map_count(path: Path = MAX_MAP_COUNT_PATH) -> Limit:
    try:
        return int(path.read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return None  # not Linux, or unreadable: Elasticsearch's -1, the check passes


def _system_rlimit(kind: int, *, hard: bool = False) -> Limit:
    try:
        soft_value, hard_value = resource.getrlimit(kind)
    except (OSError, ValueError):
        return None
    return hard_value if hard else soft_value


def system_limits() -> AgentLimits:
    """The limits Elasticsearch would see if it were started now, as this process's child."""
    return AgentLimits(
        max_map_count=_system_max_map_count(),
        max_file_descriptors=_system_rlimit(resource.RLIMIT_NOFILE, hard=True),
        max_threads=_system_rlimit(resource.RLIMIT_NPROC),
        memlock=_system_rlimit(resource.RLIMIT_MEMLOCK),
        max_virtual_memory=_system_rlimit(resource.RLIMIT_AS),
        max_file_size=_system_rlimit(resource.RLIMIT_FSIZE),
    )


def read_limits(environ: Mapping[str, str], system: Callable[[], AgentLimits] = system_limits) -> AgentLimits:
    """The agent's limits: each injected variable that is set, else the system's value.
    Raises :class:`BootstrapCheckError` naming a variable whose value is not a limit."""
    read = system()
    values: dict[str, Limit] = {}
    for check in CHECKS:
        raw = environ.get(check.env, "").strip()
        if not raw:
            values[check.field] = getattr(read, check.field)
            continue
        try:
            values[check.field] = parse_limit(raw)
        except BootstrapCheckError as error:
            raise BootstrapCheckError(f"{check.env}: {error}") from None
    return AgentLimits(**values)


# ---------------------------------------------------------------------- when they are enforced


def forced(environ: Mapping[str, str]) -> bool:
    """Whether :data:`~es_framework.contract.ENV_ENFORCE_BOOTSTRAP_CHECKS` (``true``/``false``, unset:
    false) or ``-Des.enforce.bootstrap.checks=true`` in ``ES_JAVA_OPTS`` forces the checks.
    Elasticsearch refuses any other value of its property, so the executor refuses it too."""
    raw = environ.get(contract.ENV_ENFORCE_BOOTSTRAP_CHECKS, "").strip().lower()
    if raw not in ("", "true", "false"):
        raise BootstrapCheckError(f"{contract.ENV_ENFORCE_BOOTSTRAP_CHECKS}={raw!r}: expected true or false")
    return raw == "true" or java_opts_force(environ.get("ES_JAVA_OPTS", ""))


def java_opts_force(java_opts: str) -> bool:
    """Whether ``ES_JAVA_OPTS`` sets ``es.enforce.bootstrap.checks`` (the last one counts, as for
    the JVM). Any value but ``true`` makes Elasticsearch refuse to start: :class:`BootstrapCheckError`."""
    value: str | None = None
    for option in java_opts.split():
        if option.startswith(f"-D{ENFORCE_PROPERTY}="):
            value = option.split("=", 1)[1]
    if value is not None and value != "true":
        raise BootstrapCheckError(f"[{ENFORCE_PROPERTY}] must be [true] but was [{value}]")
    return value == "true"


def with_enforcement(child_env: Mapping[str, str]) -> dict[str, str]:
    """Elasticsearch's environment with ``-Des.enforce.bootstrap.checks=true`` appended to ``ES_JAVA_OPTS``."""
    env = dict(child_env)
    opts = env.get("ES_JAVA_OPTS", "").strip()
    if not java_opts_force(opts):
        env["ES_JAVA_OPTS"] = f"{opts} {ENFORCE_JAVA_OPTION}".strip()
    return env


@dataclass(frozen=True)
class Mode:
    """Production mode (the checks fail the node) or development mode (they are warnings), and why."""

    enforced: bool
    reason: str


def _values(settings: Mapping[str, SettingValue], *keys: str) -> tuple[str, ...]:
    for key in keys:
        value = settings.get(key)
        if value is not None and value not in ([], ""):
            items = value if isinstance(value, list) else value.split(",")
            return tuple(item.strip() for item in items if item.strip())
    return ("_local_",)  # Elasticsearch's default network.host


def is_loopback(host: str, resolve: Resolver) -> bool:
    """Whether ``host`` (an IP, a name, or one of Elasticsearch's ``_special_`` values) means only
    loopback addresses (``InetAddress.isLoopbackAddress``). The wildcard address is not loopback; a
    name that does not resolve is not either (Elasticsearch would not start with it at all)."""
    text = host.strip().strip("[]")
    if text.startswith("_") and text.endswith("_"):
        # _local_ and _lo_ (with :ipv4/:ipv6) are the loopback ones; _site_, _global_, _eth0_ are not.
        return text.strip("_").split(":")[0] in ("local", "lo")
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        pass
    try:
        addresses = resolve(text)
    except OSError:
        return False
    return bool(addresses) and all(is_loopback_address(a) for a in addresses)


def is_loopback_address(address: str) -> bool:
    """Whether an IP text (an IPv6 one perhaps with its ``%zone``) is a loopback address."""
    try:
        return ipaddress.ip_address(address.split("%", maxsplit=1)[0]).is_loopback
    except ValueError:
        return False


def transport_hosts(settings: Mapping[str, SettingValue]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The transport's bind hosts and publish hosts, with Elasticsearch's fallbacks
    (``transport.bind_host`` → ``transport.host`` → ``network.bind_host`` → ``network.host``)."""
    bind = _values(settings, "transport.bind_host", "transport.host", "network.bind_host", "network.host")
    publish = _values(settings, "transport.publish_host", "transport.host", "network.publish_host", "network.host")
    return bind, publish


def mode(settings: Mapping[str, SettingValue], *, force: bool, resolve: Resolver) -> Mode:
    """``BootstrapChecks.enforceLimits``, or forced by ``es.enforce.bootstrap.checks=true``."""
    bind, publish = transport_hosts(settings)
    outside = [h for h in (*bind, *publish) if not is_loopback(h, resolve)]
    single_node = _text(settings.get("discovery.type")) == "single-node"
    if outside and not single_node:
        return Mode(True, f"the transport binds or publishes a non-loopback address ({outside[0]})")
    if force:
        return Mode(True, f"{ENFORCE_PROPERTY}=true forces the bootstrap checks")
    if outside:
        return Mode(False, "discovery.type is single-node: failed bootstrap checks are warnings")
    return Mode(False, "the transport binds and publishes loopback addresses only (development mode)")


def _text(value: SettingValue | None) -> str:
    if value is None:
        return ""
    return ",".join(value) if isinstance(value, list) else value.strip()


# ---------------------------------------------------------------------- the checks


def _applies(check: Check, settings: Mapping[str, SettingValue]) -> bool:
    if check.field == "memlock":
        return _text(settings.get("bootstrap.memory_lock")).lower() == "true"
    if check.field == "max_map_count":
        # MaxMapCountCheck runs only while a store may use mmap (node.store.allow_mmap, default true).
        return _text(settings.get("node.store.allow_mmap")).lower() != "false"
    return True


def failures(limits: AgentLimits, settings: Mapping[str, SettingValue]) -> tuple[AgentCheck, ...]:
    """Every check the agent fails, with what was found, what is needed and the fix."""
    return tuple(
        AgentCheck(check.name, describe(getattr(limits, check.field)), check.needed, check.fix)
        for check in CHECKS
        if _applies(check, settings) and not check.passes(getattr(limits, check.field))
    )


def parse_failures(lines: Iterable[str]) -> tuple[AgentCheck, ...]:
    """The agent checks Elasticsearch's own messages name (an Elasticsearch that exited 78), once each,
    in :data:`CHECKS` order; the other bootstrap checks (heap, JVM, discovery) are not the agent's."""
    return refused_checks("\n".join(lines))


def report(agent: str, checks: tuple[AgentCheck, ...]) -> AgentCheckReport:
    return AgentCheckReport(agent=agent, checks=checks[: contract.MAX_AGENT_CHECKS])


def task_message(agent_report: AgentCheckReport, mode_reason: str) -> str:
    """TASK_FAILED's message: the agent, each value found and needed, and the fix."""
    return f"agent {agent_report.agent} fails Elasticsearch's bootstrap checks ({mode_reason}): " + "; ".join(
        check.sentence() for check in agent_report.checks
    )


def settings_for_checks(
    network_host: str, publish_host: str, user_settings: Mapping[str, SettingValue]
) -> dict[str, SettingValue]:
    """The node's settings the checks read: the user's, with es-mesos' own network settings (which
    the user's never replace, see ``es_framework.core.es_settings``)."""
    settings = dict(user_settings)
    settings["network.host"] = network_host
    settings["network.publish_host"] = publish_host
    return settings
