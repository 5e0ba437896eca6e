"""The cluster's node records: who holds which node id, as immutable data.

A node id is *reserved* exactly while a :class:`NodeRecord` holds it. How status updates change
the records (the identity rules) is :mod:`es_framework.core.status_updates`; how the state is
stored is :mod:`es_framework.core.state_document`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cached_property
from types import MappingProxyType
from typing import Any

from es_framework.config.constraints import HOSTNAME_FIELDS
from es_framework.core.cluster_ca import StoredCa
from es_framework.core.cluster_view import ClusterView, value_counts
from es_framework.core.config_overrides import NO_OVERRIDES, ConfigOverrides
from es_framework.core.disruption_ledger import Disruption
from es_framework.core.node_history import NodeHistory
from es_framework.core.rollout_model import Rollout
from es_framework.core.security_switch import SecuritySwitch
from es_framework.core.volumes import VolumeRemoval, VolumeSet, reconcile_removal_tasks
from identity.allocator import NodeIdAllocator

#: Default of --elasticsearchMasterNodes: node ids 1..N (N = this) are master-eligible.
MASTER_ELIGIBLE_NODES = 3


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
    #: The agent's zone and attributes (as text) when the task was launched: what placement counts
    #: by, kept so that a new leader counts exactly what the old one did.
    zone: str | None = None
    attributes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: Since when the task has not been reachable (UNREACHABLE, then perhaps UNKNOWN): Mesos'
    #: ``TaskStatus.unreachable_time`` when the update carried it, else the first such update's time.
    #: Stored, so a new leader does not start the --permanentFailureTimeout clock again.
    unreachable_since: float | None = None

    @property
    def transport_address(self) -> str:
        return f"{self.hostname}:{self.transport_port}"

    @property
    def http_address(self) -> str:
        return f"{self.hostname}:{self.http_port}"


@dataclass(frozen=True)
class Replacement:
    """An automatic replacement: node ``node_id``'s task ``task_id`` on ``agent_id``, unreachable since
    ``since``, was released at ``at`` (Unix seconds) after its agent was marked gone."""

    node_id: int
    task_id: str
    agent_id: str
    at: float
    since: float | None = None


@dataclass(frozen=True)
class Pin:
    """Relaunch a node only on ``agent_id``, until ``until`` (Unix seconds)."""

    agent_id: str
    until: float


@dataclass(frozen=True)
class NodeSummary:
    """What the progress line (:func:`es_framework.core.describe.describe`) says about the records,
    as counts and id sets: taken once per state, or adjusted for one id by
    :meth:`ClusterState.with_node`. Each set is usually small (a set is copied only when the one id
    enters or leaves it)."""

    running: int
    not_running: frozenset[int]
    outdated: frozenset[int]
    #: Records that report a cluster uuid other than the recorded one (see :func:`split_clusters`).
    foreign: frozenset[int]
    #: Ids above the desired count (being scaled away).
    surplus: frozenset[int]

    @classmethod
    def of(cls, state: ClusterState) -> NodeSummary:
        records = state.nodes.values()
        return cls(
            running=sum(1 for r in records if r.state is TaskState.RUNNING),
            not_running=frozenset(r.node_id for r in records if r.state is not TaskState.RUNNING),
            outdated=frozenset(r.node_id for r in records if r.outdated),
            foreign=frozenset(r.node_id for r in split_clusters(state)),
            surplus=frozenset(i for i in state.nodes if i > state.desired_nodes),
        )

    def adjusted(
        self, state: ClusterState, node_id: int, before: NodeRecord | None, after: NodeRecord | None
    ) -> NodeSummary:
        """This summary of ``state`` once node ``node_id``'s record goes from ``before`` to ``after``."""

        def running(record: NodeRecord | None) -> int:
            return 1 if record is not None and record.state is TaskState.RUNNING else 0

        present = after is not None
        return NodeSummary(
            running=self.running + running(after) - running(before),
            not_running=_with(self.not_running, node_id, present and not running(after)),
            outdated=_with(self.outdated, node_id, after is not None and after.outdated),
            foreign=_with(self.foreign, node_id, after is not None and _foreign(after, state.cluster_uuid)),
            surplus=_with(self.surplus, node_id, present and node_id > state.desired_nodes),
        )


