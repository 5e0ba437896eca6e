"""The identity invariants the chaos runner checks, as pure functions over what it observed.

Each check takes plain snapshots (the development master's attachment ledger, its task list, the
scheduler's stored state, the leader-lock timeline, the calls the master took) and returns the
:class:`Violation` s it finds; none does I/O or reads a clock.

1. ``one_task_per_id``: no two tasks with one node id were ever live at once. Checked over the
   master's ledger (:mod:`es_framework.dev.devcluster.attachments`), which holds every launch with
   the instant it was handed to its executor and the instant it ended: continuous, not sampled.
2. ``one_holder_per_volume``: no named volume was ever attached to two live tasks at once (same
   ledger, same precision).
3. ``ids_exact`` and ``unreachable_id_kept``: after convergence the live node ids are exactly
   ``1..desired``, each one running task the stored state names; while an agent is unreachable,
   the stored state still holds the id and task of every node on it.
5. ``acted_only_as_leader``: every launch or kill the master took came on a stream opened by the
   process that held the leader lock (the lowest-sequence contender of kazoo's lock recipe) at
   that moment. The lock is sampled, so a call counts as unlocked only when the samples just before
   and just after it both name another holder (or none): a change between two samples is never
   blamed on the scheduler; nor is a call between two samples more than ``MAX_SAMPLE_GAP_S`` apart
   (the watcher's own ZooKeeper session was down: the lock may have changed hands unseen).
4. ``no_document_lost`` (``process`` mode): the documents indexed before the faults are all there,
   counted whenever the cluster is green after a fault's convergence and after the run.
   ``max_unavailable``: every KILL the scheduler sent of a node's only live task (a rollout step, a
   queued restart or replace, a drain, a maintenance move; not a forced command, which goes past the
   planner by design) came while fewer than ``--maxUnavailable`` other nodes of ``1..desired`` were
   down, a node counting as down when none of its tasks lived in the ``grace`` seconds before the
   KILL (shorter absences are status updates still on their way to the scheduler: not judged).
   ``rollout_kept``: the rollout the runner started last is still under way or in the scheduler's
   history of finished rollouts, whatever scheduler kills, pauses and failovers came between.
6. ``malformed_offers_declined``: every malformed offer the development master mixed in (with an id
   to name) was declined, none accepted; ``scheduler_alive``: no scheduler process ended that the
   runner had not signalled (a crash, e.g. over an event it could not read).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

ONE_TASK_PER_ID = "one_task_per_id"
ONE_HOLDER_PER_VOLUME = "one_holder_per_volume"
IDS_EXACT = "ids_exact"
UNREACHABLE_ID_KEPT = "unreachable_id_kept"
ACTED_ONLY_AS_LEADER = "acted_only_as_leader"
MALFORMED_OFFERS_DECLINED = "malformed_offers_declined"
SCHEDULER_ALIVE = "scheduler_alive"
NO_DOCUMENT_LOST = "no_document_lost"
MAX_UNAVAILABLE = "max_unavailable"
ROLLOUT_KEPT = "rollout_kept"
INVARIANTS = (
    ONE_TASK_PER_ID,
    ONE_HOLDER_PER_VOLUME,
    IDS_EXACT,
    UNREACHABLE_ID_KEPT,
    ACTED_ONLY_AS_LEADER,
    MALFORMED_OFFERS_DECLINED,
    SCHEDULER_ALIVE,
    NO_DOCUMENT_LOST,
    MAX_UNAVAILABLE,
    ROLLOUT_KEPT,
)

#: Samples further apart than this (the watcher samples every 50 ms) mean the watcher could not read
#: the lock, e.g. while its own ZooKeeper session reconnected after a ZooKeeper restart: the lock may
#: have changed hands more than once in between, so a call then is not judged.
MAX_SAMPLE_GAP_S = 1.0
#: Calls that act on the cluster; a non-leader must never get one of them taken.
ACTING_CALLS = frozenset({"SUBSCRIBE", "ACCEPT", "KILL", "TEARDOWN"})


@dataclass(frozen=True)
class Violation:
    invariant: str
    message: str
    #: The node ids involved (their event history is printed with the violation).
    node_ids: tuple[int, ...] = ()
    #: The task ids involved.
    task_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskLife:
    """A task from its launch to its end (``end`` ``None``: still live), with its volumes."""

    task_id: str
    node_id: int | None
    volumes: tuple[str, ...]
    start: float
    end: float | None


@dataclass(frozen=True)
class LiveTask:
    """A non-terminal task of the framework as the master sees it now."""

    task_id: str
    node_id: int | None
    state: str
    agent_reachable: bool


@dataclass(frozen=True)
class StoredNode:
    node_id: int
    task_id: str
    state: str


@dataclass(frozen=True)
class LockSample:
    """At ``at``, the leader lock's holder was the process ``holder_pid`` (``None``: nobody)."""

    at: float
    holder_pid: int | None


