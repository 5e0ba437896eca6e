"""The one planner every disruptive action goes through: which may start now, or what blocks it.

Scale-down drains, rollout steps, operator restarts and replacements, and maintenance drains all
take a node away for a while. Operators of other platforms lost data where two of those ran at
once, or where a check passed because it could not tell. So here, in one pure function,
:func:`plan_disruption`:

- **at most** ``--maxUnavailable`` **nodes are unavailable**, counted across every intent: nodes
  whose disruption has started (the *ledger*, persisted before anything is sent), rollout steps
  under way, and kept node ids that are missing, not running, reported unhealthy, or not in
  Elasticsearch's node list;
- **at most one new action per call**, the first waiting intent (maintenance, replace, restart,
  scale-down, rollout; oldest first) whose predicates all hold; every other waiting intent is
  reported with the first predicate that blocks it, by name;
- **fail closed**: no answer, an error or an unparseable answer from Elasticsearch
  (:class:`~es_framework.core.disruption_seen.Unknown`) blocks everything (``elasticsearch_answered``);
- the **shutdown type follows the intent** (:func:`shutdown_type`): ``remove`` for a node that
  leaves (scale-down; replace or maintenance with local disk), ``restart`` for one that comes back
  with the same volumes; a registered ``remove`` is never turned into ``restart``.

The predicates follow ECK's upgrade predicates (elastic/cloud-on-k8s,
``docs/reference/upgrade-predicates.md``: ``do_not_restart_healthy_node_if_MaxUnavailable_reached``,
``skip_already_terminating_pods``, ``only_restart_healthy_node_if_green_or_yellow``,
``require_started_replica``, ``one_master_at_a_time``), named here as :data:`PREDICATES`. An
operator may disable one by name (:func:`check_disabled`), except those in :data:`NEVER_DISABLED`;
a rollout's one-step ``force`` disables only :data:`FORCEABLE`. The names and those rules are
:mod:`es_framework.core.predicates`; what the operator disabled for a rollout
(``Rollout.disabled_predicates``) applies to that rollout's steps only, and is said in the decision's
notes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from es_framework.core.bootstrap import is_master_eligible
from es_framework.core.disruption_ledger import Disruption, Kind, ShutdownType
from es_framework.core.disruption_seen import Observation, Seen, Unknown
from es_framework.core.node_state import ClusterState, NodeRecord, TaskState
from es_framework.core.operations import OperatorError
from es_framework.core.predicates import FORCEABLE, NEVER_DISABLED, PREDICATES, check_disabled
from es_framework.core.rollouts import Rollout, candidates
from identity.naming import node_name

# The ledger's entry and kinds live in disruption_ledger (the cluster state holds the ledger); they
# are part of the planner's interface too.
__all__ = [
    "FORCEABLE",
    "NEVER_DISABLED",
    "PREDICATES",
    "PRIORITY",
    "Blocked",
    "Decision",
    "Disruption",
    "Kind",
    "Settings",
    "ShutdownType",
    "check_disabled",
    "plan_disruption",
    "request",
    "settle",
    "shutdown_type",
    "started_on_their_task",
    "step_settled",
    "unavailable_nodes",
]

#: Which waiting intent is considered first.
PRIORITY = (Kind.MAINTENANCE, Kind.REPLACE, Kind.RESTART, Kind.SCALE_DOWN, Kind.ROLLOUT)


_NOT_STARTED = frozenset({TaskState.LAUNCHING, TaskState.STAGING, TaskState.STARTING})
_DOING = {
    Kind.MAINTENANCE: "being drained for maintenance",
    Kind.REPLACE: "being replaced",
    Kind.RESTART: "restarting",
    Kind.SCALE_DOWN: "draining for scale-down",
    Kind.ROLLOUT: "restarting (rollout)",
}


@dataclass(frozen=True)
class Settings:
    max_unavailable: int
    framework_name: str
    master_nodes: int
    #: External volumes: a replaced or maintained node comes back with its volumes (restart).
    external_volumes: bool
    disabled: frozenset[str] = frozenset()
    #: Treat every rollout as a version upgrade: a step may start while the cluster is yellow, with
    #: every primary assigned (:func:`yellow_refusal`; a rollout with ``upgrade`` does so by itself).
    allow_yellow: bool = False


@dataclass(frozen=True)
class Blocked:
    node_id: int
    kind: Kind
    predicate: str
    message: str


@dataclass(frozen=True)
class Decision:
    #: The one action to start now (already marked started): persist it in the ledger, then act.
    start: Disruption | None
    blocked: tuple[Blocked, ...]
    #: Node id -> why it counts as unavailable now.
    unavailable: Mapping[int, str]
    max_unavailable: int
    #: The operator's force reason this start used, if any.
    forced: str | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def summary(self) -> str:
        if self.start is not None:
            return f"node {self.start.node_id}: {self.start.kind.value} starts ({self.start.shutdown.value})"
        if self.blocked:
            b = self.blocked[0]
            return f"node {b.node_id} {b.kind.value} waits: {b.predicate}: {b.message}"
        return "nothing to do"


def shutdown_type(kind: Kind, external_volumes: bool, registered: str | None = None) -> ShutdownType:
    if registered == ShutdownType.REMOVE.value or kind is Kind.SCALE_DOWN:
        return ShutdownType.REMOVE
    if kind in (Kind.REPLACE, Kind.MAINTENANCE) and not external_volumes:
        return ShutdownType.REMOVE
    return ShutdownType.RESTART


def started_on_their_task(state: ClusterState, kinds: frozenset[Kind]) -> tuple[Disruption, ...]:
    """Started ledger entries of ``kinds`` whose node still runs the task they started on and is not
    being stopped yet, by node id: what the monitor still prepares before the stop."""
    out = []
    for node_id, entry in sorted(state.disruptions.items()):
        record = state.nodes.get(node_id)
        if (
            entry.kind in kinds
            and entry.started_at is not None
            and record is not None
            and record.task_id == entry.task_id
            and record.stopping is None
        ):
            out.append(entry)
    return tuple(out)


def request(
    ledger: Mapping[int, Disruption],
    state: ClusterState,
    kind: Kind,
    node_id: int,
    *,
    now: float,
    external_volumes: bool,
    reason: str = "",
) -> Mapping[int, Disruption]:
    """The ledger with an operator or maintenance request queued for ``node_id`` (the planner starts
    it when it is safe). A node that is leaving is not restarted; one request per node."""
    if kind in (Kind.SCALE_DOWN, Kind.ROLLOUT):
        raise OperatorError(400, f"{kind.value} is not requested per node")
    if node_id not in state.nodes:
        raise OperatorError(404, f"no task holds node {node_id}")
    if node_id > state.desired_nodes:
        raise OperatorError(409, f"node {node_id} is being scaled away (remove); it is not {kind.value}d")
    held = ledger.get(node_id)
    if held is not None:
        if held.kind is kind:
            return ledger
        raise OperatorError(409, f"node {node_id} already has a {held.kind.value} ({held.shutdown.value}) pending")
    entry = Disruption(node_id, kind, shutdown_type(kind, external_volumes), now, reason=reason)
    return MappingProxyType({**ledger, node_id: entry})


def request_by_operator(
    state: ClusterState, kind: Kind, node_id: int, *, now: float, external_volumes: bool
) -> Mapping[int, Disruption]:
    """The state's ledger with the operator's ``kind`` (restart, replace) of ``node_id`` queued; refused
    (409) while the node restarts in a rollout or is already being stopped."""
    if state.rollout is not None and node_id in state.rollout.in_progress:
        raise OperatorError(409, f"node {node_id} is restarting in rollout {state.rollout.id}")
    record = state.nodes.get(node_id)
    if record is not None and record.stopping is not None:
        raise OperatorError(409, f"node {node_id} is already being stopped ({record.stopping})")
    return request(
        state.disruptions,
        state,
        kind,
        node_id,
        now=now,
        external_volumes=external_volumes,
        reason="requested by the operator",
    )


def _unavailable(
    state: ClusterState, ledger: Mapping[int, Disruption], rollout: Rollout | None, seen: Seen | None, fw: str
) -> dict[int, str]:
    out: dict[int, str] = {}
    for node_id in range(1, state.desired_nodes + 1):
        record = state.nodes.get(node_id)
        if record is None:
            out[node_id] = "missing (no task)"
        elif record.state is not TaskState.RUNNING:
            out[node_id] = f"{record.state.value}, not running"
        elif record.healthy is False:
            out[node_id] = "reported unhealthy"
        elif seen is not None and node_name(fw, node_id) not in seen.joined:
            out[node_id] = "not in the Elasticsearch cluster"
    for node_id, entry in ledger.items():
        if entry.started_at is not None:
            out[node_id] = _DOING[entry.kind]
    if rollout is not None:
        for node_id in rollout.in_progress:
            out.setdefault(node_id, f"restarting (rollout step {rollout.steps[node_id].state.value})")
    return out


def unavailable_nodes(state: ClusterState, seen: Seen | None, framework_name: str) -> Mapping[int, str]:
    """Node id -> why it counts as unavailable now, as the planner counts it (the state's ledger and
    rollout; ``seen`` None: from the state alone, without Elasticsearch's node list)."""
    return MappingProxyType(_unavailable(state, state.disruptions, state.rollout, seen, framework_name))


def _waiting(
    state: ClusterState, ledger: Mapping[int, Disruption], rollout: Rollout | None, settings: Settings, now: float
) -> list[Disruption]:
    started = {i for i, e in ledger.items() if e.started_at is not None}
    rank = {k: n for n, k in enumerate(PRIORITY)}
    queued = sorted(
        (e for e in ledger.values() if e.started_at is None), key=lambda e: (rank[e.kind], e.requested_at, e.node_id)
    )
    leaving = [
        Disruption(i, Kind.SCALE_DOWN, ShutdownType.REMOVE, now)
        for i in sorted(state.nodes, reverse=True)
        if i > state.desired_nodes and i not in ledger
    ]
    steps: list[Disruption] = []
    if rollout is not None:
        steps = [
            Disruption(i, Kind.ROLLOUT, ShutdownType.RESTART, now, reason=rollout.id)
            for i in candidates(rollout)
            if i not in started and i not in ledger and i <= state.desired_nodes
        ]
    ordered = queued + leaving + steps
    return sorted(ordered, key=lambda e: rank[e.kind])  # stable: keeps the order within a kind


def _check(
    intent: Disruption,
    record: NodeRecord | None,
    *,
    state: ClusterState,
    seen: Seen,
    unavailable: Mapping[int, str],
    settings: Settings,
) -> tuple[str, str] | None:
    """The first failing predicate for ``intent`` as (name, message), or None when it may start."""
    node_id = intent.node_id
    name = node_name(settings.framework_name, node_id)
    if record is None:
        return "node_running", f"node {node_id} holds no task"
    not_started = record.state in _NOT_STARTED
    if record.stopping is not None:
        return "skip_already_stopping", f"node {node_id} is already being stopped ({record.stopping})"
    if record.state is not TaskState.RUNNING and not (intent.kind is Kind.SCALE_DOWN and not_started):
        return "node_running", f"node {node_id} is {record.state.value}, not running: it cannot be drained now"
    if not_started:
        return None  # a leaving node that never started holds nothing: stopping it disrupts nothing
    disabled = settings.disabled
    adds = 0 if node_id in unavailable else 1
    if len(unavailable) + adds > settings.max_unavailable:
        first = min(unavailable)
        return (
            "max_unavailable",
            f"node {first} is {'already ' if first != node_id else ''}{unavailable[first]}: {len(unavailable)} of "
            f"maxUnavailable {settings.max_unavailable} in use",
        )
    master = is_master_eligible(node_id, settings.master_nodes)
    others = sorted(i for i in unavailable if i != node_id and is_master_eligible(i, settings.master_nodes))
    if master and others and "one_master_at_a_time" not in disabled:
        return "one_master_at_a_time", f"master-eligible node {others[0]} is {unavailable[others[0]]}"
    if master and "master_quorum" not in disabled:
        voters = {i for i in state.nodes if is_master_eligible(i, settings.master_nodes)}
        if intent.shutdown is ShutdownType.REMOVE:
            voters.discard(node_id)  # its voting exclusion takes it out of the voting configuration
        up = {i for i in voters if i not in unavailable and i != node_id}
        if len(up) < len(voters) // 2 + 1:
            return (
                "master_quorum",
                f"stopping node {node_id} would leave {len(up)} of {len(voters)} master-eligible nodes up, no majority",
            )
    yellow_ok = intent.kind is Kind.ROLLOUT and yellow_refusal(state, seen, settings) is None
    if "cluster_green" not in disabled and not (seen.status == "green" or (yellow_ok and seen.status == "yellow")):
        why = yellow_refusal(state, seen, settings) if intent.kind is Kind.ROLLOUT and seen.status == "yellow" else None
        return "cluster_green", f"cluster is {seen.status}{f': {why}' if why else ''}"
    if "shards_settled" not in disabled and (seen.in_flight or (seen.unassigned_shards and not yellow_ok)):
        return (
            "shards_settled",
            f"{seen.unassigned_shards} unassigned, {seen.relocating_shards} relocating and "
            f"{seen.initializing_shards} initializing shards",
        )
    sole = seen.sole_copies.get(name, 0)
    if intent.shutdown is ShutdownType.RESTART and sole and "started_copy_elsewhere" not in disabled:
        return "started_copy_elsewhere", f"node {node_id} holds the only started copy of {sole} shard(s)"
    return None


def _for_rollout_step(settings: Settings, rollout: Rollout | None) -> Settings:
    """``settings`` without the predicates the operator disabled for ``rollout`` (its steps only)."""
    if rollout is None or not rollout.disabled_predicates:
        return settings
    return replace(settings, disabled=settings.disabled | rollout.disabled_predicates)


def plan_disruption(
    state: ClusterState,
    *,
    ledger: Mapping[int, Disruption],
    rollout: Rollout | None,
    seen: Observation,
    now: float,
    settings: Settings,
) -> Decision:
    """Which disruptive action may start now (at most one), and what blocks every other one."""
    known = seen if isinstance(seen, Seen) else None
    unavailable = _unavailable(state, ledger, rollout, known, settings.framework_name)
    waiting = _waiting(state, ledger, rollout, settings, now)
    blocked: list[Blocked] = []
    start: Disruption | None = None
    forced: str | None = None
    for waiting_intent in waiting:
        intent = waiting_intent
        if start is not None:
            blocked.append(
                Blocked(intent.node_id, intent.kind, "one_action_at_a_time", f"node {start.node_id} starts first")
            )
            continue
        if known is None:
            why = seen.reason if isinstance(seen, Unknown) else "no answer yet"
            blocked.append(
                Blocked(
                    intent.node_id,
                    intent.kind,
                    "elasticsearch_answered",
                    f"Elasticsearch did not answer: not safe ({why})",
                )
            )
            continue
        record = state.nodes.get(intent.node_id)
        name = node_name(settings.framework_name, intent.node_id)
        registered = known.shutdowns.get(name, ("", ""))[0] or None
        intent = replace(intent, shutdown=shutdown_type(intent.kind, settings.external_volumes, registered))
        # A rollout step is checked without the predicates its operator disabled for this rollout.
        own = _for_rollout_step(settings, rollout) if intent.kind is Kind.ROLLOUT else settings
        force = rollout.force if rollout is not None and intent.kind is Kind.ROLLOUT else None
        local = replace(own, disabled=own.disabled | FORCEABLE) if force else own
        failing = _check(intent, record, state=state, seen=known, unavailable=unavailable, settings=local)
        if failing is None:
            forced = (
                force
                if force and _check(intent, record, state=state, seen=known, unavailable=unavailable, settings=own)
                else None
            )
            start = replace(intent, started_at=now, task_id=record.task_id if record else None)
        else:
            blocked.append(Blocked(intent.node_id, intent.kind, *failing))
    notes: tuple[str, ...] = (rollout.order_note,) if rollout is not None and rollout.order_note else ()
    if rollout is not None and rollout.disabled_predicates:
        off = ", ".join(sorted(rollout.disabled_predicates))
        notes += (f"rollout {rollout.id}: predicates disabled by the operator: {off}",)
    return Decision(start, tuple(blocked), MappingProxyType(unavailable), settings.max_unavailable, forced, notes)


def settle(ledger: Mapping[int, Disruption], state: ClusterState) -> tuple[Mapping[int, Disruption], tuple[int, ...]]:
    """The ledger without started entries whose task has ended (the id is free, or held by a new
    task): from then on a node still away counts as missing or not running. Returns the ended ids.
    Queued requests for a node no longer held or now leaving, and scale-down drains of a node that is
    wanted again and was not stopped, are dropped too (not counted as ended)."""
    ended = tuple(
        sorted(
            i
            for i, e in ledger.items()
            if e.started_at is not None and (i not in state.nodes or state.nodes[i].task_id != e.task_id)
        )
    )
    # A queued request for a node no longer held, or now leaving, is void.
    void = tuple(
        i for i, e in ledger.items() if e.started_at is None and (i not in state.nodes or i > state.desired_nodes)
    )
    # A scale-down drain whose node is wanted again (the desired count went back up) before it was
    # stopped is over: left in the ledger, the kept node would count as draining for ever.
    cancelled = tuple(
        i
        for i, e in ledger.items()
        if e.kind is Kind.SCALE_DOWN
        and e.started_at is not None
        and i <= state.desired_nodes
        and i in state.nodes
        and state.nodes[i].stopping is None
    )
    gone = set(ended) | set(void) | set(cancelled)
    return MappingProxyType({i: e for i, e in ledger.items() if i not in gone}), ended


def yellow_refusal(state: ClusterState, seen: Seen, settings: Settings) -> str | None:
    """Why a yellow cluster does not count as healthy enough for a rollout step, or None when it does.

    Only during a version upgrade (the state's rollout has ``upgrade``, or ``settings.allow_yellow``):
    Elasticsearch never puts a replica on a node older than its primary's (``NodeVersionAllocationDecider``),
    so while the versions are mixed the replicas of primaries on upgraded nodes may stay unassigned and
    the cluster yellow until enough nodes run the new version; Elasticsearch's rolling-upgrade guide
    (``rolling-upgrades.html``) says to go on with the next node then, once the cluster is yellow with
    nothing initialising or relocating. Fail closed: every primary must be known to be assigned."""
    upgrade = state.rollout.upgrade if state.rollout is not None else None
    if upgrade is None and not settings.allow_yellow:
        return None if seen.status != "yellow" else "yellow is allowed during a version upgrade only"
    during = f"during the version upgrade {upgrade[0]} → {upgrade[1]}" if upgrade else "during a version upgrade"
    if seen.unassigned_primaries is None:
        problem = "whether every primary is assigned is unknown"
    elif seen.unassigned_primaries:
        problem = f"{seen.unassigned_primaries} primary shard(s) unassigned"
    elif seen.in_flight:
        problem = f"{seen.initializing_shards} initializing and {seen.relocating_shards} relocating shard(s)"
    else:
        return None
    return (
        f"yellow is allowed {during} only with every primary assigned and nothing initialising or relocating "
        f"({problem})"
    )


def step_settled(node_id: int, state: ClusterState, seen: Observation, settings: Settings) -> bool:
    """A rollout step waiting-healthy may be marked done: its node runs, is healthy and joined, and
    the cluster is green (yellow during a version upgrade) with nothing in flight. Unknown: no."""
    record = state.nodes.get(node_id)
    if not isinstance(seen, Seen) or record is None or record.state is not TaskState.RUNNING:
        return False
    if record.healthy is False or node_name(settings.framework_name, node_id) not in seen.joined:
        return False
    # What the operator disabled for the rollout is not waited for after the restart either: a step
    # that waits for green the operator said cannot come would only time out and pause the rollout.
    disabled = _for_rollout_step(settings, state.rollout).disabled
    health_ok = (
        "cluster_green" in disabled
        or seen.status == "green"
        or (seen.status == "yellow" and yellow_refusal(state, seen, settings) is None)
    )
    return health_ok and ("shards_settled" in disabled or not seen.in_flight)