def _with(ids: frozenset[int], node_id: int, member: bool) -> frozenset[int]:
    if (node_id in ids) == member:
        return ids
    return ids | {node_id} if member else ids - {node_id}


def _foreign(record: NodeRecord, cluster_uuid: str | None) -> bool:
    return cluster_uuid is not None and record.cluster_uuid is not None and record.cluster_uuid != cluster_uuid


@dataclass(frozen=True)
class ClusterState:
    """Everything the scheduler persists about the cluster, as immutable data."""

    desired_nodes: int
    nodes: Mapping[int, NodeRecord] = field(default_factory=lambda: MappingProxyType({}))
    framework_id: str | None = None
    #: The node-shaping configuration the nodes were launched with (``fingerprint`` and ``values``,
    #: see :mod:`es_framework.core.config_record`); None until the first registration records it.
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
    #: Node id -> its external volumes, for every node id that ever launched with them (see
    #: :mod:`es_framework.core.volumes`); kept after the node is gone.
    volumes: Mapping[int, VolumeSet] = field(default_factory=lambda: MappingProxyType({}))
    #: Node id -> the removal of its volumes (``--volumeRetention delete``, see
    #: :mod:`es_framework.core.volume_tasks`): released, in flight, failed or done.
    volume_removals: Mapping[int, VolumeRemoval] = field(default_factory=lambda: MappingProxyType({}))
    #: Node id -> its disruptive action (the planner's ledger, :mod:`es_framework.core.disruption`):
    #: queued, or started and persisted before anything is sent, until its task ends.
    disruptions: Mapping[int, Disruption] = field(default_factory=lambda: MappingProxyType({}))
    #: The last automatic replacement (:mod:`es_framework.core.permanent_failures`), None before the first:
    #: stored, so a new leader keeps one in flight at a time and the --replacementInterval.
    last_replacement: Replacement | None = None
    #: The rollout under way or paused (:mod:`es_framework.core.rollouts`); None when none is.
    rollout: Rollout | None = None
    #: Cluster settings a rollout changed and that must be put back (name -> value, None: remove),
    #: persisted before the change is undone so that a new leader finishes it; emptied once done.
    rollout_restore: Mapping[str, str | None] = field(default_factory=lambda: MappingProxyType({}))
    #: The last few finished rollouts (summaries, oldest first), for ``GET /v1/rollouts``.
    rollout_history: tuple[Mapping[str, Any], ...] = ()
    #: Flags changed through ``PUT /v1/cluster/configuration`` (:mod:`es_framework.core.config_overrides`):
    #: every leader applies them to its own flags, so a failover does not roll the cluster back.
    config_overrides: ConfigOverrides = NO_OVERRIDES
    #: Node id -> what happened to it, bounded (:mod:`es_framework.core.node_history`): stored per
    #: node, so a new leader shows the same history. Kept while the id is wanted or held.
    node_history: Mapping[int, NodeHistory] = field(default_factory=lambda: MappingProxyType({}))
    #: The cluster's certificate authority (``--elasticsearchSecurity auto``, :mod:`es_framework.core.cluster_ca`):
    #: created once, at the first leadership with ``auto``; None before.
    certificate_authority: StoredCa | None = None
    #: ``--elasticsearchSecurity`` as this cluster runs it (``auto`` or ``off``), recorded once at the
    #: first leadership that decides it (:mod:`es_framework.core.security_mode`); None: not recorded
    #: (a new state, or one written by an earlier release).
    security_mode: str | None = None
    #: A switch from ``off`` to ``auto`` by full cluster restart under way (:mod:`es_framework.core.security_switch`):
    #: no node is launched while one of its ids still holds a record; None when none is.
    security_switch: SecuritySwitch | None = None

    @cached_property
    def kept_nodes(self) -> int:
        """Records the desired count keeps (ids 1..desired); higher ids are being scaled away.

        Counted once per state, or carried over from the state :meth:`with_node` was called on: a
        status update asks for it (through :attr:`missing_nodes`) and must not count 10,000 records."""
        return sum(1 for node_id in self.nodes if node_id <= self.desired_nodes)

    @cached_property
    def summary(self) -> NodeSummary:
        """Counts and id sets for the progress line; carried over like :attr:`kept_nodes`."""
        return NodeSummary.of(self)

    @property
    def missing_nodes(self) -> int:
        return max(0, self.desired_nodes - self.kept_nodes)

    @cached_property
    def by_task_id(self) -> Mapping[str, NodeRecord]:
        return MappingProxyType({record.task_id: record for record in self.nodes.values()})

    def holder_of(self, task_id: str, node_id: int | None) -> NodeRecord | None:
        """The record of ``task_id``, whose task id names ``node_id`` (see
        :func:`identity.task_ids.try_node_id_from_task_id`): one lookup, where :attr:`by_task_id` is
        built over every record once per state."""
        record = self.nodes.get(node_id) if node_id is not None else None
        return record if record is not None and record.task_id == task_id else None

    def seed_hosts(self, master_nodes: int) -> tuple[str, ...]:
        """The transport addresses of the master-eligible nodes (ids up to ``master_nodes``) whose
        address is known, by node id. Looked up id by id (node ids start at 1, see
        :mod:`identity.task_ids`) when there are fewer of those than records, so it costs
        O(``master_nodes``), not O(records)."""
        if master_nodes < len(self.nodes):
            ids: Iterable[int] = (i for i in range(1, master_nodes + 1) if i in self.nodes)
        else:
            ids = (i for i in sorted(self.nodes) if i <= master_nodes)
        return tuple(
            self.nodes[i].transport_address for i in ids if self.nodes[i].hostname and self.nodes[i].transport_port
        )

    def allocator(self) -> NodeIdAllocator:
        """A fresh allocator holding every reserved id: every record's, and every id whose volumes a
        removal task may be removing right now (a node launched meanwhile could lose them under it)."""
        removing = {i for i, r in self.volume_removals.items() if r.in_flight}
        return NodeIdAllocator(sorted(set(self.nodes) | removing) if removing else sorted(self.nodes))

    def view(self, master_nodes: int = MASTER_ELIGIBLE_NODES, *, fields: Iterable[str] = ()) -> ClusterView:
        """The summary offer strategies see. Every record counts as present: a launching,
        unreachable or unknown node still holds its id, so no substitute is launched for it.
        Node ids up to ``master_nodes`` are master-eligible. Placement counts nodes per value of each
        of ``fields`` (the constraints' fields) and per zone, here, once per offer cycle: a rule
        then looks a value up instead of scanning the records."""
        records = sorted(self.nodes.values(), key=lambda r: r.node_id)
        agent_nodes: dict[str, tuple[int, ...]] = {}
        host_nodes: dict[str, tuple[int, ...]] = {}
        for r in records:
            agent_nodes[r.agent_id] = (*agent_nodes.get(r.agent_id, ()), r.node_id)
            if r.hostname:
                host_nodes[r.hostname] = (*host_nodes.get(r.hostname, ()), r.node_id)
        return ClusterView(
            desired_nodes=self.desired_nodes,
            present_nodes=self.kept_nodes,
            nodes_by_agent=MappingProxyType({r.agent_id: r.node_id for r in self.nodes.values()}),
            # An adopted task's host is unknown until the scheduler learns it from its agent.
            nodes_by_hostname=MappingProxyType({r.hostname: r.node_id for r in self.nodes.values() if r.hostname}),
            seed_hosts=self.seed_hosts(master_nodes),
            master_nodes=master_nodes,
            initial_master_nodes=self.bootstrap_masters if self.bootstrap_masters and not self.cluster_uuid else (),
            agent_nodes=MappingProxyType(agent_nodes),
            host_nodes=MappingProxyType(host_nodes),
            placement=MappingProxyType(
                {
                    name: value_counts((r.node_id, record_value(r, name)) for r in records)
                    for name in dict.fromkeys(fields)
                }
            ),
            zones=value_counts((r.node_id, r.zone) for r in records),
        )

    def reconcile_tasks(self) -> list[dict[str, Any]]:
        """The explicit RECONCILE list: every known task *with* its agent id (without it, the master
        answers UNKNOWN for a task on an unreachable agent)."""
        nodes = [
            {"task_id": {"value": r.task_id}, "agent_id": {"value": r.agent_id}}
            for r in sorted(self.nodes.values(), key=lambda r: r.node_id)
        ]
        # Volume removal tasks in flight: their end is their result.
        return nodes + reconcile_removal_tasks(self.volume_removals)

    def with_nodes(self, nodes: dict[int, NodeRecord]) -> ClusterState:
        """This state with ``nodes`` (a fresh dict, not copied again) as its records."""
        return replace(self, nodes=MappingProxyType(nodes))

    def with_history(self, histories: Mapping[int, NodeHistory]) -> ClusterState:
        """This state with ``histories`` as its node histories; the counts taken for this state
        (:attr:`kept_nodes`, :attr:`summary`, :attr:`by_task_id`) are carried over, since a history
        changes none of them (a status update that notes a failure must not count 10,000 records)."""
        if histories is self.node_history:
            return self
        state = replace(self, node_history=histories)
        for name in ("kept_nodes", "summary", "by_task_id"):
            if name in self.__dict__:
                state.__dict__[name] = self.__dict__[name]
        return state

    def with_node(self, node_id: int, record: NodeRecord | None) -> ClusterState:
        """This state with node ``node_id`` held by ``record`` (None: freed), as one status update
        changes it: a count already taken for this state (:attr:`kept_nodes`) is carried over,
        adjusted for the one id, instead of being taken again over every record."""
        nodes = _copy(self.nodes)
        before = nodes.pop(node_id, None)
        if record is not None:
            if record.node_id != node_id:
                raise NodeStateError(f"record of node {record.node_id} given for node {node_id}")
            nodes[node_id] = record
        state = self.with_nodes(nodes)
        # cached_property keeps its value in the instance's __dict__ (a frozen dataclass allows that);
        # replace() builds a fresh instance, so every other way to a new state counts afresh.
        kept = self.__dict__.get("kept_nodes")
        if kept is not None:
            if node_id <= self.desired_nodes:
                kept += (record is not None) - (before is not None)
            state.__dict__["kept_nodes"] = kept
        summary = self.__dict__.get("summary")
        if summary is not None:
            state.__dict__["summary"] = summary.adjusted(self, node_id, before, record)
        return state