@dataclass(frozen=True)
class TakenCall:
    """A scheduler call the master took (did not refuse), by the process whose stream sent it."""

    at: float
    type: str
    pid: int | None
    #: The task a KILL names.
    task_id: str | None = None


def _overlap(a: TaskLife, b: TaskLife) -> bool:
    a_end = float("inf") if a.end is None else a.end
    b_end = float("inf") if b.end is None else b.end
    return a.start < b_end and b.start < a_end


def _overlapping_pairs(lives: Sequence[TaskLife]) -> Iterable[tuple[TaskLife, TaskLife]]:
    ordered = sorted(lives, key=lambda life: life.start)
    for i, first in enumerate(ordered):
        first_end = float("inf") if first.end is None else first.end
        for second in ordered[i + 1 :]:
            if second.start >= first_end:
                break  # sorted by start: every later life begins after ``first`` ended
            if _overlap(first, second):
                yield first, second


def one_task_per_id(lives: Iterable[TaskLife]) -> list[Violation]:
    """Invariant 1 over every task's life: two tasks of one node id never live at once."""
    by_id: dict[int, list[TaskLife]] = defaultdict(list)
    for life in lives:
        if life.node_id is not None:
            by_id[life.node_id].append(life)
    return [
        Violation(
            ONE_TASK_PER_ID,
            f"node {node_id}: tasks {a.task_id} and {b.task_id} were live at once (from {max(a.start, b.start):.3f} s)",
            node_ids=(node_id,),
            task_ids=(a.task_id, b.task_id),
        )
        for node_id, group in sorted(by_id.items())
        for a, b in _overlapping_pairs(group)
    ]


def one_holder_per_volume(lives: Iterable[TaskLife]) -> list[Violation]:
    """Invariant 2: a named volume is never attached to two live tasks at once."""
    by_volume: dict[str, list[TaskLife]] = defaultdict(list)
    for life in lives:
        for volume in life.volumes:
            by_volume[volume].append(life)
    return [
        Violation(
            ONE_HOLDER_PER_VOLUME,
            f"volume {volume}: attached to tasks {a.task_id} and {b.task_id} at once "
            f"(from {max(a.start, b.start):.3f} s)",
            node_ids=tuple(sorted({n for n in (a.node_id, b.node_id) if n is not None})),
            task_ids=(a.task_id, b.task_id),
        )
        for volume, group in sorted(by_volume.items())
        for a, b in _overlapping_pairs(group)
    ]


def master_not_converged(live: Iterable[LiveTask], desired: int) -> str | None:
    """The master's half of :func:`not_converged` (no stored state needed): live ids exactly
    ``1..desired``, one running task each on a reachable agent."""
    by_id: dict[int | None, list[LiveTask]] = defaultdict(list)
    for task in live:
        by_id[task.node_id].append(task)
    if sorted(by_id, key=lambda n: -1 if n is None else n) != list(range(1, desired + 1)):
        return f"live node ids {sorted(str(n) for n in by_id)}, want 1..{desired}"
    for node_id, tasks in by_id.items():
        if len(tasks) != 1 or tasks[0].state != "TASK_RUNNING" or not tasks[0].agent_reachable:
            return f"node {node_id}: {[(t.task_id, t.state, t.agent_reachable) for t in tasks]}"
    return None


