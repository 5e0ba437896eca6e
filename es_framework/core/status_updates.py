"""How Mesos status updates change the node records: the identity rules, as pure functions.

A node id is *reserved* exactly while a :class:`NodeRecord` holds it. The rules that make
identity safe live here and nowhere else:

- A record is written (state ``LAUNCHING``) before the launch goes to Mesos, so a crash between
  the two leaves the id reserved, never lost; reconciliation later settles it.
- An id is freed only when its task is certainly dead: FINISHED, FAILED, KILLED, ERROR, DROPPED,
  GONE, GONE_BY_OPERATOR or LOST.
- UNREACHABLE keeps the id: the old node may still be writing its volume. It is released when
  Mesos reports the task gone, and simply restored if the task comes back RUNNING.
- UNKNOWN frees the id only for a task never seen RUNNING (a launch that never reached Mesos);
  a task last seen RUNNING or UNREACHABLE stays reserved and is flagged for the operator, unless
  the master reports its agent's machine DOWN for maintenance, which shut the agent down with its
  tasks (:meth:`~es_framework.core.engine_maintenance.MaintenanceAnswers.machines_down`).
- A live task for an id held by *another* task is killed: never two live tasks with one node id.
  A live task of ours that no record holds is adopted (its task id names its node id).
- Duplicate, late and out-of-order updates change nothing wrong: a task's state never moves back
  from RUNNING to STAGING or STARTING, and an update for a task that is not the id's current
  holder never changes the holder's record.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from types import MappingProxyType

from es_framework.contract import AgentCheckReport, NodeReport
from es_framework.core.node_state import (
    FREEING_STATES,
    LIVE_STATES,
    ClusterState,
    NodeRecord,
    NodeStateError,
    TaskState,
)
from es_framework.core.volume_tasks import mark_volumes_removed, removal_result, settle_removal
from identity.task_ids import TaskKind, parse_task_id, try_node_id_from_task_id

_MESOS_STATES = frozenset(s.value for s in TaskState if s is not TaskState.LAUNCHING)
# Progress of a live task; an update that would move a task back along it is stale.
_PROGRESS = {TaskState.LAUNCHING: 0, TaskState.STAGING: 1, TaskState.STARTING: 2, TaskState.RUNNING: 3}


@dataclass(frozen=True)
class StatusUpdate:
    """The parts of a Mesos ``TaskStatus`` the scheduler decides on."""

    task_id: str
    state: TaskState
    agent_id: str | None = None
    reason: str | None = None
    source: str | None = None
    message: str | None = None
    #: Present only on updates that must be acknowledged (base64 as on the wire).
    uuid: str | None = None
    healthy: bool | None = None
    timestamp: float | None = None
    #: What the executor reported about the node in ``TaskStatus.data``, if anything.
    report: NodeReport | None = None
    #: The agent limits a bootstrap check refused (``TaskStatus.data`` of a TASK_FAILED), if any.
    agent_checks: AgentCheckReport | None = None
    #: ``TaskStatus.unreachable_time`` (seconds): when the master found the task's agent unreachable,
    #: by the master's clock (``include/mesos/v1/mesos.proto``, TaskStatus field 14).
    unreachable_time: float | None = None


#: The fields of a v1 ``TaskStatus`` that :func:`parse_status` reads; the shell keeps only these of a
#: queued update (its ``container_status``, ``executor_id``, labels and check status are never read).
READ_FIELDS = (
    "task_id",
    "state",
    "agent_id",
    "reason",
    "source",
    "message",
    "uuid",
    "healthy",
    "timestamp",
    "data",
    "unreachable_time",
)


def parse_status(raw: object) -> StatusUpdate:
    """A TaskStatus from v1 JSON (``event.update.status``); :class:`NodeStateError` if malformed."""
    if not isinstance(raw, Mapping):
        raise NodeStateError("a task status must be a JSON object")
    task = raw.get("task_id")
    if not isinstance(task, Mapping) or not isinstance(task.get("value"), str) or not task["value"]:
        raise NodeStateError("task status without task_id.value")
    state_text = raw.get("state")
    if not isinstance(state_text, str) or state_text == TaskState.LAUNCHING or state_text not in _MESOS_STATES:
        raise NodeStateError(f"task {task['value']}: {state_text!r} is not a Mesos task state")
    state = TaskState(state_text)
    agent = raw.get("agent_id")
    agent_id = agent.get("value") if isinstance(agent, Mapping) else None
    healthy = raw.get("healthy")

    def text(key: str) -> str | None:
        value = raw.get(key)
        return value if isinstance(value, str) else None

    return StatusUpdate(
        task_id=task["value"],
        state=state,
        agent_id=agent_id if isinstance(agent_id, str) and agent_id else None,
        reason=text("reason"),
        source=text("source"),
        message=text("message"),
        uuid=text("uuid"),
        healthy=healthy if isinstance(healthy, bool) else None,
        timestamp=_timestamp(raw.get("timestamp")),
        report=NodeReport.decode_wire(raw.get("data")),
        # Only a TASK_FAILED carries one: no second decode of every RUNNING update's data.
        agent_checks=AgentCheckReport.decode_wire(raw.get("data")) if state is TaskState.FAILED else None,
        unreachable_time=_time_info(raw.get("unreachable_time")),
    )


def _time_info(value: object) -> float | None:
    """A ``TimeInfo`` (``{"nanoseconds": int64}``; JSON may carry the int64 as a string) in seconds."""
    nanos = value.get("nanoseconds") if isinstance(value, Mapping) else None
    if isinstance(nanos, str) and nanos.lstrip("-").isdigit():
        nanos = int(nanos)
    if not isinstance(nanos, int) or isinstance(nanos, bool):
        return None
    return nanos / 1e9


def _timestamp(value: object) -> float | None:
    """``TaskStatus.timestamp`` (a double, seconds): None when absent, not a number, or beyond a double."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except OverflowError:  # an integer with more digits than a double holds
        return None
    return seconds if math.isfinite(seconds) else None


