"""What an operator may ask of the cluster, as pure functions over :class:`ClusterState`.

Each function checks the request against the state and returns the new state plus a sentence
for the operator, or raises :class:`OperatorError` (with the HTTP status the API answers) and
changes nothing. The engine persists the new state and only then sends the kills it implies.

- **Desired count** (``PUT /v1/cluster/elasticsearchNodes``): any whole number ≥ 1. Scaling up
  launches the lowest free ids (ids released earlier come back with their old volumes). Scaling
  down keeps ids ``1..N``; higher ids are drained by :mod:`es_framework.core.drain` and only then
  stopped. A scale-down below the number of copies the data needs (the largest
  ``number_of_replicas`` + 1, asked from Elasticsearch by the caller) is refused.
- **Restart** (same agent, same volumes): the node is stopped gracefully and pinned to its agent for
  :data:`PIN_SECONDS`, so that only that agent's offers relaunch it (its local data stays usable
  in the normal strategy).
- **Replace** (any agent, same id and volumes): stopped gracefully, relaunched wherever it fits. A
  running node's replace is first queued for the disruption planner and drained
  (:meth:`es_framework.core.engine_commands.OperatorCommands.request_replace`); this is the stop itself.
- **Gone** (``POST /v1/nodes/<id>/gone``): only for an *unreachable* node, whose old task may still
  run. The caller fences its agent (Mesos' ``MARK_AGENT_GONE``) and then frees the id with
  :func:`release_gone`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import MappingProxyType

from es_framework.core.node_state import LIVE_STATES, ClusterState, NodeRecord, Pin, TaskState

#: How long a restarted node waits for an offer from its own agent before any agent may take it.
PIN_SECONDS = 600.0
MAX_NODES = 10_000


class OperatorError(Exception):
    """A refused request: ``status`` is the HTTP status; nothing was changed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Outcome:
    state: ClusterState
    #: What will happen, for the operator and the log.
    message: str
    #: Tasks to kill once ``state`` is persisted: (node id, task id, agent id).
    kills: tuple[tuple[int, str, str], ...] = ()


def set_desired_nodes(state: ClusterState, count: int, *, copies_needed: int | None) -> Outcome:
    """Ask for ``count`` nodes. ``copies_needed`` is the most copies of any shard the data has
    (replicas + 1), or None when no scale-down is asked or it is unknown."""
    if isinstance(count, bool) or not isinstance(count, int):
        raise OperatorError(400, f"the node count must be a whole number, not {count!r}")
    if count < 1:
        raise OperatorError(400, f"the node count must be at least 1, not {count}")
    if count > MAX_NODES:
        raise OperatorError(400, f"the node count must be at most {MAX_NODES}, not {count}")
    current = state.desired_nodes
    if count == current:
        return Outcome(state, f"the cluster already wants {count} node(s); nothing changes")
    if count > current:
        return Outcome(
            replace(state, desired_nodes=count),
            f"scaling up from {current} to {count} node(s): the lowest free node ids launch as offers arrive",
        )
    if copies_needed is not None and count < copies_needed:
        raise OperatorError(
            409,
            f"cannot scale down to {count} node(s): an index keeps {copies_needed} copies of its shards "
            f"(number_of_replicas {copies_needed - 1}), which needs at least {copies_needed} nodes; lower its "
            "replicas first",
        )
    leaving = sorted(node_id for node_id in state.nodes if node_id > count)
    what = f"node(s) {', '.join(map(str, leaving))} will be drained of shards, then stopped" if leaving else "no node"
    return Outcome(replace(state, desired_nodes=count), f"scaling down from {current} to {count} node(s): {what}")


def _holder(state: ClusterState, node_id: int) -> NodeRecord:
    record = state.nodes.get(node_id)
    if record is None:
        raise OperatorError(404, f"no task holds node {node_id}")
    return record


def _stoppable(record: NodeRecord, verb: str) -> None:
    if record.stopping is not None:
        raise OperatorError(409, f"node {record.node_id} is already being stopped ({record.stopping})")
    if record.state not in LIVE_STATES or record.state is TaskState.KILLING:
        raise OperatorError(409, f"node {record.node_id} is {record.state.value}, not running: it cannot be {verb}")


def restart_node(state: ClusterState, node_id: int, *, now: float) -> Outcome:
    record = _holder(state, node_id)
    _stoppable(record, "restarted")
    if node_id > state.desired_nodes:
        raise OperatorError(409, f"node {node_id} is being scaled away; it is not restarted")
    pins = {**state.pins, node_id: Pin(record.agent_id, now + PIN_SECONDS)}
    nodes = {**state.nodes, node_id: replace(record, stopping="restart")}
    return Outcome(
        replace(state, nodes=MappingProxyType(nodes), pins=MappingProxyType(pins)),
        f"node {node_id} (task {record.task_id}) is stopped gracefully and started again on agent "
        f"{record.agent_id} ({record.hostname}) with the same volumes",
        ((node_id, record.task_id, record.agent_id),),
    )


def replace_node(state: ClusterState, node_id: int) -> Outcome:
    record = _holder(state, node_id)
    _stoppable(record, "replaced")
    if node_id > state.desired_nodes:
        raise OperatorError(409, f"node {node_id} is being scaled away; it is not replaced")
    pins = {i: p for i, p in state.pins.items() if i != node_id}
    nodes = {**state.nodes, node_id: replace(record, stopping="replace")}
    return Outcome(
        replace(state, nodes=MappingProxyType(nodes), pins=MappingProxyType(pins)),
        f"node {node_id} (task {record.task_id}) is stopped gracefully and launched again as node {node_id} on any "
        "agent, with the same volumes",
        ((node_id, record.task_id, record.agent_id),),
    )


def stop_drained(state: ClusterState, node_id: int) -> Outcome:
    """Stop a node that scaling down drained (its id is above the desired count)."""
    record = _holder(state, node_id)
    if node_id <= state.desired_nodes:
        raise OperatorError(409, f"node {node_id} is wanted again (desired {state.desired_nodes}); not stopped")
    if record.stopping is not None:
        return Outcome(state, f"node {node_id} is already being stopped")
    nodes = {**state.nodes, node_id: replace(record, stopping="scale-down")}
    return Outcome(
        replace(state, nodes=MappingProxyType(nodes)),
        f"node {node_id} (task {record.task_id}) holds no shards: stopping it; its volumes are kept",
        ((node_id, record.task_id, record.agent_id),),
    )


def check_gone(state: ClusterState, node_id: int) -> NodeRecord:
    """The record an operator may declare gone: only an unreachable node."""
    record = _holder(state, node_id)
    if record.state is not TaskState.UNREACHABLE:
        raise OperatorError(
            409,
            f"node {node_id} is {record.state.value}, not unreachable: only an unreachable node can be declared "
            "gone (replace a running node instead)",
        )
    return record


def release_gone(state: ClusterState, node_id: int, task_id: str) -> Outcome:
    """Free the id of an unreachable node the operator declared gone (its agent fenced or not)."""
    record = check_gone(state, node_id)
    if record.task_id != task_id:
        raise OperatorError(409, f"node {node_id} is now held by task {record.task_id}, not {task_id}")
    nodes = {i: r for i, r in state.nodes.items() if i != node_id}
    return Outcome(
        replace(state, nodes=MappingProxyType(nodes)),
        f"node {node_id} (task {task_id}) declared gone by the operator: the id is free and the node is launched "
        "again with its volumes",
    )