def not_converged(live: Iterable[LiveTask], stored: Iterable[StoredNode], desired: int) -> str | None:
    """Why the cluster has not converged to ``desired`` running nodes (``None``: it has): live ids
    exactly ``1..desired``, one running task each on a reachable agent, and the stored state naming
    exactly those tasks as running."""
    live = list(live)
    reason = master_not_converged(live, desired)
    if reason is not None:
        return reason
    by_id = {task.node_id: task for task in live}
    wanted = list(range(1, desired + 1))
    stored_by_id = {n.node_id: n for n in stored}
    if sorted(stored_by_id) != wanted:
        return f"stored node ids {sorted(stored_by_id)}, want 1..{desired}"
    for node_id, node in stored_by_id.items():
        task = by_id[node_id]
        if node.task_id != task.task_id or node.state != "TASK_RUNNING":
            return f"node {node_id}: stored {node.task_id} {node.state}, master runs {task.task_id}"
    return None


def ids_exact(live: Iterable[LiveTask], stored: Iterable[StoredNode], desired: int, waited_s: float) -> list[Violation]:
    """Invariant 3 once the bounded wait is over: the cluster converged."""
    reason = not_converged(live, stored, desired)
    if reason is None:
        return []
    return [Violation(IDS_EXACT, f"not converged to nodes 1..{desired} within {waited_s:.0f} s: {reason}")]


def unreachable_id_kept(on_lost_agent: Mapping[int, str], stored: Iterable[StoredNode]) -> list[Violation]:
    """Invariant 3, second half: every node of an unreachable agent (node id → task id) keeps its id
    and task in the stored state."""
    stored_by_id = {n.node_id: n for n in stored}
    violations = []
    for node_id, task_id in sorted(on_lost_agent.items()):
        node = stored_by_id.get(node_id)
        if node is None or node.task_id != task_id:
            held = "nothing" if node is None else f"task {node.task_id}"
            violations.append(
                Violation(
                    UNREACHABLE_ID_KEPT,
                    f"node {node_id}: its agent is unreachable with task {task_id}, but the state holds {held}",
                    node_ids=(node_id,),
                    task_ids=(task_id,),
                )
            )
    return violations


def holder_around(samples: Sequence[LockSample], at: float) -> tuple[LockSample | None, LockSample | None]:
    """The last sample at or before ``at`` and the first one after it (``samples`` in time order)."""
    index = bisect_right(samples, at, key=lambda sample: sample.at)
    before = samples[index - 1] if index > 0 else None
    after = samples[index] if index < len(samples) else None
    return before, after


def acted_only_as_leader(calls: Iterable[TakenCall], samples: Sequence[LockSample]) -> list[Violation]:
    """Invariant 5: every acting call the master took came from the lock holder of that moment."""
    violations = []
    for call in calls:
        if call.type not in ACTING_CALLS:
            continue
        before, after = holder_around(samples, call.at)
        if before is None or after is None:
            continue  # outside the watched time: nothing to compare with
        if after.at - before.at > MAX_SAMPLE_GAP_S:
            continue  # the watcher was blind (its own ZooKeeper session down): nobody is known to hold it
        if call.pid is None:
            violations.append(
                Violation(ACTED_ONLY_AS_LEADER, f"{call.type} at {call.at:.3f} s on a stream of no known scheduler")
            )
        elif call.pid not in (before.holder_pid, after.holder_pid):
            violations.append(
                Violation(
                    ACTED_ONLY_AS_LEADER,
                    f"{call.type} at {call.at:.3f} s by pid {call.pid}, while pid {before.holder_pid} held the "
                    f"leader lock (sampled at {before.at:.3f} s) and pid {after.holder_pid} after "
                    f"({after.at:.3f} s)",
                )
            )
    return violations


@dataclass(frozen=True)
class SentMalformed:
    """A malformed offer the master sent: its id (``None``: the variant has none), what is wrong with
    it, what the framework answered, and whether the stream it went on is still the framework's."""

    offer_id: str | None
    variant: str
    declined: bool
    accepted: bool
    stream_open: bool