class Action(StrEnum):
    #: Nothing changed (duplicate, stale, or not ours).
    IGNORE = "ignore"
    #: The holder's record changed; the id stays reserved.
    UPDATE = "update"
    #: The task is certainly dead; its id is free.
    FREE = "free"
    #: A live task of ours that no record held is now recorded.
    ADOPT = "adopt"
    #: The task must be killed (it would be a second live task for one node id, or is not ours).
    KILL = "kill"


@dataclass(frozen=True)
class Decision:
    action: Action
    node_id: int | None
    task_id: str
    #: Why, in words for the log.
    reason: str
    #: The update only repeated what the record already says (a routine resend or health report).
    duplicate: bool = False

    def __str__(self) -> str:
        node = f"node {self.node_id}" if self.node_id is not None else "no node"
        return f"{node} task {self.task_id}: {self.action.value}: {self.reason}"


def apply_status(
    state: ClusterState, update: StatusUpdate, framework_name: str, *, now: float | None = None
) -> tuple[ClusterState, Decision]:
    """Apply one status update (or reconciliation answer). Pure: returns the new state and why."""
    node_id = try_node_id_from_task_id(update.task_id, framework_name)
    task_id = update.task_id
    if node_id is None:
        parsed = parse_task_id(task_id, framework_name)
        if parsed.kind is TaskKind.VOLUMES and parsed.node_id is not None:
            # Before any node-identity rule: a removal task names volumes, not a node to hold.
            return _volume_task_status(state, update, parsed.node_id, now)
        if update.state in LIVE_STATES or update.state is TaskState.UNREACHABLE:
            return state, Decision(Action.KILL, None, task_id, "task id names no node of this framework")
        return state, Decision(Action.IGNORE, None, task_id, f"{update.state} for a task that is not ours")

    holder = state.nodes.get(node_id)
    if holder is None:
        return _unheld(state, update, node_id, now)
    if holder.task_id != task_id:
        if update.state in LIVE_STATES or update.state is TaskState.UNREACHABLE:
            return state, Decision(
                Action.KILL,
                node_id,
                task_id,
                f"node {node_id} is held by task {holder.task_id}; a second task for one node id must not run",
            )
        return state, Decision(Action.IGNORE, node_id, task_id, f"{update.state} of an earlier task of node {node_id}")
    return _held(state, holder, update, now)


