"""Elasticsearch's bootstrap checks that depend on the agent, in one table that both sides read: the
executor checks the agent's limits before it starts Elasticsearch
(:mod:`es_framework.executor.bootstrap_checks`) and reads an Elasticsearch that exited 78 back into
the same checks; the scheduler reads the same words in a failure message from an executor of an
earlier contract (:mod:`es_framework.core.blocked_agents`).

Source: ``server/src/main/java/org/elasticsearch/bootstrap/BootstrapChecks.java`` (7.17 and 8.x):
``FileDescriptorCheck``, ``MlockallCheck``, ``MaxNumberOfThreadsCheck``, ``MaxSizeVirtualMemoryCheck``,
``MaxFileSizeCheck``, ``MaxMapCountCheck``, in ``BootstrapChecks.checks()`` order. Their failure
messages are worded alike from 6.x to 8.x (6.x capitalises "Elasticsearch process"), so the patterns
ignore case. Each pattern's group 1 is the value found; the memory-lock message quotes none.

Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from es_framework.contract import AgentCheck

#: ``BootstrapChecks.MaxMapCountCheck.LIMIT`` (1 << 18).
MIN_MAX_MAP_COUNT = 262144
#: ``BootstrapChecks.FileDescriptorCheck`` on Linux.
MIN_FILE_DESCRIPTORS = 65535
#: ``BootstrapChecks.MaxNumberOfThreadsCheck.MAX_NUMBER_OF_THREADS_THRESHOLD`` (1 << 12).
MIN_THREADS = 4096

#: Where a systemd-run Mesos agent's limits live; every executor and task inherits them.
AGENT_UNIT = "the Mesos agent's systemd unit"
#: What the memory-lock check reports as found: Elasticsearch's message quotes no value.
NOT_LOCKED = "too low: memory is not locked"

#: How Elasticsearch names each refused check (``BootstrapChecks.check``), before the check's message:
#: "bootstrap check failure [i] of [n]: " since 7.16, "[i]: " on its own line under "[n] bootstrap
#: checks failed" before (operators paste it as one line). A development-mode warning has neither.
FAILURE_PREFIX = r"(?:bootstrap check failure \[\d+\] of \[\d+\]: |(?<!\S)\[\d+\]: )"


@dataclass(frozen=True)
class EsCheck:
    """One agent-dependent bootstrap check: its limit, what passes, the fix, Elasticsearch's words."""

    #: The executor's name for the limit (``AgentLimits`` field).
    field: str
    #: What :class:`~es_framework.contract.AgentCheck` calls it.
    name: str
    #: The least value that passes; None: only unlimited passes.
    minimum: int | None
    #: What the operator runs on the agent (at most ``contract.MAX_REPORT_TEXT`` characters).
    fix: str
    #: Elasticsearch's failure message (group 1: the value found, when the message has one).
    message: re.Pattern[str]

    @property
    def needed(self) -> str:
        return "unlimited" if self.minimum is None else f"at least {self.minimum}"

    def found_in(self, text: str) -> AgentCheck | None:
        """This check as Elasticsearch's own refusal in ``text`` names it (after its failure prefix:
        the same words in a development-mode warning are not a refusal), else None."""
        match = re.search(FAILURE_PREFIX + self.message.pattern, text, re.I)
        if match is None:
            return None
        return AgentCheck(self.name, match.group(1) if match.groups() else NOT_LOCKED, self.needed, self.fix)


def _unit_fix(setting: str, docker: str) -> str:
    return f"{setting} in {AGENT_UNIT} (executors inherit it), then restart it; Docker containerizer: {docker}"


#: Elasticsearch's agent-dependent checks, in its order.
CHECKS: tuple[EsCheck, ...] = (
    EsCheck(
        "max_file_descriptors",
        "max file descriptors (RLIMIT_NOFILE)",
        MIN_FILE_DESCRIPTORS,
        # The task asks for --elasticsearchNofile (docker --ulimit, or rlimit_info that only posix/rlimits applies).
        "on the Mesos agent: --isolation with posix/rlimits (it applies --elasticsearchNofile) or LimitNOFILE=65535 "
        "in its systemd unit; Docker containerizer: --elasticsearchNofile=65535",
        re.compile(r"max file descriptors \[(-?\d+)\] for elasticsearch process is too low"),
    ),
    EsCheck(
        "memlock",
        "max locked memory (RLIMIT_MEMLOCK)",
        None,
        "on the Mesos agent: --isolation with posix/rlimits (it applies the task's memlock) or "
        "LimitMEMLOCK=infinity in its systemd unit; Docker containerizer: dockerd --default-ulimit memlock=-1:-1",
        re.compile(r"memory locking requested for elasticsearch process but memory is not locked"),
    ),
    EsCheck(
        "max_threads",
        "max threads (RLIMIT_NPROC)",
        MIN_THREADS,
        _unit_fix("LimitNPROC=4096", "dockerd --default-ulimit nproc=4096:4096"),
        re.compile(r"max number of threads \[(-?\d+)\] for user \[[^\]]*\] is too low"),
    ),
    EsCheck(
        "max_virtual_memory",
        "max virtual memory (RLIMIT_AS)",
        None,
        # Docker has no ``as`` ulimit (docker/go-units ulimit.go leaves it out): containers keep dockerd's own.
        _unit_fix("LimitAS=infinity", "LimitAS=infinity in docker.service too"),
        re.compile(r"max size virtual memory \[(-?\d+)\] for user \[[^\]]*\] is too low"),
    ),
    EsCheck(
        "max_file_size",
        "max file size (RLIMIT_FSIZE)",
        None,
        _unit_fix("LimitFSIZE=infinity", "dockerd --default-ulimit fsize=-1:-1"),
        re.compile(r"max file size \[(-?\d+)\] for user \[[^\]]*\] is too low"),
    ),
    EsCheck(
        "max_map_count",
        "vm.max_map_count",
        MIN_MAX_MAP_COUNT,
        "on the agent: sysctl -w vm.max_map_count=262144, and keep it with the line vm.max_map_count=262144 "
        "in /etc/sysctl.d/99-elasticsearch.conf",
        re.compile(r"max virtual memory areas vm\.max_map_count \[(-?\d+)\] is too low"),
    ),
)


def refused_checks(text: str) -> tuple[AgentCheck, ...]:
    """The agent checks Elasticsearch's own refusals in ``text`` name, once each, in :data:`CHECKS`
    order; its other bootstrap checks (heap, JVM, discovery) are not the agent's."""
    return tuple(found for check in CHECKS if (found := check.found_in(text)) is not None)
