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

The back-off is for crash loops, not for the failure of a node that had been doing its job: waiting
there only lengthens the outage (measured on a Mesos 1.12 cluster, 5 of a replacement's 7 s were the
first failure's back-off). So a failure after a **healthy period** relaunches on the next offer,
and only failures in a row without one wait, ``base_s`` doubling. A healthy period is a run of the
node's task that its executor reported healthy (``TaskStatus.healthy``: Elasticsearch answered and
its cluster was green or yellow) or that lasted :data:`HEALTHY_AFTER_S`. Reaching RUNNING alone is
not one: a node that dies seconds after starting would otherwise relaunch at once forever.

"The next offer" must come at once too. Offers declined while the cluster was complete were refused
for minutes, so the engine sends REVIVE when such a failure leaves it unsuppressed (a suppressed one
revives anyway when a node goes missing): Mesos' allocator then drops the framework's offer filters
for its roles and offers again (``HierarchicalAllocatorProcess::reviveRoles``,
``src/master/allocator/mesos/hierarchical.cpp``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import TypeVar

from es_framework.core.node_state import NodeRecord, TaskState
from es_framework.core.status_updates import StatusUpdate

_T = TypeVar("_T")


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


#: A run at least this long (seconds) is a healthy period even if its executor never reported the node
#: healthy (its cluster may have been red for other reasons): the crash-loop back-off is then over.
HEALTHY_AFTER_S = 30.0


@dataclass(frozen=True)
class NodeFailures:
    count: int
    kind: FailureKind
    message: str
    #: Do not launch this node id again before this time (seconds, the caller's clock).
    not_before: float
    #: The previous failure in a row said the same (kind and message): nothing changed since.
    repeated: bool = False
    #: How many of these failures in a row were backed off: the first after a healthy period is not.
    backed_off: int = 1

    @property
    def after_healthy_period(self) -> bool:
        """The streak began with the failure of a node that had been healthy (relaunched at once)."""
        return self.backed_off < self.count


@dataclass(frozen=True)
class Run:
    """The newest task of a node id seen RUNNING: since when, and whether it had a healthy period."""

    task_id: str
    since: float
    healthy: bool = False

    def healthy_by(self, now: float, healthy_after_s: float) -> bool:
        return self.healthy or now - self.since >= healthy_after_s


@dataclass(frozen=True)
class Backoff:
    """Back-off per node id for crash loops: a failure after a healthy period relaunches on the next
    offer; each further failure in a row without one waits ``base_s``, doubling, at most ``max_s``."""

    failures: Mapping[int, NodeFailures] = field(default_factory=lambda: MappingProxyType({}))
    base_s: float = 5.0
    max_s: float = 300.0
    #: Node id -> its newest task seen RUNNING, until that node id next fails.
    runs: Mapping[int, Run] = field(default_factory=lambda: MappingProxyType({}))
    healthy_after_s: float = HEALTHY_AFTER_S

    def delay(self, count: int) -> float:
        return float(min(self.max_s, self.base_s * 2 ** (count - 1)))

    def wait(self, node_id: int, now: float) -> float:
        """Seconds until ``node_id`` may be launched again (0 when it may now)."""
        record = self.failures.get(node_id)
        return max(0.0, record.not_before - now) if record else 0.0

    def failed(
        self,
        node_id: int,
        kind: FailureKind,
        message: str,
        now: float,
        task_id: str | None = None,
        *,
        record: NodeRecord | None = None,
        ended_at: float | None = None,
    ) -> Backoff:
        """Node ``node_id``'s task ``task_id`` failed at ``now``. If a run of that node id had a healthy
        period since its previous failure, a new streak begins and the relaunch does not wait; else the
        streak goes on and waits longer. Without ``task_id`` the failed task's own run is not counted.

        ``record`` is the failed task's node record as stored, ``ended_at`` when the task ended (the
        update's ``TaskStatus.timestamp``). They count a run this scheduler never saw RUNNING: a node
        that ran under an earlier leader and failed while no scheduler led is heard of only from its
        failure (the agent re-sends it to the new subscriber), so without the record's ``started_at``
        (written when the earlier leader saw it RUNNING) and ``healthy`` every such failure looked like
        a crash loop and waited ``base_s``. The run ends at ``ended_at`` (never later than ``now``), so
        a node that failed soon after starting is not taken for a long run because the news came late."""
        run = self.runs.get(node_id)
        end = now
        if run is None and record is not None and record.task_id == task_id and record.started_at is not None:
            run = Run(record.task_id, record.started_at, record.healthy is True)
            end = now if ended_at is None else min(now, ended_at)
        healthy = run is not None and (
            run.healthy or (run.task_id == task_id and run.healthy_by(end, self.healthy_after_s))
        )
        previous = None if healthy else self.failures.get(node_id)
        count = previous.count + 1 if previous is not None else 1
        backed_off = previous.backed_off + 1 if previous is not None else (0 if healthy else 1)
        repeated = previous is not None and (previous.kind, previous.message) == (kind, message)
        delay = self.delay(backed_off) if backed_off else 0.0
        failure = NodeFailures(count, kind, message, now + delay, repeated, backed_off)
        runs = _copy(self.runs)
        runs.pop(node_id, None)
        return replace(
            self,
            failures=MappingProxyType({**self.failures, node_id: failure}),
            runs=MappingProxyType(runs),
        )

    def running(self, update: StatusUpdate, holder: NodeRecord | None, now: float) -> Backoff:
        """A TASK_RUNNING ``update`` (first, repeated or a health report), ``holder`` being the node's
        record in the state written for it. A task no record holds (to be killed, or freed in the same batch)
        proves nothing. The run counts from the record's ``started_at``, which a new leader reads
        back from the state, so a long run is not taken for a short one after a failover."""
        task_id = update.task_id
        if holder is None or holder.task_id != task_id:
            return self
        run = self.runs.get(holder.node_id)
        if run is None or run.task_id != task_id:
            run = Run(task_id, holder.started_at if holder.started_at is not None else now)
        updated = replace(run, healthy=run.healthy_by(now, self.healthy_after_s) or update.healthy is True)
        if updated == self.runs.get(holder.node_id):
            return self
        # A copy of the table, not a walk of it: Backoff.running runs for every node's first RUNNING.
        runs = _copy(self.runs)
        runs[holder.node_id] = updated
        return replace(self, runs=MappingProxyType(runs))


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
    when = f"relaunch in {wait:.0f}s" if wait > 0 else "relaunch on the next offer"
    if record.after_healthy_period and record.count == 1:
        when += " (it had been healthy: no back-off)"
    return logging.WARNING, f"node {node_id} task {task_id} failed ({record.kind}): {what}; {when}"


def _copy(table: Mapping[int, _T]) -> dict[int, _T]:
    """A dict copy of ``table``: ``.copy()`` of a dict or mapping proxy copies at C speed, where
    ``dict(proxy)`` or ``{**proxy}`` walks it in Python (1.8 s of a 10,000-task reconcile)."""
    if isinstance(table, (dict, MappingProxyType)):
        copied = table.copy()
        if isinstance(copied, dict):
            return copied
    return dict(table)
