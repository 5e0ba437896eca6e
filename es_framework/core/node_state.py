"""The cluster's node records and how status updates change them: the identity rules, as pure functions.

A node id is *reserved* exactly while a :class:`NodeRecord` holds it. The rules that make
identity safe live here and nowhere else:

- A record is written (state ``LAUNCHING``) before the launch goes to Mesos, so a crash between
  the two leaves the id reserved, never lost; reconciliation later settles it.
- An id is freed only when its task is certainly dead: FINISHED, FAILED, KILLED, ERROR, DROPPED,
  GONE, GONE_BY_OPERATOR or LOST.
- UNREACHABLE keeps the id: the old node may still be writing its volume. It is released when
  Mesos reports the task gone, and simply restored if the task comes back RUNNING.
- UNKNOWN frees the id only for a task never seen RUNNING (a launch that never reached Mesos);
  a task last seen RUNNING or UNREACHABLE stays reserved and is flagged for the operator.
- A live task for an id held by *another* task is killed: never two live tasks with one node id.
  A live task of ours that no record holds is adopted (its task id names its node id).
- Duplicate, late and out-of-order updates change nothing wrong: a task's state never moves back
  from RUNNING to STAGING or STARTING, and an update for a task that is not the id's current
  holder never changes the holder's record.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cached_property
from types import MappingProxyType
from typing import Any

from es_framework.core.cluster_view import ClusterView
from identity.allocator import NodeIdAllocator
from identity.naming import volume_names
from identity.task_ids import try_node_id_from_task_id

#: Version of the JSON written by :func:`state_to_json`. Version 1 (no bootstrap record, no cluster
#: uuid) is still read; see :func:`state_from_json`.
SCHEMA_VERSION = 2
READABLE_SCHEMAS = frozenset({1, 2})
#: Default of --elasticsearchMasterNodes: node ids 1..N (N = this) are master-eligible.
MASTER_ELIGIBLE_NODES = 3
#: ``GET /`` answers this as ``cluster_uuid`` while a node has not joined a formed cluster.
UNFORMED_CLUSTER_UUID = "_na_"


class NodeStateError(ValueError):
    """A status update or stored state that is not well-formed; nothing was changed."""


class TaskState(StrEnum):
    #: Ours, not Mesos': the record is written and the launch may or may not have reached Mesos.
    LAUNCHING = "LAUNCHING"
    STAGING = "TASK_STAGING"
    STARTING = "TASK_STARTING"
    RUNNING = "TASK_RUNNING"
    KILLING = "TASK_KILLING"
    FINISHED = "TASK_FINISHED"
    FAILED = "TASK_FAILED"
    KILLED = "TASK_KILLED"
    ERROR = "TASK_ERROR"
    LOST = "TASK_LOST"
    DROPPED = "TASK_DROPPED"
    GONE = "TASK_GONE"
    GONE_BY_OPERATOR = "TASK_GONE_BY_OPERATOR"
    UNREACHABLE = "TASK_UNREACHABLE"
    UNKNOWN = "TASK_UNKNOWN"


#: States after which the task certainly runs nowhere: its node id may be reused.
FREEING_STATES = frozenset(
    {
        TaskState.FINISHED,
        TaskState.FAILED,
        TaskState.KILLED,
        TaskState.ERROR,
        TaskState.LOST,
        TaskState.DROPPED,
        TaskState.GONE,
        TaskState.GONE_BY_OPERATOR,
    }
)
#: States of a task that is (or may soon be) running on its agent.
LIVE_STATES = frozenset({TaskState.STAGING, TaskState.STARTING, TaskState.RUNNING, TaskState.KILLING})
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


@dataclass(frozen=True)
class NodeReport:
    """The executor's ``TaskStatus.data``: JSON ``{"cluster_uuid", "version", "node_name"}`` (see
    :mod:`es_framework.executor`). Every field is optional; unreadable data is no report."""

    cluster_uuid: str | None = None
    version: str | None = None
    node_name: str | None = None


def parse_report(data: object) -> NodeReport | None:
    """``TaskStatus.data`` as the v1 JSON API carries it (base64 text) to a :class:`NodeReport`."""
    if not isinstance(data, str) or not data:
        return None
    try:
        document = json.loads(base64.b64decode(data, validate=True).decode("utf-8"))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(document, Mapping):
        return None

    def text(key: str) -> str | None:
        value = document.get(key)
        return value if isinstance(value, str) and value and len(value) <= 200 else None

    uuid = text("cluster_uuid")
    report = NodeReport(
        cluster_uuid=None if uuid == UNFORMED_CLUSTER_UUID else uuid,
        version=text("version"),
        node_name=text("node_name"),
    )
    return report if report != NodeReport() else None


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
    timestamp = raw.get("timestamp")

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
        timestamp=float(timestamp) if isinstance(timestamp, (int, float)) and not isinstance(timestamp, bool) else None,
        report=parse_report(raw.get("data")),
    )


@dataclass(frozen=True)
class NodeRecord:
    """One node id and the task that currently holds it."""

    node_id: int
    task_id: str
    agent_id: str
    hostname: str
    http_port: int
    transport_port: int
    state: TaskState = TaskState.LAUNCHING
    #: Whether this task was ever seen RUNNING (decides what UNKNOWN means).
    seen_running: bool = False
    #: Config and data volume names (external storage), else None.
    volumes: tuple[str, str] | None = None
    #: Set when Mesos no longer knows a task that may still run: the operator must decide.
    needs_operator: bool = False
    last_reason: str | None = None
    last_message: str | None = None
    updated_at: float | None = None
    #: Launched with a configuration that has changed since (see ``ClusterState.config``): the node
    #: keeps running as it is until it is replaced.
    outdated: bool = False
    #: The executor's last health report (``TaskStatus.healthy``), None before the first.
    healthy: bool | None = None
    #: When this task was first seen RUNNING.
    started_at: float | None = None
    #: The cluster uuid and Elasticsearch version the node last reported.
    cluster_uuid: str | None = None
    version: str | None = None
    #: Why the scheduler is stopping this task on purpose (``restart``, ``replace``, ``scale-down``);
    #: its end is then no failure (no back-off).
    stopping: str | None = None

    @property
    def transport_address(self) -> str:
        return f"{self.hostname}:{self.transport_port}"

    @property
    def http_address(self) -> str:
        return f"{self.hostname}:{self.http_port}"


@dataclass(frozen=True)
class Pin:
    """Relaunch a node only on ``agent_id``, until ``until`` (Unix seconds)."""

    agent_id: str
    until: float


@dataclass(frozen=True)
class ClusterState:
    """Everything the scheduler persists about the cluster, as immutable data."""

    desired_nodes: int
    nodes: Mapping[int, NodeRecord] = field(default_factory=lambda: MappingProxyType({}))
    framework_id: str | None = None
    #: The node-shaping configuration the nodes were launched with (``fingerprint`` and ``values``,
    #: see ``engine.config_fingerprint``); None until the first registration records it.
    config: Mapping[str, Any] | None = None
    #: What changed in that configuration across restarts, oldest first (kept to the last few).
    config_changes: tuple[Mapping[str, Any], ...] = ()
    #: Set by ``es-framework teardown``: the framework is gone and no scheduler may start on this state.
    torn_down_at: float | None = None
    #: ``cluster.initial_master_nodes`` for forming a brand-new cluster (see :mod:`es_framework.core.bootstrap`):
    #: None = not decided yet; () = never bootstrap (the cluster formed, or it predates this record);
    #: names = send them to master-eligible nodes until the cluster reports its uuid.
    bootstrap_masters: tuple[str, ...] | None = None
    #: The uuid the cluster reported once it formed; it never changes afterwards.
    cluster_uuid: str | None = None
    #: Node id -> the agent it must be relaunched on, until when (a restart in place keeps a node on
    #: its agent, where its local data is).
    pins: Mapping[int, Pin] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def kept_nodes(self) -> int:
        """Records the desired count keeps (ids 1..desired); higher ids are being scaled away."""
        return sum(1 for node_id in self.nodes if node_id <= self.desired_nodes)

    @property
    def missing_nodes(self) -> int:
        return max(0, self.desired_nodes - self.kept_nodes)

    @cached_property
    def by_task_id(self) -> Mapping[str, NodeRecord]:
        return MappingProxyType({record.task_id: record for record in self.nodes.values()})

    def allocator(self) -> NodeIdAllocator:
        """A fresh allocator holding every reserved id."""
        return NodeIdAllocator(sorted(self.nodes))

    def view(self, master_nodes: int = MASTER_ELIGIBLE_NODES) -> ClusterView:
        """The summary offer strategies see. Every record counts as present: a launching,
        unreachable or unknown node still holds its id, so no substitute is launched for it.
        Node ids up to ``master_nodes`` are master-eligible."""
        return ClusterView(
            desired_nodes=self.desired_nodes,
            present_nodes=self.kept_nodes,
            nodes_by_agent=MappingProxyType({r.agent_id: r.node_id for r in self.nodes.values()}),
            # An adopted task's host is unknown until the scheduler learns it from its agent.
            nodes_by_hostname=MappingProxyType({r.hostname: r.node_id for r in self.nodes.values() if r.hostname}),
            seed_hosts=tuple(
                self.nodes[i].transport_address
                for i in sorted(self.nodes)
                if i <= master_nodes and self.nodes[i].hostname and self.nodes[i].transport_port
            ),
            master_nodes=master_nodes,
            initial_master_nodes=self.bootstrap_masters if self.bootstrap_masters and not self.cluster_uuid else (),
        )

    def reconcile_tasks(self) -> list[dict[str, Any]]:
        """The explicit RECONCILE list: every known task *with* its agent id (without it, the master
        answers UNKNOWN for a task on an unreachable agent)."""
        return [
            {"task_id": {"value": r.task_id}, "agent_id": {"value": r.agent_id}}
            for r in sorted(self.nodes.values(), key=lambda r: r.node_id)
        ]


def _with_nodes(state: ClusterState, nodes: dict[int, NodeRecord]) -> ClusterState:
    return replace(state, nodes=MappingProxyType(nodes))


def record_launch(state: ClusterState, record: NodeRecord) -> ClusterState:
    """Reserve ``record.node_id`` for a task about to be launched (persist this before ACCEPT)."""
    if record.node_id in state.nodes:
        holder = state.nodes[record.node_id]
        raise NodeStateError(f"node {record.node_id} is already held by task {holder.task_id} ({holder.state})")
    if record.task_id in state.by_task_id:
        raise NodeStateError(f"task id {record.task_id} is already recorded")
    if record.state is not TaskState.LAUNCHING:
        raise NodeStateError(f"a new launch must be recorded as LAUNCHING, not {record.state}")
    return _with_nodes(state, {**state.nodes, record.node_id: record})


def release_node(state: ClusterState, node_id: int) -> ClusterState:
    """Free a node id by operator decision (e.g. an UNKNOWN task the operator declared dead)."""
    if node_id not in state.nodes:
        raise NodeStateError(f"node {node_id} holds no task")
    nodes = dict(state.nodes)
    del nodes[node_id]
    return _with_nodes(state, nodes)


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
        )
        state, _ = _learn_cluster_uuid(state, node_id, record.cluster_uuid)
        return _with_nodes(state, {**state.nodes, node_id: record}), Decision(
            Action.ADOPT, node_id, task_id, f"{update.state} task of node {node_id} that state did not hold"
        )
    return state, Decision(Action.IGNORE, node_id, task_id, f"{update.state} for a task state no longer holds")


def _held(
    state: ClusterState, holder: NodeRecord, update: StatusUpdate, now: float | None
) -> tuple[ClusterState, Decision]:
    node_id, task_id, new = holder.node_id, holder.task_id, update.state
    if new in FREEING_STATES:
        nodes = dict(state.nodes)
        del nodes[node_id]
        why = f"{new}" + (f" ({update.reason})" if update.reason else "") + f": node {node_id} is free"
        return _with_nodes(state, nodes), Decision(Action.FREE, node_id, task_id, why)
    if new is TaskState.UNKNOWN:
        # needs_operator: an earlier UNKNOWN already found it last RUNNING or UNREACHABLE.
        if holder.seen_running or holder.state is TaskState.UNREACHABLE or holder.needs_operator:
            if holder.needs_operator and holder.state is TaskState.UNKNOWN:
                return state, Decision(Action.IGNORE, node_id, task_id, "still unknown to Mesos")
            changed = replace(holder, state=new, needs_operator=True, last_reason=update.reason, updated_at=now)
            return _with_nodes(state, {**state.nodes, node_id: changed}), Decision(
                Action.UPDATE,
                node_id,
                task_id,
                f"Mesos does not know the task, which was last {holder.state}; node {node_id} stays reserved "
                "until an operator frees it",
            )
        nodes = dict(state.nodes)
        del nodes[node_id]
        return _with_nodes(state, nodes), Decision(
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
        return state, Decision(Action.IGNORE, node_id, task_id, f"duplicate {new}")
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
    )
    state, uuid_news = _learn_cluster_uuid(state, node_id, report.cluster_uuid)
    if uuid_news:
        return _with_nodes(state, {**state.nodes, node_id: changed}), Decision(
            Action.UPDATE, node_id, task_id, uuid_news
        )
    if new is TaskState.UNREACHABLE:
        why = f"agent unreachable; node {node_id} stays reserved until Mesos reports the task gone"
    elif holder.state in (TaskState.UNREACHABLE, TaskState.UNKNOWN) and new is TaskState.RUNNING:
        why = f"back from {holder.state}: node {node_id} is kept"
    elif new == holder.state and changed.healthy != holder.healthy:
        why = f"{'healthy' if changed.healthy else 'unhealthy'} (was {holder.healthy})"
    else:
        why = f"{holder.state} -> {new}"
    return _with_nodes(state, {**state.nodes, node_id: changed}), Decision(Action.UPDATE, node_id, task_id, why)


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


def split_clusters(state: ClusterState) -> list[NodeRecord]:
    """Nodes that report a cluster uuid other than the recorded one."""
    if state.cluster_uuid is None:
        return []
    return [r for r in state.nodes.values() if r.cluster_uuid is not None and r.cluster_uuid != state.cluster_uuid]


# --- persistence ---------------------------------------------------------------------------------


def state_to_json(state: ClusterState) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "framework_id": state.framework_id,
        "desired_nodes": state.desired_nodes,
        "nodes": [
            {
                "node_id": r.node_id,
                "task_id": r.task_id,
                "agent_id": r.agent_id,
                "hostname": r.hostname,
                "http_port": r.http_port,
                "transport_port": r.transport_port,
                "state": r.state.value,
                "seen_running": r.seen_running,
                "volumes": list(r.volumes) if r.volumes else None,
                "needs_operator": r.needs_operator,
                "last_reason": r.last_reason,
                "last_message": r.last_message,
                "updated_at": r.updated_at,
                "outdated": r.outdated,
                "healthy": r.healthy,
                "started_at": r.started_at,
                "cluster_uuid": r.cluster_uuid,
                "version": r.version,
                "stopping": r.stopping,
            }
            for r in sorted(state.nodes.values(), key=lambda r: r.node_id)
        ],
        "config": dict(state.config) if state.config is not None else None,
        "config_changes": [dict(change) for change in state.config_changes],
        "torn_down_at": state.torn_down_at,
        "bootstrap_masters": list(state.bootstrap_masters) if state.bootstrap_masters is not None else None,
        "cluster_uuid": state.cluster_uuid,
        "pins": {str(k): {"agent_id": p.agent_id, "until": p.until} for k, p in sorted(state.pins.items())},
    }


def _field(raw: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = raw.get(key)
    # bool is an int subclass; a stored true where a node id belongs is corruption, not 1.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise NodeStateError(f"{where}: '{key}' is missing or has the wrong type")
    return value


def state_from_json(raw: object, framework_name: str) -> ClusterState:
    """Stored state back to :class:`ClusterState`, checking every identity invariant on the way."""
    if not isinstance(raw, Mapping):
        raise NodeStateError("stored state is not a JSON object")
    schema = raw.get("schema")
    if schema not in READABLE_SCHEMAS or isinstance(schema, bool):
        raise NodeStateError(
            f"stored state has schema {schema!r}; this version reads {', '.join(map(str, sorted(READABLE_SCHEMAS)))}"
        )
    desired = _field(raw, "desired_nodes", int, "stored state")
    if desired < 1:
        raise NodeStateError(f"stored state: desired_nodes {desired} is below 1")
    framework_id = raw.get("framework_id")
    if framework_id is not None and not isinstance(framework_id, str):
        raise NodeStateError("stored state: framework_id must be a string or null")
    nodes: dict[int, NodeRecord] = {}
    seen_tasks: set[str] = set()
    for index, item in enumerate(_field(raw, "nodes", list, "stored state")):
        where = f"stored node #{index}"
        if not isinstance(item, Mapping):
            raise NodeStateError(f"{where} is not an object")
        node_id = _field(item, "node_id", int, where)
        task_id = _field(item, "task_id", str, where)
        if try_node_id_from_task_id(task_id, framework_name) != node_id:
            raise NodeStateError(f"{where}: task id {task_id!r} does not name node {node_id} of {framework_name!r}")
        if node_id in nodes or task_id in seen_tasks:
            raise NodeStateError(f"{where}: node {node_id} or task {task_id} appears twice")
        try:
            task_state = TaskState(_field(item, "state", str, where))
        except ValueError:
            raise NodeStateError(f"{where}: unknown state {item.get('state')!r}") from None
        volumes = item.get("volumes")
        if volumes is not None and (
            not isinstance(volumes, list) or tuple(volumes) != volume_names(framework_name, node_id)
        ):
            raise NodeStateError(f"{where}: volumes {volumes!r} are not node {node_id}'s")
        nodes[node_id] = NodeRecord(
            node_id=node_id,
            task_id=task_id,
            agent_id=_field(item, "agent_id", str, where),
            hostname=_field(item, "hostname", str, where),
            http_port=_field(item, "http_port", int, where),
            transport_port=_field(item, "transport_port", int, where),
            state=task_state,
            seen_running=_field(item, "seen_running", bool, where),
            volumes=(volumes[0], volumes[1]) if volumes else None,
            needs_operator=bool(item.get("needs_operator", False)),
            last_reason=item.get("last_reason") if isinstance(item.get("last_reason"), str) else None,
            last_message=item.get("last_message") if isinstance(item.get("last_message"), str) else None,
            updated_at=float(item["updated_at"]) if isinstance(item.get("updated_at"), (int, float)) else None,
            outdated=item.get("outdated") is True,
            healthy=item.get("healthy") if isinstance(item.get("healthy"), bool) else None,
            started_at=float(item["started_at"]) if isinstance(item.get("started_at"), (int, float)) else None,
            cluster_uuid=_optional_text(item, "cluster_uuid", where),
            version=_optional_text(item, "version", where),
            stopping=_optional_text(item, "stopping", where),
        )
        seen_tasks.add(task_id)
    config = raw.get("config")
    if config is not None and (not isinstance(config, Mapping) or not isinstance(config.get("fingerprint"), str)):
        raise NodeStateError("stored state: config must be an object with a fingerprint, or null")
    changes = raw.get("config_changes") or []
    if not isinstance(changes, list) or not all(isinstance(c, Mapping) for c in changes):
        raise NodeStateError("stored state: config_changes must be a list of objects")
    torn_down_at = raw.get("torn_down_at")
    if torn_down_at is not None and (not isinstance(torn_down_at, (int, float)) or isinstance(torn_down_at, bool)):
        raise NodeStateError("stored state: torn_down_at must be a time or null")
    cluster_uuid = _optional_text(raw, "cluster_uuid", "stored state")
    if schema == 1:
        # Written before bootstrapping was recorded: a cluster that ever had nodes may hold data, so
        # it must never be bootstrapped again; a brand-new one may.
        bootstrap: tuple[str, ...] | None = () if nodes or framework_id else None
    else:
        masters = raw.get("bootstrap_masters")
        if masters is not None and (not isinstance(masters, list) or not all(isinstance(m, str) for m in masters)):
            raise NodeStateError("stored state: bootstrap_masters must be a list of node names or null")
        bootstrap = tuple(masters) if masters is not None else None
    if cluster_uuid is not None and bootstrap:
        raise NodeStateError("stored state: a cluster with a recorded uuid cannot still be bootstrapping")
    pins: dict[int, Pin] = {}
    raw_pins = raw.get("pins") or {}
    if not isinstance(raw_pins, Mapping):
        raise NodeStateError("stored state: pins must be an object")
    for key, pin in raw_pins.items():
        if not (isinstance(key, str) and key.isdigit() and isinstance(pin, Mapping)):
            raise NodeStateError(f"stored state: pin {key!r} is not a node id with an object")
        agent, until = pin.get("agent_id"), pin.get("until")
        if not isinstance(agent, str) or not isinstance(until, (int, float)) or isinstance(until, bool):
            raise NodeStateError(f"stored state: pin of node {key} needs agent_id and until")
        pins[int(key)] = Pin(agent, float(until))
    return ClusterState(
        desired_nodes=desired,
        nodes=MappingProxyType(nodes),
        framework_id=framework_id,
        config=MappingProxyType(dict(config)) if config is not None else None,
        config_changes=tuple(MappingProxyType(dict(c)) for c in changes),
        torn_down_at=float(torn_down_at) if torn_down_at is not None else None,
        bootstrap_masters=bootstrap,
        cluster_uuid=cluster_uuid,
        pins=MappingProxyType(pins),
    )


def _optional_text(raw: Mapping[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise NodeStateError(f"{where}: '{key}' must be a string or null")
    return value


def describe(state: ClusterState) -> str:
    """One progress line for the log, e.g. ``2/3 nodes running; node 3 launching``."""
    running = sum(1 for r in state.nodes.values() if r.state is TaskState.RUNNING)
    parts = [f"{running}/{state.desired_nodes} nodes running"]
    others = [r for r in sorted(state.nodes.values(), key=lambda r: r.node_id) if r.state is not TaskState.RUNNING]
    parts.extend(
        f"node {r.node_id} {_STATE_WORDS.get(r.state, r.state.value)}"
        + (" (operator action needed)" if r.needs_operator else "")
        for r in others
    )
    parts.extend(
        f"node {r.node_id} is in another cluster (uuid {r.cluster_uuid}, not {state.cluster_uuid})"
        for r in sorted(split_clusters(state), key=lambda r: r.node_id)
    )
    outdated = sorted(r.node_id for r in state.nodes.values() if r.outdated)
    if outdated:
        parts.append(f"outdated configuration: node(s) {', '.join(map(str, outdated))}")
    surplus = sorted(node_id for node_id in state.nodes if node_id > state.desired_nodes)
    if surplus:
        parts.append(f"scaling down: node(s) {', '.join(map(str, surplus))} to be drained and stopped")
    missing = state.missing_nodes
    if missing > 0:
        parts.append(f"{missing} node(s) waiting for an offer")
    return "; ".join(parts)


_STATE_WORDS = {
    TaskState.LAUNCHING: "launching",
    TaskState.STAGING: "staging",
    TaskState.STARTING: "starting",
    TaskState.KILLING: "stopping",
    TaskState.UNREACHABLE: "unreachable (id kept)",
    TaskState.UNKNOWN: "unknown to Mesos (id kept)",
}
