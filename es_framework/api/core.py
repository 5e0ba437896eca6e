"""What the REST API needs from the scheduler: read-only snapshots and a few quick commands.

The HTTP layer (:mod:`es_framework.api.app`) knows nothing of Mesos, ZooKeeper or the engine. It
talks to an :class:`ApiCore`, which the scheduler implements. The contract that keeps the API safe
to call at any moment:

- Every read method returns an immutable snapshot (the frozen dataclasses below) from a copy the
  scheduler refreshes after each event it handles. A read is cheap and never waits for the
  scheduler's event handling, so a slow client or a scrape every second cannot delay Mesos events.
- Every command validates its arguments against the current state, records the request for the
  scheduler's loop and returns at once, or raises :class:`ApiError` with the HTTP status and a
  sentence saying what is wrong; a command that raises has changed nothing.

Times are Unix seconds (floats, UTC); the HTTP layer renders them as ISO 8601.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from es_framework.api.rollout_views import RolloutsView, RolloutView
from es_framework.core.volume_inventory import VolumeInventory


class ApiError(Exception):
    """A command refused: ``status`` is the HTTP status to answer, ``message`` says why.

    Use 400 for a request that can never succeed (``0 nodes``), 404 for a node id nothing holds,
    409 for a request that conflicts with the node's or cluster's current state ("node 4 is not
    unreachable"), 503 while the scheduler cannot act (not leading, ZooKeeper suspended).
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class NodeEvent:
    """One step in a node's history: a state it reached, or something done to it."""

    time: float
    #: The task state after the event (``TASK_RUNNING``, ``LAUNCHING``, …); for a persisted entry,
    #: the state it was noted with (empty when the node held no task then).
    state: str
    message: str
    #: What a persisted entry is about (``launch``, ``failure``, ``stopped``, ``command``, ``restart``,
    #: ``replace``, ``scale-down``, ``maintenance``, ``rollout``, ``replacement``:
    #: :class:`es_framework.core.node_history.HistoryKind`); None for this scheduler's routine task
    #: updates, which are not persisted.
    kind: str | None = None
    #: A rollout step's rollout id and what the step did (``started``, ``done``, ``failed``, …).
    rollout: str | None = None
    step: str | None = None


@dataclass(frozen=True)
class NodeVolumes:
    """The node's external volume names; both None with local storage."""

    config: str | None = None
    data: str | None = None


@dataclass(frozen=True)
class NodeView:
    """One node id and the task that holds it, as the API shows it."""

    node_id: int
    task_id: str
    #: The Elasticsearch node name (``elasticsearch<id>``).
    name: str
    #: ``LAUNCHING`` or a Mesos task state name (``TASK_RUNNING``, ``TASK_UNREACHABLE``, …).
    state: str
    hostname: str
    agent_id: str
    #: ``host:port``; None while the address is not known.
    http_address: str | None
    transport_address: str | None
    volumes: NodeVolumes = NodeVolumes()
    #: When the task was first seen RUNNING; None before.
    started_at: float | None = None
    #: The Elasticsearch version the node reported, if any.
    version: str | None = None
    #: The executor's last health report; None before the first.
    healthy: bool | None = None
    #: Launched with a configuration that has changed since.
    outdated: bool = False
    #: Oldest first: the node's persisted history (bounded per node, kept across failovers), with
    #: this scheduler's routine task updates of the node between its entries.
    history: tuple[NodeEvent, ...] = ()


@dataclass(frozen=True)
class DrainProgress:
    """A node being emptied of shards before it is removed (scale-down) or replaced."""

    node_id: int
    #: Shards still on the node; None until Elasticsearch was asked.
    shards_left: int | None
    #: Short word: ``draining``, ``waiting``, ``ready``, ``stopping``, ``blocked``, ``stalled``.
    status: str
    #: Why the node is drained ("scale down to 3 nodes"), or what holds it back.
    reason: str
    #: The disruption planner's predicate that holds this node back (e.g. ``max_unavailable``: no
    #: more than ``--maxUnavailable`` nodes away at once), named in ``reason`` too; None when none does.
    predicate: str | None = None


@dataclass(frozen=True)
class RuleOutcomeView:
    """One offer rule's outcome for a declined offer: passed or failed, and why."""

    rule: str
    passed: bool
    reason: str


@dataclass(frozen=True)
class DeclineSummary:
    """Offers declined for one reason: the first failing rule of the offer strategy (e.g. ``mem``),
    the one they are counted under."""

    reason: str
    count: int
    #: The most recent decline's full sentence and its time.
    last_message: str
    last_time: float
    #: The most recent decline's complete explanation: every rule's outcome, in the strategy's
    #: order (so other failing rules show too); empty when no rule judged the offer (``malformed``,
    #: ``store_unavailable``).
    outcomes: tuple[RuleOutcomeView, ...] = ()


@dataclass(frozen=True)
class ClusterEvent:
    """Something that happened to the cluster, for the operator's recent-events list."""

    time: float
    message: str
    #: The node concerned, if one is.
    node_id: int | None = None


@dataclass(frozen=True)
class AgentCheckView:
    """One agent limit a node's bootstrap check refused: what the agent has, what Elasticsearch needs,
    and the operator's fix."""

    name: str
    found: str
    needed: str
    fix: str


@dataclass(frozen=True)
class BlockedAgentView:
    """An agent that failed an agent check: no node is launched there until ``blocked_until``, unless
    the operator clears it first (``DELETE /v1/agents/{agent_id}/failures``)."""

    agent_id: str
    hostname: str
    checks: tuple[AgentCheckView, ...]
    blocked_at: float
    blocked_until: float
    #: The node and task whose failure blocked it.
    node_id: int
    task_id: str
    #: ``report`` (the executor checked the agent) or ``message`` (Elasticsearch's exit-78 message).
    source: str
    #: The whole sentence, as the ``agent_check`` decline reason says it.
    message: str


@dataclass(frozen=True)
class AgentView:
    """An agent that offered to this scheduler (since it started), and its block if one is in force."""

    agent_id: str
    hostname: str
    blocked: BlockedAgentView | None = None


#: The values of :attr:`ClusterOverview.mode`: a Mesos cluster, local mode, or a Mesos master on this
#: machine's loopback (the development cluster of the tests).
MODE_MESOS = "mesos"
MODE_LOCAL = "local"
MODE_DEVELOPMENT = "development"
MODES = (MODE_MESOS, MODE_LOCAL, MODE_DEVELOPMENT)


def mode_label(mode: str, demo_nodes: bool) -> str:
    """What the web UI's header says of the mode, e.g. ``local mode · demo nodes, not Elasticsearch``."""
    where = {
        MODE_LOCAL: "local mode",
        MODE_DEVELOPMENT: "development cluster",
    }.get(mode, "Mesos (production)")
    if demo_nodes:
        return f"{where} · demo nodes, not Elasticsearch"
    return f"{where} · development tool" if mode == MODE_LOCAL else where


@dataclass(frozen=True)
class WaitingReason:
    """Offers declined under one rule since the missing nodes started waiting."""

    rule: str
    count: int
    #: Why the last such offer was declined.
    last_message: str


@dataclass(frozen=True)
class WaitingView:
    """Missing nodes waiting for an offer, and why no offer fits them (the decline reasons by count)."""

    #: The lowest missing node ids (at most 20; ``missing`` says how many in all).
    node_ids: tuple[int, ...]
    missing: int
    #: When this set of nodes started waiting.
    since: float
    #: Most declines first.
    reasons: tuple[WaitingReason, ...]
    #: The same in one sentence, as the scheduler logs it.
    message: str


@dataclass(frozen=True)
class ClusterOverview:
    """Everything ``GET /v1/cluster`` shows.

    Named so as not to be confused with :class:`es_framework.core.cluster_view.ClusterView`, the
    strategies' summary of node placement.
    """

    cluster_name: str
    framework_name: str
    #: None before the first registration with Mesos.
    framework_id: str | None
    #: Elasticsearch's ``cluster_uuid`` once the cluster formed; None before.
    cluster_uuid: str | None
    #: The configuration as JSON-compatible values, secrets already masked by the core.
    configuration: Mapping[str, object]
    desired_nodes: int
    running_nodes: int
    #: Whether the scheduler is subscribed to Mesos right now.
    registered: bool
    #: Elasticsearch's cluster health (``green``, ``yellow``, ``red``) or ``unknown``.
    health: str
    #: Set when the cluster runs without authentication or TLS, to be shown prominently.
    security_warning: str | None = None
    drain: tuple[DrainProgress, ...] = ()
    #: Most frequent reason first.
    declines: tuple[DeclineSummary, ...] = ()
    #: Newest first, bounded by the core.
    events: tuple[ClusterEvent, ...] = ()
    #: How the framework runs: ``mesos`` (on a Mesos cluster) or ``local`` (local mode, a development
    #: tool: a simulated Mesos cluster on one machine).
    mode: str = MODE_MESOS
    #: What the operator must know about the mode, shown with the cluster's name (local mode: that
    #: it is a development tool, and whether the nodes run the demo node, which is not Elasticsearch).
    mode_note: str | None = None
    #: Whether the nodes run the demo node (a development tool, not Elasticsearch).
    demo_nodes: bool = False
    #: The mode in a few words, for the web UI's header (:func:`mode_label`; filled in when not given).
    mode_label: str = ""
    #: The missing nodes waiting for an offer and why none fits; None when no node is missing.
    waiting: WaitingView | None = None
    #: Agents that failed an agent check and get no node now, by agent id.
    blocked_agents: tuple[BlockedAgentView, ...] = ()
    #: Why no missing node can start (every agent that offered failed an agent check); None otherwise.
    start_blocked: str | None = None

    def __post_init__(self) -> None:
        if not self.mode_label:
            object.__setattr__(self, "mode_label", mode_label(self.mode, self.demo_nodes))


def _empty_counts() -> Mapping[str, int]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Metrics:
    """The values ``GET /metrics`` exposes. Counters count since this scheduler process started."""

    #: Task state name -> number of node records in it (states with no node may be left out).
    nodes_by_state: Mapping[str, int] = field(default_factory=_empty_counts)
    desired_nodes: int = 0
    running_nodes: int = 0
    #: Node ids reserved (held by a record), whatever the task's state.
    node_ids_in_use: int = 0
    registered: bool = False
    offers_received: int = 0
    offers_accepted: int = 0
    #: Decline reason code -> offers declined for it.
    offers_declined: Mapping[str, int] = field(default_factory=_empty_counts)
    reconciliations: int = 0
    #: Times this scheduler took over leadership or re-subscribed with a known framework id.
    failovers: int = 0
    #: Node id -> shards still on that draining node (only nodes whose count is known).
    drain_shards_left: Mapping[int, int] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Health:
    """Whether the scheduler process is worth keeping (``GET /health``, Marathon's health check)."""

    #: False when the scheduler's loop is stuck or dead: Marathon should restart the process.
    alive: bool
    #: Subscribed to Mesos right now; False during a failover or reconnection, which is normal.
    registered: bool
    message: str = ""


class ApiCore(Protocol):
    """The scheduler as the REST API sees it. Implemented by the scheduler; tests use a fake."""

    def cluster(self) -> ClusterOverview:
        """The cluster snapshot. Cheap; never blocks on event handling."""
        ...

    def nodes(self) -> tuple[NodeView, ...]:
        """Every node record, ordered by node id. Cheap; never blocks on event handling."""
        ...

    def node(self, node_id: int) -> NodeView | None:
        """One node with its history, or None when no record holds ``node_id``."""
        ...

    def metrics(self) -> Metrics:
        """Counters and gauges for ``/metrics``. Cheap; never blocks on event handling."""
        ...

    def health(self) -> Health:
        """Liveness of the scheduler loop (e.g. it handled an event or a tick recently)."""
        ...

    def volumes(self) -> VolumeInventory:
        """The external volumes of every node id ever used (``GET /v1/volumes``): the inventory of the
        last published state against the running configuration. Cheap; never blocks on event handling."""
        ...

    def profiles(self) -> Sequence[Mapping[str, Any]]:
        """The storage profiles and what each means per volume driver (``GET /v1/profiles``), as
        JSON values."""
        ...

    def agents(self) -> tuple[AgentView, ...]:
        """Every agent that offered since the scheduler started (and any blocked one), by agent id."""
        ...

    def clear_agent_failures(self, agent_id: str) -> str:
        """Lift ``agent_id``'s agent-check block (the operator fixed the agent): nodes may launch there
        again at once. Returns a sentence saying what was done (also when there was no block in force).
        Raises :class:`ApiError` 404 for an agent the scheduler has not heard of."""
        ...

    def configuration(self) -> Mapping[str, Any]:
        """``GET /v1/cluster/configuration``: the changeable flags, their values now and as given at
        start, the overrides made through the API, the recorded fingerprint (JSON values)."""
        ...

    def change_configuration(self, values: Mapping[str, object]) -> Mapping[str, Any]:
        """``PUT /v1/cluster/configuration`` with flag name -> JSON value: persists the change and the
        rollout it creates, then runs with it, and says what it did (``changed``, ``message``,
        ``rollout`` or None, ``overrides``, ``warnings``). Raises :class:`ApiError` 400 (unknown,
        unchangeable or invalid flag), 409 (a rollout in progress, a version the nodes cannot reach),
        503, and then changes nothing (:mod:`es_framework.core.config_change`)."""
        ...

    def set_desired_nodes(self, count: int) -> None:
        """Ask for ``count`` nodes (already checked to be an int ≥ 1 by the HTTP layer).

        Persists the new count (it must survive a failover) or queues it for the loop that does,
        and returns; scaling itself happens later. Raises :class:`ApiError` (e.g. 503 when not
        leading, 409 when a scale-down is refused) and then changes nothing.
        """
        ...

    def restart_node(self, node_id: int, *, force: str | None = None) -> str:
        """Restart node ``node_id`` in place (same agent, same volumes): queued for the disruption
        planner, or at once with ``force`` (the operator's reason, logged).

        Returns a sentence saying what will happen. Raises :class:`ApiError` 404 when no record
        holds the id, 409 when the node's state does not allow it (not running, already restarting).
        """
        ...

    def replace_node(self, node_id: int, *, force: str | None = None) -> str:
        """Stop node ``node_id`` and launch it again, possibly on another agent, with its volumes: a
        running node is queued for the disruption planner (drained as its shutdown type says), or
        replaced at once with ``force`` (the operator's reason, logged); a node that is not running
        has nothing to drain and is replaced at once.

        Returns a sentence saying what will happen. Raises :class:`ApiError` 404 / 409 as
        :meth:`restart_node`.
        """
        ...

    def declare_gone(self, node_id: int) -> str:
        """The operator states that node ``node_id``'s task is dead for good (its agent is gone).

        Frees the id so that the node can be launched again and re-attach its volumes. The HTTP
        layer has already checked the operator's explicit confirmation. Raises :class:`ApiError`
        404 when no record holds the id, 409 when the node is not in a state where this is needed
        ("node 4 is not unreachable": a running node must be replaced, not declared gone).
        """
        ...

    def rollouts(self) -> RolloutsView:
        """The rollout under way (or paused) and the last few finished ones."""
        ...

    def start_restart(self, disabled: frozenset[str] = frozenset()) -> RolloutView:
        """Create a rollout restarting every kept node (409 while another rollout is under way), its
        steps without the predicates named in ``disabled`` (400: unknown or never disabled)."""
        ...

    def rollout_command(
        self, rollout_id: str, verb: str, reason: str = "", disabled: frozenset[str] = frozenset()
    ) -> RolloutView:
        """Pause, resume, abort or force (``reason``: why) the current rollout, or set the predicates
        disabled for its steps (``predicates``: exactly ``disabled``; 400 for a name that is unknown
        or never disabled) (404 for another id, 409 when finished)."""
        ...
