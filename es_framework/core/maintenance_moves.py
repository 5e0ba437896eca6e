"""Moving our nodes off an agent before its Mesos maintenance window, through the disruption planner
(pure; the engine's half is :mod:`es_framework.core.engine_maintenance`, the monitor carries out
what :func:`prepare_moves` says).

A node on an agent whose window has started or starts within
:data:`~es_framework.core.maintenance.LEAD_S` (the window an inverse offer or an offer's
``unavailability`` shows) gets a ``maintenance`` request in the disruption ledger, once
(:func:`move_requests`; the ledger is persisted, so a failover keeps it, and a re-sent inverse
offer finds the node already requested). The planner (:mod:`es_framework.core.disruption`) starts it
when it is safe, as any other disruption; then:

- **external volumes** (shutdown type ``restart``): the node comes back with its data, so its shards
  stay assigned to it: on a version with the node-shutdown API, ``PUT _nodes/<id>/shutdown
  {"type": "restart"}`` and ready once ``GET _nodes/shutdown`` says ``COMPLETE`` (Elasticsearch's
  reference, put-shutdown.html: ``restart`` "the node is expected to rejoin", shards are not moved
  away); on an older version ready at once (the node is stopped gracefully, as the operator's restart
  there). The record is cleared by the restarts' clean-up once the node runs again elsewhere;
- **local disk** (``remove``): the data stays behind, so the shards move away first:
  ``cluster.routing.allocation.exclude._name`` lists the node (as scale-down does,
  :mod:`es_framework.core.drain`, by name on every version), and it is ready once it holds no shard
  copy and nothing is unassigned, relocating or initializing. No voting exclusion: one master-eligible
  node leaves at a time (``one_master_at_a_time``), and Elasticsearch's "Voting configurations"
  page says a cluster of three or more master-eligible nodes adjusts itself when they leave one at a
  time. The name leaves the exclusion list when the move is over, so the node's next task (fresh disk,
  same id) takes shards again.

A ready node is stopped with :func:`es_framework.core.operations.replace_node` (same id and volumes,
any agent): the ``maintenance`` offer rule keeps its next launch off the agent in the window. Once no
node of ours is there, the inverse offer is accepted (:func:`es_framework.core.maintenance.answer`);
while every node there is being moved, it is held unanswered and accepted as the last one leaves
(:func:`moves_cover`).
A move that has not finished when the window starts goes on (the master kills the task when the
machine goes down: TASK_LOST, ``REASON_AGENT_REMOVED``); the engine warns.

The operator's queued replace (``POST /v1/nodes/<id>/replace``, a ``replace`` entry in the ledger,
:meth:`es_framework.core.engine_commands.OperatorCommands.request_replace`) is the same move without
a window: once the planner starts it, it is prepared and stopped here exactly as above (node shutdown
``restart`` with external volumes, the allocation exclusion with local disk), and launched again with
the same id on any agent (:data:`MOVE_KINDS`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from es_framework.core import operations
from es_framework.core.disruption import shutdown_type, started_on_their_task
from es_framework.core.disruption_ledger import Disruption, Kind, ShutdownType
from es_framework.core.disruption_seen import Observation, Seen
from es_framework.core.engine_rollouts import uses_shutdown_api
from es_framework.core.maintenance import Unavailability, keeps_new_nodes_off, nodes_on_agent, nodes_to_move
from es_framework.core.node_state import ClusterState
from identity.naming import node_name

__all__ = [
    "MOVE_KINDS",
    "MovePrep",
    "MoveRequest",
    "Stopped",
    "apply_requests",
    "cancelled",
    "exclusions",
    "late",
    "move_requests",
    "moves_cover",
    "moving",
    "prepare_moves",
    "reason_for",
    "releasable",
    "stop_ready",
]


#: Ledger kinds moved by :func:`prepare_moves` and :func:`stop_ready`: stopped as a replace (same id and
#: volumes, another agent for maintenance, any agent for the operator's replace).
MOVE_KINDS = frozenset({Kind.MAINTENANCE, Kind.REPLACE})


@dataclass(frozen=True)
class MoveRequest:
    node_id: int
    task_id: str
    agent_id: str
    window: Unavailability
    #: What the ledger entry says (and the log, and the node's history).
    reason: str


def reason_for(agent_id: str, hostname: str, window: Unavailability) -> str:
    where = f"agent {agent_id} ({hostname})" if hostname else f"agent {agent_id}"
    return f"moving off {where} for maintenance {window.text()}"


def move_requests(
    state: ClusterState, windows: Mapping[str, Unavailability | None], now: float
) -> tuple[MoveRequest, ...]:
    """The maintenance requests to add for ``windows`` (agent id -> the window Mesos showed): one per
    node of ours on an agent whose window has started or starts soon and is not over, that is wanted
    and has no ledger entry yet (a re-sent inverse offer adds nothing). No window, a window far away
    or over: nothing."""
    out: list[MoveRequest] = []
    for agent_id, window in sorted(windows.items()):
        if window is None or not keeps_new_nodes_off(window, now):
            continue
        for node_id in nodes_to_move(state, [agent_id]):
            record = state.nodes[node_id]
            out.append(
                MoveRequest(node_id, record.task_id, agent_id, window, reason_for(agent_id, record.hostname, window))
            )
    return tuple(out)


def apply_requests(
    state: ClusterState, requests: Iterable[MoveRequest], *, now: float, external_volumes: bool
) -> ClusterState:
    """``state`` with a queued ``maintenance`` entry per request (``restart`` with external volumes,
    ``remove`` with local disk: :func:`es_framework.core.disruption.shutdown_type`)."""
    ledger = dict(state.disruptions)
    shutdown = shutdown_type(Kind.MAINTENANCE, external_volumes)
    for r in requests:
        if r.node_id not in ledger:
            ledger[r.node_id] = Disruption(r.node_id, Kind.MAINTENANCE, shutdown, now, reason=r.reason)
    if len(ledger) == len(state.disruptions):
        return state
    return replace(state, disruptions=MappingProxyType(ledger))


def cancelled(state: ClusterState, windows: Mapping[str, Unavailability | None], now: float) -> tuple[int, ...]:
    """Queued (not started) maintenance requests whose agent Mesos now shows with no window that keeps
    nodes off it (the schedule was changed, or STOP_MAINTENANCE): they are void. A started move goes on."""
    out = []
    for node_id, entry in state.disruptions.items():
        record = state.nodes.get(node_id)
        if entry.kind is not Kind.MAINTENANCE or entry.started_at is not None or record is None:
            continue
        if record.agent_id in windows and not keeps_new_nodes_off(windows[record.agent_id], now):
            out.append(node_id)
    return tuple(sorted(out))


def moving(state: ClusterState) -> tuple[Disruption, ...]:
    """Started moves (maintenance, the operator's replace) whose node still runs its task there and is
    not being stopped."""
    return started_on_their_task(state, MOVE_KINDS)


@dataclass(frozen=True)
class MovePrep:
    #: Prepared: the engine may stop them now.
    ready: frozenset[int] = frozenset()
    #: Register node shutdown ``restart`` for these: (node id, task id).
    register: tuple[tuple[int, str], ...] = ()
    #: Our node names the allocation exclusion must list (local-disk moves).
    exclude: tuple[str, ...] = ()
    #: Node ids whose ``restart`` record is theirs now: not to be cleared by the restarts' clean-up.
    holding: frozenset[int] = frozenset()
    #: Node id -> what its move waits for.
    waits: Mapping[int, str] = field(default_factory=lambda: MappingProxyType({}))
    #: Node ids among the moves whose move is the operator's replace (not maintenance).
    replacing: frozenset[int] = frozenset()


def prepare_moves(
    state: ClusterState, seen: Observation, framework_name: str, excluded: tuple[str, ...] = ()
) -> MovePrep:
    """What to do now for the started moves of ``state`` (see the module docstring); ``excluded`` is
    the allocation exclusion list as read. Nothing on an ``Unknown`` answer: fail closed."""
    if not isinstance(seen, Seen):
        return MovePrep()
    ready: set[int] = set()
    register: list[tuple[int, str]] = []
    exclude: list[str] = []
    holding: set[int] = set()
    waits: dict[int, str] = {}
    for entry in moving(state):
        record = state.nodes[entry.node_id]
        name = node_name(framework_name, entry.node_id)
        if entry.shutdown is ShutdownType.RESTART:
            holding.add(entry.node_id)
            if not uses_shutdown_api(record):
                ready.add(entry.node_id)
                continue
            registered = seen.shutdowns.get(name)
            if registered is None:
                register.append((entry.node_id, record.task_id))
                waits[entry.node_id] = "registering node shutdown restart"
            elif registered == ("restart", "complete"):
                ready.add(entry.node_id)
            else:
                waits[entry.node_id] = f"node shutdown {registered[0]} is {registered[1]}"
            continue
        exclude.append(name)
        left = seen.shards_by_node.get(name, 0)
        if name not in excluded:
            waits[entry.node_id] = "excluding it from shard allocation"
        elif left:
            waits[entry.node_id] = f"{left} shard copies still to move away"
        elif seen.in_flight or seen.unassigned_shards:
            waits[entry.node_id] = (
                f"empty, but the cluster has {seen.unassigned_shards} unassigned, {seen.relocating_shards} "
                f"relocating and {seen.initializing_shards} initializing shards"
            )
        else:
            ready.add(entry.node_id)
    replacing = frozenset(e.node_id for e in moving(state) if e.kind is Kind.REPLACE)
    return MovePrep(
        frozenset(ready), tuple(register), tuple(exclude), frozenset(holding), MappingProxyType(waits), replacing
    )


def exclusions(drain_wants: tuple[str, ...], moving_names: tuple[str, ...]) -> tuple[str, ...]:
    """The allocation exclusion list: the scale-down drain's (``drain_wants``, what
    :func:`es_framework.core.drain.plan_drain` sets, or the list as read when it sets nothing; it
    drops our names that do not leave) plus the names of the local-disk moves under way."""
    return (*drain_wants, *(n for n in moving_names if n not in drain_wants))


@dataclass(frozen=True)
class Stopped:
    state: ClusterState
    #: (node id, task id, agent id) to kill once ``state`` is persisted.
    kills: tuple[tuple[int, str, str], ...]
    messages: tuple[tuple[int, str], ...]


def stop_ready(state: ClusterState, ready: frozenset[int]) -> Stopped:
    """Stop the prepared moves among ``ready``: same id and volumes, any agent but the one in the
    window (the ``maintenance`` offer rule keeps it off); for the operator's replace, any agent."""
    kills: list[tuple[int, str, str]] = []
    messages: list[tuple[int, str]] = []
    for entry in moving(state):
        if entry.node_id not in ready:
            continue
        outcome = operations.replace_node(state, entry.node_id)
        state = outcome.state
        kills.extend(outcome.kills)
        what = "maintenance" if entry.kind is Kind.MAINTENANCE else "its replace"
        messages.append((entry.node_id, f"node {entry.node_id}: drained for {what} ({entry.reason}); stopping"))
    return Stopped(state, tuple(kills), tuple(messages))


