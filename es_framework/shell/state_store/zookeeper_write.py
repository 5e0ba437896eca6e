"""How one write of layout 2 is cut into ZooKeeper multi requests (no I/O here).

A write is one multi when it fits in one request (``jute.maxbuffer``, 1 MB by default): the fence
(the leader-lock check), a check of the ``nodes`` znode's version, the set of the cluster znode at
the expected version, and a create, set or delete per node znode that changed.

**A write that does not fit** (a configuration change marks 2,000 nodes ``outdated``; a
reconciliation batch after a failover changes 1,500 records) is sent in steps, each a multi:

1. Steps 1..k carry only changes that may be stored ahead of the cluster part
   (:func:`es_framework.core.state_layout.keys_ahead`: a node record that is held before and after,
   by the same task, whose own news changes, such as its task state, health or ``outdated``). Each
   step holds the fence, a check that the cluster znode is still at the expected version, and a
   set of the ``nodes`` znode at its expected version (the set bumps that version, so every step
   and every later write knows whether node znodes changed under it).
2. The last step holds the fence, the check of the ``nodes`` znode at the version the steps left,
   the set of the cluster znode (the state's version goes up only here) and every other change:
   node znodes created or deleted, records that appear, go, change task or ``stopping`` or
   ``cluster_uuid``, volume sets and pins. When that step alone does not fit, the write is refused
   before anything is sent (:class:`StateTooLargeError`).

**What a reader sees meanwhile** (a new leader after a crash midway, or ``es-framework volumes``):
each node znode is written atomically, so every record is wholly old or wholly new; the set of node
ids, the count and digest in the cluster znode and the cluster part are the old ones until the
last step, so a read between steps succeeds and returns, at the old version, the old cluster part
with some records already new. Nothing in that mix breaks an identity rule, because what goes
ahead is self-contained per node (node id → its task, agent and volumes, unchanged by such a step):
no node id is reserved or freed, no task changes, and nothing the cluster part decides from a
record (the bootstrap list, the cluster uuid, volume removals, a scale-down) is split from it.
A status update is acknowledged only after the whole write succeeded, so after a crash Mesos sends
it again (and the new leader reconciles every task), and the new leader applies it to the record
that may already hold it: the same state again is a duplicate, as it would be after the write. A
configuration change whose cluster part was not stored is recorded again by the next leader (its
configuration still differs from the stored one) and marks the remaining nodes; only if that
leader runs the old configuration again do the nodes already marked keep ``outdated`` (a flag that
informs and restarts nothing). Launches and operator actions change records' identity fields and
always go in the last step.

**After a crash midway** the cluster znode is still at the expected version, but the ``nodes``
znode is not: a write based on what was read before the crash fails its check (a conflict; the
engine reads the state again and applies its change to it), while a store that reads the state
first (a new leader does; the crashed writer's store forgets what it knew when a write fails)
writes on top of it, and the write sent again from that read completes the interrupted one.
Fencing holds in every step: a scheduler that lost the lock has no later step applied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from es_framework.shell.state_store.base import StateStoreError

#: What one operation adds to a request besides its path and data (type, flags, version, ACL).
OP_OVERHEAD = 128


class StateTooLargeError(StateStoreError):
    """One write would not fit in the ZooKeeper requests it may be cut into; nothing was written."""


@dataclass(frozen=True)
class Op:
    """One operation of a multi request; ``role`` says what its failure means."""

    kind: str  # check, create, set, delete
    path: str
    role: str  # fence, cluster, nodes, legacy, node
    data: bytes = b""
    version: int = -1
    key: str | None = None  # the node key of a node op

    @property
    def size(self) -> int:
        return OP_OVERHEAD + len(self.path.encode()) + len(self.data)


def size_of(ops: Iterable[Op]) -> int:
    return sum(op.size for op in ops)


def batches(ops: Iterable[Op], room: int) -> list[list[Op]]:
    """``ops`` in order, cut into lists of at most ``room`` bytes (an op larger than that alone)."""
    out: list[list[Op]] = []
    current: list[Op] = []
    used = 0
    for op in ops:
        if current and used + op.size > room:
            out.append(current)
            current, used = [], 0
        current.append(op)
        used += op.size
    if current:
        out.append(current)
    return out


@dataclass(frozen=True)
class WritePlan:
    """The multis of one write, in order; the last sets the cluster znode. ``nodes_version`` is the
    ``nodes`` znode's version once all have succeeded; ``ahead`` counts the node ops in earlier steps."""

    steps: tuple[tuple[Op, ...], ...]
    nodes_version: int | None
    ahead: int


def plan_write(
    *,
    fence: Sequence[Op],
    cluster: Op,
    nodes_path: str,
    nodes_version: int | None,
    node_ops: Sequence[Op],
    ahead: frozenset[str] | Callable[[], frozenset[str]],
    limit: int,
    what: str,
) -> WritePlan:
    """The multis that write ``cluster`` (the set of the cluster znode at the expected version) and
    ``node_ops``, each at most ``limit`` bytes; the ops of keys in ``ahead`` may go in earlier steps
    (a callable is called only when the write does not fit in one multi: finding them costs a read).

    Raises :class:`StateTooLargeError` when the last step alone would exceed ``limit``."""

    def check_nodes(version: int | None) -> list[Op]:
        return [] if version is None else [Op("check", nodes_path, "nodes", version=version)]

    single = [*fence, *check_nodes(nodes_version), cluster, *node_ops]
    if size_of(single) <= limit:
        return WritePlan((tuple(single),), nodes_version, 0)
    # Without a known ``nodes`` version nothing may go ahead (a stale read could not be told apart).
    if callable(ahead):
        ahead = ahead() if nodes_version is not None else frozenset()
    early = [op for op in node_ops if op.key in ahead] if nodes_version is not None else []
    last = [op for op in node_ops if op.key not in ahead] if early else list(node_ops)
    final_size = size_of([*fence, *check_nodes(nodes_version), cluster, *last])
    if final_size > limit:
        raise StateTooLargeError(
            f"one write of {what} would change {len(node_ops)} node znodes; {len(last)} of them (node ids "
            f"reserved or freed, tasks, stopping, cluster uuid, volume sets or pins) must be written together "
            f"with the cluster znode, about {final_size} bytes in one ZooKeeper request; the limit is {limit} "
            "(write fewer such changes at a time)"
        )
    assert nodes_version is not None  # else nothing goes ahead, and everything fitted or was refused
    guard = [
        *fence,
        Op("check", cluster.path, "cluster", version=cluster.version),
        Op("set", nodes_path, "nodes", version=nodes_version),  # its version is bumped below
    ]
    cut = batches(early, limit - size_of(guard))
    # The last batch rides with the final step when there is room for it.
    if cut and final_size + size_of(cut[-1]) <= limit:
        last = [*cut.pop(), *last]
    steps = [
        (*guard[:-1], Op("set", nodes_path, "nodes", version=nodes_version + number), *batch)
        for number, batch in enumerate(cut)
    ]
    final_version = nodes_version + len(cut)
    steps.append((*fence, *check_nodes(final_version), cluster, *last))
    return WritePlan(tuple(steps), final_version, sum(len(batch) for batch in cut))