def _volume_task_status(
    state: ClusterState, update: StatusUpdate, node_id: int, now: float | None
) -> tuple[ClusterState, Decision]:
    """A volume removal task's update (see :mod:`es_framework.core.volume_tasks`): its end settles the
    removal; a live task that no removal holds is killed (it could remove volumes nobody released)."""
    task_id = update.task_id
    removal = state.volume_removals.get(node_id)
    if removal is None or removal.task_id != task_id:
        if update.state in LIVE_STATES or update.state is TaskState.UNREACHABLE:
            why = f"a volume task for node {node_id} that no removal holds"
            return state, Decision(Action.KILL, None, task_id, why)
        why = f"{update.state} of an earlier volume task of node {node_id}"
        return state, Decision(Action.IGNORE, None, task_id, why)
    done, error = removal_result({"state": update.state.value, "reason": update.reason, "message": update.message})
    clock = now if now is not None else 0.0
    settled = settle_removal(removal, task_id, done, error, clock)
    if settled is removal:
        return state, Decision(
            Action.IGNORE, None, task_id, f"removal of node {node_id}'s volumes {update.state}", duplicate=True
        )
    removals = MappingProxyType({**state.volume_removals, node_id: settled})
    if done:
        volumes = mark_volumes_removed(state.volumes, node_id, clock)
        return replace(state, volume_removals=removals, volumes=volumes), Decision(
            Action.UPDATE, None, task_id, f"node {node_id}'s volumes {', '.join(removal.volumes)} were removed"
        )
    return replace(state, volume_removals=removals), Decision(
        Action.UPDATE,
        None,
        task_id,
        f"removing node {node_id}'s volumes failed (attempt {settled.attempts}): {error}",
    )


def _unheld(
    state: ClusterState, update: StatusUpdate, node_id: int, now: float | None
) -> tuple[ClusterState, Decision]:
    task_id = update.task_id
    if update.state in LIVE_STATES or update.state is TaskState.UNREACHABLE:
        if update.agent_id is None:
            return state, Decision(Action.KILL, node_id, task_id, "a live task without an agent id cannot be adopted")
        record = NodeRecord(
            node_id=node_id,
            task_id=task_id,
            agent_id=update.agent_id,
            # Reconciliation answers carry no hostname or ports; the scheduler fills them in
            # from the task's labels or the agent when it has them.
            hostname="",
            http_port=0,
            transport_port=0,
            state=update.state,
            seen_running=update.state is TaskState.RUNNING,
            last_reason=update.reason,
            last_message=update.message,
            updated_at=now,
            started_at=now if update.state is TaskState.RUNNING else None,
            cluster_uuid=update.report.cluster_uuid if update.report else None,
            version=update.report.version if update.report else None,
            unreachable_since=_unreachable_since(None, update, now),
        )
        state, _ = _learn_cluster_uuid(state, node_id, record.cluster_uuid)
        return state.with_node(node_id, record), Decision(
            Action.ADOPT, node_id, task_id, f"{update.state} task of node {node_id} that state did not hold"
        )
    return state, Decision(Action.IGNORE, node_id, task_id, f"{update.state} for a task state no longer holds")