def _copy(nodes: Mapping[int, NodeRecord]) -> dict[int, NodeRecord]:
    """A dict copy of ``nodes``: dict.copy() copies the table at once, where dict(a proxy) inserts
    each item again (about 20 times slower at 10,000 records)."""
    if isinstance(nodes, (dict, MappingProxyType)):
        return nodes.copy()
    return dict(nodes)


def record_value(record: NodeRecord, field: str) -> str | None:
    """The value a placement constraint over ``field`` sees for a node: its agent's hostname for
    ``hostname``, else the agent attribute recorded at launch (None: the agent had none)."""
    if field in HOSTNAME_FIELDS:
        return record.hostname or None
    return record.attributes.get(field)


def record_launch(state: ClusterState, record: NodeRecord) -> ClusterState:
    """Reserve ``record.node_id`` for a task about to be launched (persist this before ACCEPT)."""
    if record.node_id in state.nodes:
        holder = state.nodes[record.node_id]
        raise NodeStateError(f"node {record.node_id} is already held by task {holder.task_id} ({holder.state})")
    if record.task_id in state.by_task_id:
        raise NodeStateError(f"task id {record.task_id} is already recorded")
    if record.state is not TaskState.LAUNCHING:
        raise NodeStateError(f"a new launch must be recorded as LAUNCHING, not {record.state}")
    return state.with_nodes({**state.nodes, record.node_id: record})


def release_node(state: ClusterState, node_id: int) -> ClusterState:
    """Free a node id by operator decision (e.g. an UNKNOWN task the operator declared dead)."""
    if node_id not in state.nodes:
        raise NodeStateError(f"node {node_id} holds no task")
    nodes = dict(state.nodes)
    del nodes[node_id]
    return state.with_nodes(nodes)


def split_clusters(state: ClusterState) -> list[NodeRecord]:
    """Nodes that report a cluster uuid other than the recorded one."""
    return (
        [r for r in state.nodes.values() if _foreign(r, state.cluster_uuid)] if state.cluster_uuid is not None else []
    )
