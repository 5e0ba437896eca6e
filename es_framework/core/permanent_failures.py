"""Automatic replacement after permanent failure: which one node to act on now, and how (pure).

A node whose task is out of reach (``TASK_UNREACHABLE``, or ``TASK_UNKNOWN`` after it was last seen
running or unreachable) keeps its id (:mod:`es_framework.core.status_updates`): the old task may
still run behind a partition and write to the node's volume. With ``--permanentFailureTimeout``
(0, the default, is off) such a node is replaced once it has been out of reach that long — but only
when fencing allows it:

- Mesos reports the task gone or terminal (``TASK_GONE``, ``TASK_GONE_BY_OPERATOR``, ``TASK_LOST``,
  …): the status update frees the id at once and the node is launched again; nothing here.
- Or the operator opted in with ``--markAgentGoneAfterTimeout``: the scheduler first marks the
  agent gone in Mesos (``MARK_AGENT_GONE``, as the ``gone`` command does), and only once the master
  accepted that frees the id (:data:`Step.MARK_GONE`). Mesos then never lets the agent or its tasks
  back: ``Master::Http::_markAgentGone`` (``src/master/http.cpp``) records the agent gone in the
  registry, ``Master::markGone`` (``src/master/master.cpp``) turns its tasks into
  ``TASK_GONE_BY_OPERATOR``, and explicit reconciliation answers that for a task of a gone agent
  (``Master::reconcileTasks``, case 5). The master answers 404 for an agent it does not know, so an
  agent it forgot cannot be fenced: such a node stays reserved (fail closed).

Without the opt-in the scheduler never marks an agent gone; the node stays reserved after the
timeout until Mesos reports its task gone or an operator declares it gone (``POST
/v1/nodes/<id>/gone``).

Since when a node is out of reach is :attr:`NodeRecord.unreachable_since` (Mesos'
``TaskStatus.unreachable_time``, ``include/mesos/v1/mesos.proto`` field 14, "the time (according
to the master's clock) when the agent where this task was running became unreachable"), stored
with the record so that a new leader neither restarts the clock nor acts early.

Pacing: one automatic replacement in flight at a time (from its release until a new task of that
id has run), and at least ``--replacementInterval`` seconds between two of them; both are kept in
the state (:attr:`ClusterState.last_replacement`). A replacement is a relaunch of the same node id:
with external volumes on any agent with the same volumes; with local disk (the ``normal``
strategy) as :func:`es_framework.core.operations.replace_node` does, any pin dropped — an empty
node on another agent, since the data stayed on the gone agent.

The disruption planner (:mod:`es_framework.core.disruption`, ``--maxUnavailable``): a node out of
reach is already unavailable (missing, not running) and counts against the budget like any other;
replacing it takes nothing more away — it only brings capacity back — so it does **not** wait behind
the budget its own absence fills, and it does not ask Elasticsearch (no node is drained; a cluster
that lost nodes may not answer at all, and the replacement is what brings it back). But it is
admitted only while **no other node is away** beyond what the budget leaves (:func:`admit`, predicate
``max_unavailable``): a node restarting, draining or being moved by the planner, a rollout step under
way, a node missing, not running, reported unhealthy, or (when the monitor's last answer is fresh)
not in Elasticsearch's node list — in particular the node of the previous automatic replacement until
it has joined again. Other nodes out of reach are not counted: each waits for its own replacement,
and counting them would keep two dead nodes from ever being replaced; they are taken one at a time
(in flight, interval). While a replacement waits, the planner starts nothing else either: the dead
node fills the budget.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from es_framework.core.disruption import unavailable_nodes
from es_framework.core.disruption_seen import Seen
from es_framework.core.node_state import ClusterState, NodeRecord, Replacement, TaskState

#: A MARK_AGENT_GONE the master refused (or did not answer) is tried again after this long.
FENCE_RETRY_S = 60.0


class Step(StrEnum):
    #: Nothing to do now (see :attr:`Choice.reason`).
    NONE = "none"
    #: Mark the node's agent gone in Mesos, then release the node (:func:`release_replaced`).
    MARK_GONE = "mark_gone"
    #: The agent is marked gone already (by this scheduler): release the node now.
    RELEASE = "release"


@dataclass(frozen=True)
class Settings:
    #: ``--permanentFailureTimeout``; 0 is off.
    timeout_s: float
    #: ``--replacementInterval``.
    interval_s: float
    #: ``--markAgentGoneAfterTimeout``.
    mark_gone: bool


@dataclass(frozen=True)
class Choice:
    """What to do now about at most one node, and why (for the log)."""

    step: Step
    reason: str
    node_id: int | None = None
    task_id: str | None = None
    agent_id: str | None = None
    #: Since when the node has been out of reach, and for how long at the decision.
    since: float | None = None
    out_for_s: float | None = None


def out_of_reach(record: NodeRecord) -> bool:
    """Whether the record holds an id for a task that is not reachable: UNREACHABLE, or UNKNOWN after
    it was last seen running or unreachable (``needs_operator``)."""
    return record.state is TaskState.UNREACHABLE or (record.state is TaskState.UNKNOWN and record.needs_operator)


def in_flight(state: ClusterState) -> str | None:
    """Why the last automatic replacement still counts as in flight, or None once a new task of its id
    has run (or its id is no longer wanted)."""
    last = state.last_replacement
    if last is None or last.node_id > state.desired_nodes:
        return None
    record = state.nodes.get(last.node_id)
    if record is not None and record.task_id != last.task_id and record.seen_running:
        return None
    now_is = "not launched yet" if record is None else f"task {record.task_id} is {record.state.value}"
    return f"node {last.node_id}'s automatic replacement is still in flight ({now_is})"


def decide(
    state: ClusterState,
    now: float,
    settings: Settings,
    *,
    fenced_agents: frozenset[str] = frozenset(),
    failed_fences: Mapping[str, float] = MappingProxyType({}),
) -> Choice:
    """The one node to act on now, and how. ``fenced_agents``: agents this scheduler marked gone
    already; ``failed_fences``: agent -> when a MARK_AGENT_GONE for it last failed (tried again
    after :data:`FENCE_RETRY_S`)."""
    if settings.timeout_s <= 0:
        return Choice(Step.NONE, "automatic replacement is off (--permanentFailureTimeout 0)")
    due = sorted(
        (
            (r.unreachable_since, r.node_id, r)
            for r in state.nodes.values()
            if out_of_reach(r)
            and r.node_id <= state.desired_nodes
            and r.unreachable_since is not None
            and now - r.unreachable_since >= settings.timeout_s
        ),
        key=lambda t: (t[0], t[1]),
    )  # the longest out of reach first
    if not due:
        return Choice(Step.NONE, "no node has been out of reach past --permanentFailureTimeout")
    busy = in_flight(state)
    if busy is not None:
        return Choice(Step.NONE, busy)
    last = state.last_replacement
    if last is not None and now - last.at < settings.interval_s:
        return Choice(
            Step.NONE,
            f"the last automatic replacement (node {last.node_id}) was {now - last.at:.0f}s ago; the next one not "
            f"before {settings.interval_s:g}s (--replacementInterval)",
        )
    for since, node_id, record in due:
        out_for = now - since
        what = (
            f"node {node_id} task {record.task_id} on agent {record.agent_id}"
            f"{f' ({record.hostname})' if record.hostname else ''} has been {record.state.value} for {out_for:.0f}s "
            f"(--permanentFailureTimeout {settings.timeout_s:g}s)"
        )
        if record.agent_id in fenced_agents:
            return _about(record, Step.RELEASE, f"{what}; its agent is marked gone: releasing it", since, out_for)
        if not settings.mark_gone:
            why = (
                f"{what}; it is NOT replaced until Mesos reports its task gone (--markAgentGoneAfterTimeout is off; "
                f"an operator may declare it gone: POST /v1/nodes/{node_id}/gone)"
            )
            return _about(record, Step.NONE, why, since, out_for)
        failed = failed_fences.get(record.agent_id)
        if failed is not None and now - failed < FENCE_RETRY_S:
            continue
        why = (
            f"{what}: marking agent {record.agent_id} gone in Mesos (--markAgentGoneAfterTimeout), then replacing "
            f"node {node_id}"
        )
        return _about(record, Step.MARK_GONE, why, since, out_for)
    return Choice(Step.NONE, f"marking an agent gone failed less than {FENCE_RETRY_S:g}s ago; trying again later")


def admit(
    choice: Choice, state: ClusterState, *, max_unavailable: int, framework_name: str, seen: Seen | None
) -> Choice:
    """``choice`` when the planner's budget admits it (see the module docstring), else a
    :data:`Step.NONE` naming the predicate ``max_unavailable`` and the node that holds it back.
    ``seen``: Elasticsearch's last answer when fresh, else None (the state alone is counted)."""
    if choice.step is Step.NONE or choice.node_id is None:
        return choice
    away = unavailable_nodes(state, seen, framework_name)
    others = {
        i: why
        for i, why in away.items()
        if i != choice.node_id and not (i in state.nodes and out_of_reach(state.nodes[i]))
    }
    if len(others) + 1 <= max_unavailable:
        return choice
    first = min(others)
    why = (
        f"node {choice.node_id} task {choice.task_id} is out of reach past --permanentFailureTimeout but waits: "
        f"max_unavailable: node {first} is already {others[first]}: {len(others)} other node(s) away, "
        f"maxUnavailable {max_unavailable}"
    )
    return replace(choice, step=Step.NONE, reason=why)