def _held(
    state: ClusterState, holder: NodeRecord, update: StatusUpdate, now: float | None
) -> tuple[ClusterState, Decision]:
    node_id, task_id, new = holder.node_id, holder.task_id, update.state
    if new in FREEING_STATES:
        why = f"{new}" + (f" ({update.reason})" if update.reason else "") + f": node {node_id} is free"
        return state.with_node(node_id, None), Decision(Action.FREE, node_id, task_id, why)
    if new is TaskState.UNKNOWN:
        # needs_operator: an earlier UNKNOWN already found it last RUNNING or UNREACHABLE.
        if holder.seen_running or holder.state is TaskState.UNREACHABLE or holder.needs_operator:
            if holder.needs_operator and holder.state is TaskState.UNKNOWN:
                return state, Decision(Action.IGNORE, node_id, task_id, "still unknown to Mesos")
            changed = replace(
                holder,
                state=new,
                needs_operator=True,
                last_reason=update.reason,
                updated_at=now,
                unreachable_since=_unreachable_since(holder, update, now),
            )
            return state.with_node(node_id, changed), Decision(
                Action.UPDATE,
                node_id,
                task_id,
                f"Mesos does not know the task, which was last {holder.state}; node {node_id} stays reserved "
                "until an operator frees it",
            )
        return state.with_node(node_id, None), Decision(
            Action.FREE, node_id, task_id, f"Mesos does not know the task and it never ran; node {node_id} is free"
        )
    # A live state or UNREACHABLE.
    old_rank = _PROGRESS.get(holder.state)
    new_rank = _PROGRESS.get(new)
    if old_rank is not None and new_rank is not None and new_rank < old_rank:
        return state, Decision(Action.IGNORE, node_id, task_id, f"stale {new} after {holder.state}")
    # Same state on the same agent with no new health news is a duplicate, whatever its reason: a
    # reconciliation answer (REASON_RECONCILIATION) or a periodic health report repeats what is
    # recorded, and writing the whole state for it made reconciling N tasks cost O(N^2).
    report = update.report or NodeReport()
    if (
        new == holder.state
        and update.agent_id in (None, holder.agent_id)
        and (update.healthy is None or update.healthy == holder.healthy)
        and report.cluster_uuid in (None, holder.cluster_uuid)
        and report.version in (None, holder.version)
    ):
        return state, Decision(Action.IGNORE, node_id, task_id, f"duplicate {new}", duplicate=True)
    changed = replace(
        holder,
        state=new,
        seen_running=holder.seen_running or new is TaskState.RUNNING,
        agent_id=update.agent_id or holder.agent_id,
        needs_operator=False,
        last_reason=update.reason,
        last_message=update.message,
        updated_at=now,
        healthy=update.healthy if update.healthy is not None else holder.healthy,
        started_at=holder.started_at if holder.started_at is not None or new is not TaskState.RUNNING else now,
        cluster_uuid=report.cluster_uuid or holder.cluster_uuid,
        version=report.version or holder.version,
        unreachable_since=_unreachable_since(holder, update, now),
    )
    state, uuid_news = _learn_cluster_uuid(state, node_id, report.cluster_uuid)
    if uuid_news:
        return state.with_node(node_id, changed), Decision(Action.UPDATE, node_id, task_id, uuid_news)
    if new is TaskState.UNREACHABLE:
        why = f"agent unreachable; node {node_id} stays reserved until Mesos reports the task gone"
    elif holder.state in (TaskState.UNREACHABLE, TaskState.UNKNOWN) and new is TaskState.RUNNING:
        why = f"back from {holder.state}: node {node_id} is kept"
    elif new == holder.state and changed.healthy != holder.healthy:
        why = f"{'healthy' if changed.healthy else 'unhealthy'} (was {holder.healthy})"
    else:
        why = f"{holder.state} -> {new}"
    return state.with_node(node_id, changed), Decision(Action.UPDATE, node_id, task_id, why)


def _unreachable_since(holder: NodeRecord | None, update: StatusUpdate, now: float | None) -> float | None:
    """Since when the task has been out of reach once ``update`` applies: None while it is live; an
    earlier start is kept (UNKNOWN after UNREACHABLE, a repeated UNREACHABLE, a new leader's
    reconciliation), else Mesos' ``unreachable_time`` — never later than ``now`` (another clock) —
    else ``now``."""
    if update.state in LIVE_STATES:
        return None
    if holder is not None and holder.unreachable_since is not None:
        return holder.unreachable_since
    if update.state is not TaskState.UNREACHABLE and update.state is not TaskState.UNKNOWN:
        return None
    if update.unreachable_time is not None:
        return update.unreachable_time if now is None else min(update.unreachable_time, now)
    return now


def _learn_cluster_uuid(state: ClusterState, node_id: int, reported: str | None) -> tuple[ClusterState, str | None]:
    """Record the cluster uuid the first time a node reports one (bootstrapping is over then);
    a different uuid later means the node is in another cluster: said loudly, never recorded."""
    if reported is None or reported == state.cluster_uuid:
        return state, None
    if state.cluster_uuid is None:
        return replace(state, cluster_uuid=reported, bootstrap_masters=()), (
            f"the cluster formed: uuid {reported} recorded (reported by node {node_id}); "
            "cluster.initial_master_nodes is no longer sent"
        )
    return state, (
        f"node {node_id} reports cluster uuid {reported}, but this cluster's uuid is {state.cluster_uuid}: "
        "the node is NOT part of the cluster (its data belongs to another cluster); operator action needed"
    )
