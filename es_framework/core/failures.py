"""Why a node's launch failed, and when to try that node id again.

Mesos reports a failed launch as a state plus free text; operators need the cause in words they
can act on, and the scheduler must not relaunch a node that fails at once in a tight loop (a
missing image or an unattachable volume would otherwise churn through every offer).

A container the agent could not launch comes as ``TASK_FAILED`` / ``REASON_CONTAINER_LAUNCH_FAILED``
with "Failed to launch container: <why>" (``Slave::executorLaunched``, ``src/slave/slave.cpp``), and
the why is classified by what it says. Two whys are the agent's configuration, not a volume driver or
an image: the Mesos containerizer's default filesystem isolator, ``filesystem/posix``, fails every
container with a ``ContainerInfo`` volume ("Volumes in ContainerInfo is not supported") or an image
("Container root filesystems not supported"), see
``src/slave/containerizer/mesos/isolators/filesystem/posix.cpp``. Such a failure does not fix itself,
so it is reported loudly once per node and per change (:func:`failure_report`), then quietly while the
back-off retries: the node may well land on an agent configured right.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType

from es_framework.core.node_state import TaskState
from es_framework.core.status_updates import StatusUpdate


class FailureKind(StrEnum):
    BOOTSTRAP_CHECK = "bootstrap_check"
    AGENT_CONFIG = "agent_config"
    VOLUME = "volume"
    IMAGE = "image"
    EXECUTOR_LOST = "executor_lost"
    AGENT_LOST = "agent_lost"
    KILLED = "killed"
    OTHER = "other"


HINTS = {
    FailureKind.BOOTSTRAP_CHECK: "Elasticsearch exited 78: a bootstrap check failed (vm.max_map_count on the agent, "
    "--elasticsearchNofile, heap or memory lock); the node's log names the check",
    FailureKind.AGENT_CONFIG: "the agent's --isolation refuses the container (Mesos' default, filesystem/posix, "
    "takes no ContainerInfo volume): external volumes on the Mesos containerizer need agents with "
    "--isolation=filesystem/linux,docker/volume (--launcher=linux, dvdcli); this does not fix itself",
    FailureKind.VOLUME: "the volume driver could not create or attach a volume (REX-Ray answers 503 on a first "
    "create; also check that the volume is not attached to another host)",
    FailureKind.IMAGE: "the agent could not find or pull the executor image (--elasticsearchDockerImage)",
    FailureKind.EXECUTOR_LOST: "the executor exited or lost contact with its agent",
    FailureKind.AGENT_LOST: "the agent was lost or removed",
    FailureKind.KILLED: "the task was killed",
    FailureKind.OTHER: "see the task's message and sandbox logs",
}

#: Checked in order, so the agent's own refusals come before the broad ``volume`` pattern they also match.
_PATTERNS: tuple[tuple[FailureKind, re.Pattern[str]], ...] = (
    (
        FailureKind.AGENT_CONFIG,
        re.compile(r"Volumes in ContainerInfo is not supported|Container root filesystems not supported"),
    ),
    (FailureKind.BOOTSTRAP_CHECK, re.compile(r"bootstrap check|exit(?:ed)?(?: with)?(?: status| code)? 78\b", re.I)),
    (
        FailureKind.VOLUME,
        re.compile(r"volume|VolumeDriver|dvdcli|rexray|mount(?:ing)?\b.*fail|failed to mount|\b503\b", re.I),
    ),
    (
        FailureKind.IMAGE,
        re.compile(r"no such image|pull access denied|manifest unknown|failed to pull|image .*not found", re.I),
    ),
)
_EXECUTOR_REASONS = frozenset(
    {"REASON_EXECUTOR_TERMINATED", "REASON_EXECUTOR_UNREGISTERED", "REASON_EXECUTOR_REREGISTRATION_TIMEOUT"}
)
_AGENT_REASONS = frozenset(
    {"REASON_AGENT_REMOVED", "REASON_AGENT_DISCONNECTED", "REASON_AGENT_RESTARTED", "REASON_AGENT_REMOVED_BY_OPERATOR"}
)


def classify_failure(update: StatusUpdate) -> FailureKind:
    """The cause of a failed or lost task, from its reason and message."""
    text = update.message or ""
    for kind, pattern in _PATTERNS:
        if pattern.search(text):
            return kind
    if update.reason in _EXECUTOR_REASONS:
        return FailureKind.EXECUTOR_LOST
    if update.reason in _AGENT_REASONS or update.state in (TaskState.GONE, TaskState.GONE_BY_OPERATOR):
        return FailureKind.AGENT_LOST
    if update.state is TaskState.KILLED:
        return FailureKind.KILLED
    return FailureKind.OTHER


@dataclass(frozen=True)
class NodeFailures:
    count: int
    kind: FailureKind
    message: str
    #: Do not launch this node id again before this time (seconds, the caller's clock).
    not_before: float
    #: The previous failure in a row said the same (kind and message): nothing changed since.
    repeated: bool = False


@dataclass(frozen=True)
class Backoff:
    """Exponential back-off per node id: ``base_s``, doubling per consecutive failure, at most ``max_s``."""

    failures: Mapping[int, NodeFailures] = field(default_factory=lambda: MappingProxyType({}))
    base_s: float = 5.0
    max_s: float = 300.0

    def delay(self, count: int) -> float:
        return float(min(self.max_s, self.base_s * 2 ** (count - 1)))

    def wait(self, node_id: int, now: float) -> float:
        """Seconds until ``node_id`` may be launched again (0 when it may now)."""
        record = self.failures.get(node_id)
        return max(0.0, record.not_before - now) if record else 0.0

    def failed(self, node_id: int, kind: FailureKind, message: str, now: float) -> Backoff:
        previous = self.failures.get(node_id)
        count = previous.count + 1 if previous is not None else 1
        repeated = previous is not None and (previous.kind, previous.message) == (kind, message)
        record = NodeFailures(count, kind, message, now + self.delay(count), repeated)
        return replace(self, failures=MappingProxyType({**self.failures, node_id: record}))

    def succeeded(self, node_id: int) -> Backoff:
        """The node reached RUNNING: its next failure starts the back-off afresh."""
        if node_id not in self.failures:
            return self
        failures = dict(self.failures)
        del failures[node_id]
        return replace(self, failures=MappingProxyType(failures))


def failure_report(
    node_id: int, task_id: str, record: NodeFailures, wait: float, reason: str | None = None
) -> tuple[int, str]:
    """The log level and line for node ``node_id``'s failure ``record`` (relaunch in ``wait`` s;
    ``reason``, the update's, is shown when it has no message).

    A failure of the agent's configuration is an ERROR with its hint the first time a node meets it in
    a row (or when what it says changes), and INFO while the back-off retries the same; any other
    failure is a WARNING every time, as each may be a new event worth seeing."""
    what = record.message or reason or "no message"
    if record.kind is FailureKind.AGENT_CONFIG:
        if record.repeated:
            return logging.INFO, (
                f"node {node_id} task {task_id} failed again ({record.kind}, {record.count} times in a row, "
                f"reported above): relaunch in {wait:.0f}s"
            )
        return logging.ERROR, (
            f"node {node_id} task {task_id} failed ({record.kind}): {what}. {HINTS[record.kind]}. Relaunch in "
            f"{wait:.0f}s with back-off; repeats of this failure are logged at INFO"
        )
    return logging.WARNING, f"node {node_id} task {task_id} failed ({record.kind}): {what}; relaunch in {wait:.0f}s"
