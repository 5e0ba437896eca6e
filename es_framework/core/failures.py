"""Why a node's launch failed, and when to try that node id again.

Mesos reports a failed launch as a state plus free text; operators need the cause in words they
can act on, and the scheduler must not relaunch a node that fails at once in a tight loop (a
missing image or an unattachable volume would otherwise churn through every offer).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType

from es_framework.core.node_state import TaskState
from es_framework.core.status_updates import StatusUpdate


class FailureKind(StrEnum):
    BOOTSTRAP_CHECK = "bootstrap_check"
    VOLUME = "volume"
    IMAGE = "image"
    EXECUTOR_LOST = "executor_lost"
    AGENT_LOST = "agent_lost"
    KILLED = "killed"
    OTHER = "other"


HINTS = {
    FailureKind.BOOTSTRAP_CHECK: "Elasticsearch exited 78: a bootstrap check failed (vm.max_map_count on the agent, "
    "--elasticsearchNofile, heap or memory lock); the node's log names the check",
    FailureKind.VOLUME: "the volume driver could not create or attach a volume (REX-Ray answers 503 on a first "
    "create; also check that the volume is not attached to another host)",
    FailureKind.IMAGE: "the agent could not find or pull the executor image (--elasticsearchDockerImage)",
    FailureKind.EXECUTOR_LOST: "the executor exited or lost contact with its agent",
    FailureKind.AGENT_LOST: "the agent was lost or removed",
    FailureKind.KILLED: "the task was killed",
    FailureKind.OTHER: "see the task's message and sandbox logs",
}

_PATTERNS: tuple[tuple[FailureKind, re.Pattern[str]], ...] = (
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
        count = self.failures[node_id].count + 1 if node_id in self.failures else 1
        record = NodeFailures(count, kind, message, now + self.delay(count))
        return replace(self, failures=MappingProxyType({**self.failures, node_id: record}))

    def succeeded(self, node_id: int) -> Backoff:
        """The node reached RUNNING: its next failure starts the back-off afresh."""
        if node_id not in self.failures:
            return self
        failures = dict(self.failures)
        del failures[node_id]
        return replace(self, failures=MappingProxyType(failures))