def malformed_offers_declined(sent: Iterable[SentMalformed]) -> list[Violation]:
    """Each malformed offer with an id was declined while its stream stayed open, and none accepted
    (one without an id cannot be named in a DECLINE; a closed stream's offers died with it)."""
    violations = []
    for offer in sent:
        if offer.accepted:
            violations.append(
                Violation(MALFORMED_OFFERS_DECLINED, f"malformed offer {offer.offer_id} ({offer.variant}) accepted")
            )
        elif offer.offer_id is not None and offer.stream_open and not offer.declined:
            violations.append(
                Violation(
                    MALFORMED_OFFERS_DECLINED, f"malformed offer {offer.offer_id} ({offer.variant}) never declined"
                )
            )
    return violations


def scheduler_alive(exits: Mapping[str, int | None]) -> list[Violation]:
    """Every scheduler (name → exit status, ``None`` while it runs) still runs: the runner restarts
    the ones it signals before it checks, so an exit here is the scheduler's own."""
    return [
        Violation(SCHEDULER_ALIVE, f"scheduler {name} exited by itself with status {status}")
        for name, status in sorted(exits.items())
        if status is not None
    ]


def _lives_at(life: TaskLife, start: float, end: float) -> bool:
    """Whether ``life`` was live at some instant of ``[start, end]``."""
    return life.start <= end and (life.end is None or life.end >= start)


def desired_at(history: Sequence[tuple[float, int]], at: float) -> int:
    """The desired node count at ``at`` from ``(since, count)`` pairs in time order."""
    index = bisect_right(history, at, key=lambda pair: pair[0])
    return history[max(index - 1, 0)][1]


def within_max_unavailable(
    calls: Iterable[TakenCall],
    lives: Iterable[TaskLife],
    desired: Sequence[tuple[float, int]],
    *,
    max_unavailable: int,
    exempt: Iterable[str],
    grace_s: float,
) -> list[Violation]:
    """``max_unavailable``: the scheduler took no node down (KILL of the node's only live task) while
    ``max_unavailable`` other nodes were already down for ``grace_s`` or longer."""
    lives = list(lives)
    by_task = {life.task_id: life for life in lives}
    by_id: dict[int, list[TaskLife]] = defaultdict(list)
    for life in lives:
        if life.node_id is not None:
            by_id[life.node_id].append(life)
    skipped = set(exempt)
    violations = []
    for call in calls:
        if call.type != "KILL" or call.task_id is None or call.task_id in skipped:
            continue
        killed = by_task.get(call.task_id)
        if killed is None or killed.node_id is None or not _lives_at(killed, call.at, call.at):
            continue  # unknown, or already ended: the KILL takes nothing down
        node_id = killed.node_id
        if any(o is not killed and _lives_at(o, call.at, call.at) for o in by_id[node_id]):
            continue  # a second task of the id: killing it takes no node down
        since = call.at - grace_s
        down = [
            other
            for other in range(1, desired_at(desired, call.at) + 1)
            if other != node_id
            and any(o.start < since for o in by_id[other])
            and not any(_lives_at(o, since, call.at) for o in by_id[other])
        ]
        if len(down) + 1 > max_unavailable:
            violations.append(
                Violation(
                    MAX_UNAVAILABLE,
                    f"KILL of node {node_id} task {call.task_id} at {call.at:.3f} s while node(s) "
                    f"{', '.join(map(str, down))} had been down for {grace_s:.0f} s (maxUnavailable {max_unavailable})",
                    node_ids=(node_id, *down),
                    task_ids=(call.task_id,),
                )
            )
    return violations


def documents_exact(counted: int, indexed: int) -> list[Violation]:
    """``no_document_lost``: the count of a green cluster is exactly what was indexed."""
    if counted == indexed:
        return []
    return [Violation(NO_DOCUMENT_LOST, f"{counted} documents counted on a green cluster, {indexed} indexed")]


def rollout_kept(started: str | None, current: str | None, finished: Iterable[str]) -> list[Violation]:
    """``rollout_kept``: the last rollout started (``None``: none yet) is ``current`` or ``finished``."""
    if started is None or started == current or started in set(finished):
        return []
    return [
        Violation(
            ROLLOUT_KEPT,
            f"rollout {started} is neither under way (the current one is {current}) nor among the finished",
        )
    ]