def late(state: ClusterState, windows: Mapping[str, Unavailability | None], now: float) -> tuple[int, ...]:
    """Maintenance entries whose node is still on an agent whose window has started."""
    out = []
    for node_id, entry in sorted(state.disruptions.items()):
        record = state.nodes.get(node_id)
        window = windows.get(record.agent_id) if record is not None else None
        if entry.kind is Kind.MAINTENANCE and window is not None and now >= window.start:
            out.append(node_id)
    return tuple(out)


def moves_cover(state: ClusterState, agent_id: str) -> bool:
    """Whether every node of ours on ``agent_id`` is being moved (a maintenance entry in the ledger):
    its inverse offer is then held unanswered until they have left, and accepted then. A framework
    that does not answer keeps its inverse offer (it is not sent again), so the accept needs no new
    one: after a decline, a framework with nothing left on the agent and no offer from it is not asked
    again (``generateInverseOffers`` asks only frameworks with resources offered or allocated there),
    and its last answer would stay DECLINE."""
    held = nodes_on_agent(state, agent_id)
    return bool(held) and all(i in state.disruptions and state.disruptions[i].kind is Kind.MAINTENANCE for i in held)


def releasable(held: Mapping[str, tuple[str, ...]], state: ClusterState) -> tuple[str, ...]:
    """The agents of ``held`` inverse offers that no node of ours occupies any more."""
    return tuple(sorted(agent for agent in held if not nodes_on_agent(state, agent)))
