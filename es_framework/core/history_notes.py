"""What goes into a node's persisted history, and when (pure, plus the engine's write hook).

The entries themselves are :mod:`es_framework.core.node_history`. They are noted in the same state
write as what they tell of, so a history never says something the state does not, and a new leader
reads both together:

- the engine notes a **launch** (:func:`noted_launches`) and a task's **end or loss**
  (:func:`noted_update`: ``TASK_FAILED``, ``LOST``, ``UNREACHABLE``, ``UNKNOWN``, …, with Mesos'
  reason and message; an end the scheduler asked for is ``stopped``, not a failure) before it
  writes the state they change; a routine ``TASK_RUNNING`` or health report is not noted;
- an operator's command that acts at once (forced restart or replace, gone, stop-drained) is noted
  by :func:`noted_command` with the command's own message;
- everything else is found by :func:`noted`, which compares the state being written with the one
  stored, on every write (:class:`HistoryPersistence`): the planner's ledger (a restart, replace,
  scale-down drain or maintenance move queued or started), the rollout's steps (started, done,
  failed, skipped, aborted) and an automatic replacement. It compares only what changed by
  identity (the ledger holds a few entries; the rollout's steps are walked only when the rollout
  object changed), so a status update costs it three pointer comparisons.

A node id above the desired count whose task ended leaves with its history (:func:`noted_update`):
the histories stay bounded by the ids the cluster wants or holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from es_framework.core.disruption_ledger import Disruption, Kind
from es_framework.core.engine_state import StatePersistence
from es_framework.core.node_history import HistoryEntry, HistoryKind, short, with_entries, without
from es_framework.core.node_state import FREEING_STATES, LIVE_STATES, ClusterState, NodeRecord, TaskState
from es_framework.core.plan import Launch
from es_framework.core.rollout_model import Rollout, Step, StepState
from es_framework.core.status_updates import Action, Decision, StatusUpdate

#: Task states whose update is noted: the task ended or is out of reach.
NOTED_STATES = FREEING_STATES | {TaskState.UNREACHABLE, TaskState.UNKNOWN}
_LIVE_VALUES = frozenset(s.value for s in LIVE_STATES)

_LEDGER_KINDS = {
    Kind.RESTART: HistoryKind.RESTART,
    Kind.REPLACE: HistoryKind.REPLACE,
    Kind.SCALE_DOWN: HistoryKind.SCALE_DOWN,
    Kind.MAINTENANCE: HistoryKind.MAINTENANCE,
}

#: Step states a rollout step's entry is noted for (its start is ``draining``).
_NOTED_STEPS = frozenset({StepState.DRAINING, StepState.DONE, StepState.FAILED, StepState.SKIPPED})


def _state_of(state: ClusterState, node_id: int) -> str | None:
    record = state.nodes.get(node_id)
    return record.state.value if record is not None else None


def noted_entries(state: ClusterState, entries: Iterable[tuple[int, HistoryEntry]]) -> ClusterState:
    """``state`` with ``entries`` (node id, entry) added to their nodes' histories."""
    return state.with_history(with_entries(state.node_history, entries))


def update_entry(
    holder: NodeRecord | None, update: StatusUpdate, decision: Decision, now: float
) -> HistoryEntry | None:
    """The entry a status update of ``holder``'s task makes, or None when it is routine (a live
    state, a repeat, an update of no node's current task)."""
    if (
        holder is None
        or decision.node_id is None
        or decision.action is Action.IGNORE
        or decision.duplicate
        or update.state not in NOTED_STATES
    ):
        return None
    said = f"{update.state.value}" + (f" ({update.reason})" if update.reason else "")
    if holder.stopping is not None:
        text = f"{said}: stopped as asked ({holder.stopping})"
        return HistoryEntry(now, HistoryKind.STOPPED, short(text), update.state.value)
    text = f"{said}: {update.message}" if update.message else said
    return HistoryEntry(now, HistoryKind.FAILURE, short(text), update.state.value)


def routine_event(state: str | None, message: str) -> bool:
    """Whether an in-memory engine event (:class:`~es_framework.core.engine_stats.EngineEvent`) is a
    routine task update that the history does not keep: a live state (staging, starting, running,
    killing), in the words the engine's status-update events start with (``TASK_RUNNING …``).
    ``GET /v1/nodes/<id>`` shows these between the persisted entries; everything else it shows
    comes from the persisted history, which noted it already."""
    return state in _LIVE_VALUES and message.startswith(state)


def noted_update(
    state: ClusterState, holder: NodeRecord | None, update: StatusUpdate, decision: Decision, now: float
) -> ClusterState:
    """``state`` (after ``update`` was applied) with the update's entry in its node's history; a node
    id the cluster no longer wants (above the desired count) whose task ended leaves with its history."""
    node_id = decision.node_id
    if node_id is None:
        return state
    if decision.action is Action.FREE and node_id > state.desired_nodes and node_id not in state.nodes:
        return state.with_history(without(state.node_history, node_id))
    entry = update_entry(holder, update, decision, now)
    return noted_entries(state, [(node_id, entry)]) if entry is not None else state


def noted_launches(state: ClusterState, launches: Sequence[Launch], now: float) -> ClusterState:
    """``state`` with a ``launch`` entry for each launch of an offer cycle."""
    return noted_entries(
        state,
        [
            (
                launch.record.node_id,
                HistoryEntry(
                    now, HistoryKind.LAUNCH, short(f"launched on {launch.offer.hostname}"), launch.record.state.value
                ),
            )
            for launch in launches
        ],
    )


