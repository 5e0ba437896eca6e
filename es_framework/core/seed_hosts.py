"""Telling running nodes the master-eligible nodes' transport addresses (framework messages).

Mesos neither interprets a framework message nor guarantees its delivery (scheduler HTTP API,
``MESSAGE`` call: https://mesos.apache.org/documentation/latest/scheduler-http-api/), so the list
is versioned (:class:`es_framework.contract.SeedHosts`): each running node is sent the current
version once, and everyone again (same version) after re-registration and periodically
(``resend``); an executor applies only a version newer than the last it applied. The version is
the clock in milliseconds, so a restarted scheduler never goes back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from es_framework.config import Config
from es_framework.contract import SeedHosts
from es_framework.core.mesos_calls import Message
from es_framework.core.node_state import ClusterState, TaskState
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
    seeds = state.view(config.master_nodes).seed_hosts
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
        launch_id = record.task_id.rsplit("-", 1)[1]
        executor_id = executor_id_for(config, record.node_id, launch_id)
        messages.append(Message(record.agent_id, executor_id, data))
    return SeedHostsSent(seeds, version, MappingProxyType(by_task)), messages
