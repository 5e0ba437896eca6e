"""Telling running nodes the master-eligible nodes' transport addresses (framework messages).

Mesos neither interprets a framework message nor guarantees its delivery (scheduler HTTP API,
``MESSAGE`` call: https://mesos.apache.org/documentation/latest/scheduler-http-api/), so the list
is versioned (:class:`es_framework.contract.SeedHosts`): each running node is sent the current
version once, and everyone again (same version) after re-registration and periodically
(``resend``); an executor applies only a version newer than the last it applied. The version is
the clock in milliseconds, so a restarted scheduler never goes back.

What was sent is a function of the records (:class:`SeedHostsSent`: every RUNNING task got the
current version), so after a status update only the records it changed need a look
(:func:`seed_host_updates`); the whole cluster is walked only when the list itself changes, when
every running node must hear of it anyway.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from es_framework.config import Config
from es_framework.contract import SeedHosts
from es_framework.core.mesos_calls import Message
from es_framework.core.node_state import ClusterState, NodeRecord, TaskState
from es_framework.core.task_builder import executor_id_for


@dataclass(frozen=True)
class SeedHostsSent:
    """What was last told to whom: the current list and version, and the version each task got."""

    seed_hosts: tuple[str, ...] = ()
    version: int = 0
    #: task id -> the seed version last sent to it.
    by_task: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))


def seed_host_messages(
    sent: SeedHostsSent, state: ClusterState, config: Config, *, now: float, resend: bool = False
) -> tuple[SeedHostsSent, list[Message]]:
    """The messages that bring every running node up to date, and the new record of what was sent."""
    seeds = state.seed_hosts(config.master_nodes)
    version = sent.version
    if seeds != sent.seed_hosts:
        version = max(version + 1, int(now * 1000))
    if not seeds:
        return SeedHostsSent(seeds, version, sent.by_task), []
    data = SeedHosts(version, seeds).encode()
    messages: list[Message] = []
    by_task: dict[str, int] = {}
    for record in sorted(state.nodes.values(), key=lambda r: r.node_id):
        if record.state is not TaskState.RUNNING:
            continue
        by_task[record.task_id] = version
        if not resend and sent.by_task.get(record.task_id) == version:
            continue
        messages.append(_message(config, record, data))
    return SeedHostsSent(seeds, version, MappingProxyType(by_task)), messages


def seed_host_updates(
    sent: SeedHostsSent,
    before: ClusterState,
    state: ClusterState,
    changed: Collection[int],
    config: Config,
    *,
    now: float,
) -> tuple[SeedHostsSent, list[Message]]:
    """What :func:`seed_host_messages` returns for ``state`` (without ``resend``), given that ``sent``
    is its answer for ``before`` and that the two differ only in the records of the node ids in
    ``changed``. Costs O(``changed`` + master nodes)
    unless the seed list changed."""
    seeds = state.seed_hosts(config.master_nodes)
    if seeds != sent.seed_hosts:
        return seed_host_messages(sent, state, config, now=now)
    if not seeds:
        # As seed_host_messages: nothing is sent, and what was sent stays as it was.
        return sent, []
    data = SeedHosts(sent.version, seeds).encode()
    messages: list[Message] = []
    by_task: dict[str, int] | None = None
    for node_id in sorted(changed):
        old, record = before.nodes.get(node_id), state.nodes.get(node_id)
        if record is not None and record.state is not TaskState.RUNNING:
            record = None  # only running tasks are told, and remembered as told
        if old is not None and old.task_id in sent.by_task and (record is None or record.task_id != old.task_id):
            by_task = _copy(sent.by_task) if by_task is None else by_task
            del by_task[old.task_id]
        if record is None or sent.by_task.get(record.task_id) == sent.version:
            continue
        by_task = _copy(sent.by_task) if by_task is None else by_task
        by_task[record.task_id] = sent.version
        messages.append(_message(config, record, data))
    if by_task is None:
        return sent, messages
    return SeedHostsSent(seeds, sent.version, MappingProxyType(by_task)), messages


def _copy(by_task: Mapping[str, int]) -> dict[str, int]:
    # dict.copy() copies the table at once; dict(a proxy) inserts every item again.
    return by_task.copy() if isinstance(by_task, (dict, MappingProxyType)) else dict(by_task)


def _message(config: Config, record: NodeRecord, data: bytes) -> Message:
    launch_id = record.task_id.rsplit("-", 1)[1]
    return Message(record.agent_id, executor_id_for(config, record.node_id, launch_id), data)