def _about(record: NodeRecord, step: Step, reason: str, since: float, out_for: float) -> Choice:
    return Choice(step, reason, record.node_id, record.task_id, record.agent_id, since, out_for)


def release_replaced(state: ClusterState, choice: Choice, now: float) -> ClusterState:
    """Free the id of ``choice``'s node (its agent is marked gone: the old task can never come back),
    drop its pin like :func:`~es_framework.core.operations.replace_node`, and record the replacement.
    A record already freed (Mesos' ``TASK_GONE_BY_OPERATOR`` came first) or now held by another task
    is left alone; the replacement is recorded all the same (it counts for the pacing)."""
    if choice.node_id is None or choice.task_id is None or choice.agent_id is None:
        raise ValueError("a release needs the node, its task and its agent")
    node_id = choice.node_id
    record = state.nodes.get(node_id)
    nodes = state.nodes
    if record is not None and record.task_id == choice.task_id:
        nodes = MappingProxyType({i: r for i, r in state.nodes.items() if i != node_id})
    return replace(
        state,
        nodes=nodes,
        pins=MappingProxyType({i: p for i, p in state.pins.items() if i != node_id}),
        last_replacement=Replacement(node_id, choice.task_id, choice.agent_id, now, choice.since),
    )


def replacement_to_json(entry: Replacement | None) -> dict[str, Any] | None:
    if entry is None:
        return None
    return {
        "node_id": entry.node_id,
        "task_id": entry.task_id,
        "agent_id": entry.agent_id,
        "at": entry.at,
        "since": entry.since,
    }


def replacement_from_json(raw: object) -> Replacement | None:
    """The stored last replacement (None when absent); ValueError when malformed."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ValueError("last_replacement must be an object or null")
    node_id, task_id, agent_id = raw.get("node_id"), raw.get("task_id"), raw.get("agent_id")
    at, since = raw.get("at"), raw.get("since")
    if type(node_id) is not int or not isinstance(task_id, str) or not isinstance(agent_id, str):
        raise ValueError("last_replacement needs node_id, task_id and agent_id")
    if not isinstance(at, (int, float)) or isinstance(at, bool) or (since is not None and not _time(since)):
        raise ValueError("last_replacement: 'at' and 'since' must be times")
    return Replacement(node_id, task_id, agent_id, float(at), float(since) if since is not None else None)


def _time(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