def noted_command(
    before: ClusterState, after: ClusterState, node_ids: Iterable[int], *, command: str, message: str, now: float
) -> ClusterState:
    """``after`` (an operator command's outcome over ``before``) with the command and its ``message``
    in the history of each node it acted on; the state noted is the node's before the command."""
    text = short(f"{command}: {message}" if command else message)
    return noted_entries(
        after,
        [(i, HistoryEntry(now, HistoryKind.COMMAND, text, _state_of(before, i))) for i in sorted(set(node_ids))],
    )


# --- what a write changes ------------------------------------------------------------------------------


def _ledger_entries(before: ClusterState, after: ClusterState, now: float) -> list[tuple[int, HistoryEntry]]:
    """A ledger entry queued or started (a rollout's own entries are noted as its steps)."""
    old, new = before.disruptions, after.disruptions
    if old is new:
        return []
    out: list[tuple[int, HistoryEntry]] = []
    for node_id, entry in sorted(new.items()):
        was: Disruption | None = old.get(node_id)
        if entry is was or entry.kind is Kind.ROLLOUT:
            continue
        kind = _LEDGER_KINDS[entry.kind]
        fresh = was is None or was.kind is not entry.kind
        if entry.started_at is not None and (was is None or fresh or was.started_at is None):
            text = f"{entry.kind.value} started (node shutdown {entry.shutdown.value})"
        elif entry.started_at is None and fresh:
            text = f"{entry.kind.value} queued" + (f": {entry.reason}" if entry.reason else "")
        else:
            continue
        out.append((node_id, HistoryEntry(now, kind, short(text), _state_of(after, node_id))))
    return out


def _step_entry(rollout: Rollout, step: Step, state: ClusterState, now: float, what: str) -> HistoryEntry:
    """``what``: ``started``, ``done``, ``failed``, ``skipped`` or ``aborted``."""
    reason = f": {step.reason}" if step.reason and what in (StepState.FAILED.value, StepState.SKIPPED.value) else ""
    return HistoryEntry(
        now,
        HistoryKind.ROLLOUT,
        short(f"rollout {rollout.id} ({rollout.reason.value}) step {what}{reason}"),
        _state_of(state, step.node_id),
        rollout.id,
        what,
    )


def _rollout_entries(before: ClusterState, after: ClusterState, now: float) -> list[tuple[int, HistoryEntry]]:
    """Steps that started, finished or failed between ``before`` and ``after``; when the rollout ended
    (finished: moved to ``rollout_history``; aborted; replaced by another), its steps in progress
    are done or aborted."""
    old, new = before.rollout, after.rollout
    if old is new:
        return []
    out: list[tuple[int, HistoryEntry]] = []
    if new is not None:
        same = old is not None and old.id == new.id
        previous: Mapping[int, Step] = old.steps if same and old is not None else {}
        if new.steps is not previous:
            for node_id, step in new.steps.items():
                was = previous.get(node_id)
                if step is was or step.state not in _NOTED_STEPS or (was is not None and was.state is step.state):
                    continue
                what = "started" if step.state is StepState.DRAINING else step.state.value
                out.append((node_id, _step_entry(new, step, after, now, what)))
    if old is not None and (new is None or new.id != old.id):
        ended = _ended_as(old, after)
        for node_id in old.in_progress:
            step = old.steps[node_id]
            out.append((node_id, _step_entry(old, step, after, now, ended)))
    return out


def _ended_as(rollout: Rollout, after: ClusterState) -> str:
    """What a rollout's steps in progress became when it left the state: ``done`` when it completed
    (every step finished, so they did), else ``aborted``."""
    for entry in reversed(after.rollout_history):
        if entry.get("id") == rollout.id:
            return StepState.DONE.value if entry.get("outcome") == "completed" else "aborted"
    return "aborted"


def _replacement_entries(before: ClusterState, after: ClusterState, now: float) -> list[tuple[int, HistoryEntry]]:
    new = after.last_replacement
    if new is None or new is before.last_replacement:
        return []
    since = f" out of reach since {new.since:.0f}" if new.since is not None else ""
    text = f"replaced automatically: task {new.task_id}{since}; agent {new.agent_id} marked gone"
    return [(new.node_id, HistoryEntry(now, HistoryKind.REPLACEMENT, short(text), _state_of(before, new.node_id)))]


def noted(before: ClusterState, after: ClusterState, now: float) -> ClusterState:
    """``after`` (the state about to be written over ``before``) with what the planner's ledger, the
    rollout and an automatic replacement changed in between noted in the nodes' histories."""
    if after is before:
        return after
    entries = [
        *_ledger_entries(before, after, now),
        *_rollout_entries(before, after, now),
        *_replacement_entries(before, after, now),
    ]
    return noted_entries(after, entries) if entries else after


class HistoryPersistence(StatePersistence):
    """The engine's state writes with the histories noted (:func:`noted`) in the same write: mixed
    into :class:`~es_framework.core.engine.Engine` in place of :class:`StatePersistence`."""

    _clock: Callable[[], float]

    def _persist(self, state: ClusterState) -> bool:
        return super()._persist(noted(self.state, state, self._clock()))
