"""Shard allocation of the demo node (development tool, not Elasticsearch): pure functions on a
:class:`~es_framework.dev.demo_es.cluster_state.DemoClusterState`, run by the master.

- :func:`create_index` / :func:`delete_index`: an index has ``number_of_shards`` groups of
  ``1 + number_of_replicas`` copies, all UNASSIGNED until :func:`reroute` places them.
- :func:`reroute`, given the live nodes: fails the copies of nodes that left (a started replica is promoted
  when a primary is lost), then places unassigned copies, then moves copies off excluded nodes, then
  rebalances one copy at a time when the data nodes' copy counts differ by more than one.
- :func:`shard_started` / :func:`shard_failed`: what a data node reports after recovering a copy, or what a
  primary reports when a copy missed a write.

``/_cluster/health`` is computed in :mod:`.health`, ``/_cluster/allocation/explain`` (with the deciders
below) in :mod:`.explain`.

Rules (a small, deliberate subset of Elasticsearch's deciders):

- **same_shard**: never two copies of one shard on one node;
- **filter**: no copy on a node matched by ``cluster.routing.allocation.exclude._name`` / ``._id``;
  a copy already on such a node must move (it stays RELOCATING on the source until the target started);
- **node_shutdown** and **node_version** (:mod:`.deciders`): nodes shutting down for removal are treated like
  excluded ones; a replica never goes to a node older than its primary's, a primary never relocates to an older
  node; copies of a node that left under a ``restart`` shutdown wait ``allocation_delay`` for it to return;
- **throttling**: at most :data:`MAX_INCOMING_RECOVERIES` copies recover onto one node at a time;
- a primary is only rebuilt from a node in its ``in_sync`` set (the node that comes back with the same
  ``path.data`` keeps its node id, so it gets its copies back without copying; a node with a new, empty
  ``path.data`` has a new id and is a new node); a shard that never started gets an empty primary;
- replicas are placed only while the primary is active, preferably on a node that had a copy;
- ``cluster.routing.allocation.enable`` ``none`` / ``primaries`` / ``new_primaries`` limits placement as its
  name says; ``cluster.routing.rebalance.enable: none`` stops rebalancing.

Load is the number of copies a node holds or receives; ties go to the lowest node name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import replace

from es_framework.dev.demo_es.cluster_state import (
    INITIALIZING,
    RECOVERY_EMPTY,
    RECOVERY_EXISTING,
    RECOVERY_PEER,
    RELOCATING,
    STARTED,
    UNASSIGNED,
    Copy,
    DemoClusterState,
    IndexMeta,
    NodeInfo,
    ShardGroup,
    excluded,
)
from es_framework.dev.demo_es.deciders import (
    Decision,
    delayed,
    may_remain,
    node_shutdown,
    node_version,
    reason_for_departure,
)

MAX_INCOMING_RECOVERIES = 2


# ---------------------------------------------------------------------- indices


def create_index(state: DemoClusterState, meta: IndexMeta) -> DemoClusterState:
    replica = Copy(primary=False, unassigned_at=meta.creation_date)
    copies = (Copy(primary=True, unassigned_at=meta.creation_date),) + (replica,) * meta.number_of_replicas
    shards = dict(state.shards)
    for number in range(meta.number_of_shards):
        shards[(meta.name, number)] = ShardGroup(meta.name, number, copies)
    return replace(state, indices={**state.indices, meta.name: meta}, shards=shards)


def delete_index(state: DemoClusterState, name: str) -> DemoClusterState:
    indices = {k: v for k, v in state.indices.items() if k != name}
    shards = {k: v for k, v in state.shards.items() if k[0] != name}
    return replace(state, indices=indices, shards=shards)


def set_replicas(state: DemoClusterState, name: str, replicas: int, now: int) -> DemoClusterState:
    """``index.number_of_replicas`` changed: add unassigned replicas or drop replicas (unassigned first)."""
    meta = state.indices[name]
    shards = dict(state.shards)
    for group in state.groups(name):
        replicas_now = [c for c in group.copies if not c.primary]
        if len(replicas_now) < replicas:
            extra = tuple(
                Copy(primary=False, unassigned_reason="REPLICA_ADDED", unassigned_at=now)
                for _ in range(replicas - len(replicas_now))
            )
            shards[(name, group.shard)] = replace(group, copies=group.copies + extra)
        elif len(replicas_now) > replicas:
            order = {UNASSIGNED: 0, INITIALIZING: 1, RELOCATING: 2, STARTED: 3}
            drop = sorted(replicas_now, key=lambda c: order[c.state])[: len(replicas_now) - replicas]
            kept = list(group.copies)
            for copy in drop:
                kept.remove(copy)
            shards[(name, group.shard)] = replace(group, copies=tuple(kept))
    return replace(state, indices={**state.indices, name: replace(meta, number_of_replicas=replicas)}, shards=shards)


# ---------------------------------------------------------------------- deciders


def _copy_label(group: ShardGroup, copy: Copy, state: DemoClusterState) -> str:
    node = state.node(copy.node)
    return f"[[{group.index}][{group.shard}], node[{copy.node}], [{'P' if copy.primary else 'R'}], s[{copy.state}]]" + (
        f" on [{node.name}]" if node else ""
    )


def _subject(group: ShardGroup) -> Copy:
    """The copy a decision is about when the caller does not say: the first unassigned one, else the primary."""
    return next((c for c in group.copies if c.state == UNASSIGNED), group.primary)


def can_allocate(
    state: DemoClusterState,
    group: ShardGroup,
    node: NodeInfo,
    load: Counter[str],
    incoming: Counter[str],
    *,
    copy: Copy | None = None,
) -> list[Decision]:
    """Every decider's answer for placing ``copy`` of ``group`` (a new copy, or a relocation) on ``node``."""
    copy = copy if copy is not None else _subject(group)
    decisions = []
    holding = [c for c in group.copies if node.node_id in (c.node, c.relocating_node)]
    if holding:
        decisions.append(
            Decision(
                "same_shard",
                "NO",
                "a copy of this shard is already allocated to this node " + _copy_label(group, holding[0], state),
            )
        )
    else:
        decisions.append(Decision("same_shard", "YES", "this node does not hold a copy of this shard"))
    match = excluded(state, node)
    decisions.append(
        Decision("filter", "NO", match)
        if match
        else Decision("filter", "YES", "node passes include/exclude/require filters")
    )
    decisions.append(node_shutdown(state, node))
    decisions.append(node_version(state, group, copy, node))
    if incoming[node.node_id] >= MAX_INCOMING_RECOVERIES:
        decisions.append(
            Decision(
                "throttling",
                "THROTTLE",
                f"reached the limit of incoming shard recoveries [{incoming[node.node_id]}] on the node, "
                f"limit [{MAX_INCOMING_RECOVERIES}] (demo: fixed)",
            )
        )
    return decisions


def verdict(decisions: Iterable[Decision]) -> str:
    """NO if any decider says so, else THROTTLE if any does, else YES."""
    values = {d.decision for d in decisions}
    return "NO" if "NO" in values else "THROTTLE" if "THROTTLE" in values else "YES"


def _allocation_allowed(state: DemoClusterState, copy: Copy, group: ShardGroup) -> bool:
    enable = state.setting("cluster.routing.allocation.enable", "all")
    if enable == "none":
        return False
    if enable == "primaries":
        return copy.primary
    if enable == "new_primaries":
        return copy.primary and not group.in_sync
    return True


# ---------------------------------------------------------------------- reroute


class Placement:
    """Mutable bookkeeping while one reroute runs (load and incoming recoveries per node)."""

    def __init__(self, state: DemoClusterState, data_nodes: list[NodeInfo]) -> None:
        self.data_nodes = sorted(data_nodes, key=lambda n: n.name)
        self.load: Counter[str] = Counter()
        self.incoming: Counter[str] = Counter()
        for group in state.shards.values():
            for copy in group.copies:
                if copy.node:
                    self.load[copy.node] += 1
                if copy.relocating_node:
                    self.load[copy.relocating_node] += 1
                    self.incoming[copy.relocating_node] += 1
                if copy.state == INITIALIZING and copy.recovery == RECOVERY_PEER and copy.node:
                    self.incoming[copy.node] += 1

    def best(
        self,
        state: DemoClusterState,
        group: ShardGroup,
        prefer: frozenset[str] = frozenset(),
        copy: Copy | None = None,
        now: int | None = None,
    ) -> NodeInfo | None:
        allowed = [
            n
            for n in self.data_nodes
            if verdict(can_allocate(state, group, n, self.load, self.incoming, copy=copy)) == "YES"
            and (copy is None or now is None or not delayed(state, copy, n, now))
        ]
        if not allowed:
            return None
        return min(allowed, key=lambda n: (n.node_id not in prefer, self.load[n.node_id], n.name))

    def add(self, node_id: str, recovering: bool) -> None:
        self.load[node_id] += 1
        if recovering:
            self.incoming[node_id] += 1


def _fail_copy(group: ShardGroup, index: int, reason: str, now: int) -> ShardGroup:
    """Copy ``index`` of ``group`` is lost (its node left or it failed); promote a replica if it was the primary."""
    copies = list(group.copies)
    lost = copies[index]
    in_sync, stale = set(group.in_sync), set(group.stale)
    if lost.state == RELOCATING and lost.relocating_node:
        # The target cannot finish without its source; its half copy may stay on its disk.
        stale.add(lost.relocating_node)
    copies[index] = Copy(primary=lost.primary, unassigned_reason=reason, unassigned_at=now, last_node=lost.node)
    if lost.node:
        others_active = any(c.active for i, c in enumerate(copies) if i != index)
        if others_active:
            # The remaining copies take writes without it from now on: its files become a stale copy.
            in_sync.discard(lost.node)
        if lost.active or lost.recovery == RECOVERY_EXISTING:
            stale.add(lost.node)
    if lost.primary:
        candidates = [i for i, c in enumerate(copies) if c.active and i != index and c.node in in_sync]
        if candidates:
            promoted = candidates[0]
            copies[promoted] = replace(copies[promoted], primary=True)
            copies[index] = replace(copies[index], primary=False)
    return replace(group, copies=tuple(copies), in_sync=frozenset(in_sync), stale=frozenset(stale))


def _fail_departed(state: DemoClusterState, group: ShardGroup, live: set[str], now: int) -> ShardGroup:
    for index, copy in enumerate(group.copies):
        if copy.state == RELOCATING and copy.relocating_node not in live and copy.node in live:
            copies = list(group.copies)
            copies[index] = replace(copy, state=STARTED, relocating_node=None)
            group = replace(group, copies=tuple(copies))
    # Fail the primary last so that a replica can be promoted in its place.
    order = sorted(range(len(group.copies)), key=lambda i: group.copies[i].primary)
    for index in order:
        copy = group.copies[index]
        if copy.node is not None and copy.node not in live:
            group = _fail_copy(group, index, reason_for_departure(state, copy.node), now)
    return group


def _place(
    state: DemoClusterState, group: ShardGroup, placement: Placement, live: dict[str, NodeInfo], now: int
) -> ShardGroup:
    copies = list(group.copies)
    for index in sorted(range(len(copies)), key=lambda i: not copies[i].primary):
        copy = copies[index]
        current = replace(group, copies=tuple(copies))
        if copy.state != UNASSIGNED or not _allocation_allowed(state, copy, group):
            continue
        if copy.primary:
            if group.in_sync:
                # Only a node with an in-sync copy may bring the primary back; like Elasticsearch it may do so
                # even on an excluded node (the copy then moves away).
                owners = sorted((live[n] for n in group.in_sync if n in live), key=lambda n: n.name)
                owners = [n for n in owners if n.node_id not in current.holders()]
                if not owners:
                    continue
                target = owners[0]
                recovery = RECOVERY_EXISTING
            else:
                found = placement.best(state, current, copy=copy, now=now)
                if found is None:
                    continue
                target, recovery = found, RECOVERY_EMPTY
            copies[index] = Copy(primary=True, state=INITIALIZING, node=target.node_id, recovery=recovery)
            placement.add(target.node_id, recovering=False)
        else:
            primary = current.primary
            if not primary.active:
                continue
            found = placement.best(state, current, prefer=group.stale | group.in_sync, copy=copy, now=now)
            if found is None:
                continue
            copies[index] = Copy(primary=False, state=INITIALIZING, node=found.node_id, recovery=RECOVERY_PEER)
            placement.add(found.node_id, recovering=True)
    return replace(group, copies=tuple(copies))


def _move_excluded(state: DemoClusterState, group: ShardGroup, placement: Placement) -> ShardGroup:
    """Move started copies off nodes they may not remain on: excluded by a filter, or shutting down for removal."""
    copies = list(group.copies)
    for index, copy in enumerate(copies):
        node = state.node(copy.node)
        if copy.state != STARTED or node is None or (excluded(state, node) is None and may_remain(state, node)):
            continue
        target = placement.best(state, replace(group, copies=tuple(copies)), copy=copy)
        if target is None:
            continue
        copies[index] = replace(copy, state=RELOCATING, relocating_node=target.node_id)
        placement.add(target.node_id, recovering=True)
    return replace(group, copies=tuple(copies))


def _rebalance(state: DemoClusterState, placement: Placement) -> DemoClusterState:
    """Move one copy from the fullest to the emptiest allowed data node when they differ by more than one."""
    if state.setting("cluster.routing.rebalance.enable", "all") == "none":
        return state
    if any(c.state != STARTED for g in state.shards.values() for c in g.copies):
        return state  # like allow_rebalance: indices_all_active
    allowed = [n for n in placement.data_nodes if excluded(state, n) is None and may_remain(state, n)]
    if len(allowed) < 2:
        return state
    fullest = max(allowed, key=lambda n: (placement.load[n.node_id], n.name))
    for emptiest in sorted(allowed, key=lambda n: (placement.load[n.node_id], n.name)):
        if placement.load[fullest.node_id] - placement.load[emptiest.node_id] <= 1:
            return state
        for key, group in sorted(state.shards.items()):
            for index, copy in enumerate(group.copies):
                if copy.node != fullest.node_id:
                    continue
                if (
                    verdict(can_allocate(state, group, emptiest, placement.load, placement.incoming, copy=copy))
                    != "YES"
                ):
                    continue
                copies = list(group.copies)
                copies[index] = replace(copy, state=RELOCATING, relocating_node=emptiest.node_id)
                return replace(state, shards={**state.shards, key: replace(group, copies=tuple(copies))})
    return state


def reroute(state: DemoClusterState, live_nodes: Iterable[NodeInfo], now: int) -> DemoClusterState:
    """The routing after applying the live nodes, placing what can be placed and moving what must move.
    ``state.nodes`` becomes ``live_nodes``; the version is not changed (the caller bumps it if different)."""
    nodes = tuple(sorted(live_nodes, key=lambda n: n.name))
    live = {n.node_id: n for n in nodes if n.is_data}
    seen = {n.node_id for n in nodes}
    shutdowns = {
        node_id: replace(record, node_seen=True) if node_id in seen and not record.node_seen else record
        for node_id, record in state.shutdowns.items()
    }
    state = replace(state, nodes=nodes, shutdowns=shutdowns)
    shards = {key: _fail_departed(state, group, set(live), now) for key, group in state.shards.items()}
    state = replace(state, shards=shards)
    placement = Placement(state, list(live.values()))
    shards = dict(state.shards)
    for key in sorted(shards):
        shards[key] = _place(replace(state, shards=shards), shards[key], placement, live, now)
    for key in sorted(shards):
        shards[key] = _move_excluded(replace(state, shards=shards), shards[key], placement)
    state = replace(state, shards=shards)
    return _rebalance(state, placement)


def shard_started(state: DemoClusterState, index: str, shard: int, node_id: str) -> DemoClusterState:
    """The copy INITIALIZING on ``node_id`` (or relocating to it) has all the data now."""
    group = state.shards.get((index, shard))
    if group is None:
        return state
    copies = list(group.copies)
    in_sync, stale = set(group.in_sync), set(group.stale)
    for position, copy in enumerate(copies):
        if copy.state == INITIALIZING and copy.node == node_id:
            copies[position] = replace(copy, state=STARTED, recovery="", unassigned_reason=None)
            break
        if copy.state == RELOCATING and copy.relocating_node == node_id:
            if copy.node:
                in_sync.discard(copy.node)
            copies[position] = Copy(primary=copy.primary, state=STARTED, node=node_id, unassigned_reason=None)
            break
    else:
        return state
    in_sync.add(node_id)
    stale.discard(node_id)
    group = replace(group, copies=tuple(copies), in_sync=frozenset(in_sync), stale=frozenset(stale))
    if group.fully_active:
        # Every copy is started: the started copies are the whole truth, and old files elsewhere may go.
        group = replace(group, in_sync=frozenset(c.node for c in copies if c.node), stale=frozenset())
    return replace(state, shards={**state.shards, (index, shard): group})


def shard_failed(state: DemoClusterState, index: str, shard: int, node_id: str, now: int) -> DemoClusterState:
    """The copy on ``node_id`` missed a write or could not recover: unassign it (or cancel its relocation)."""
    group = state.shards.get((index, shard))
    if group is None:
        return state
    for position, copy in enumerate(group.copies):
        if copy.state == RELOCATING and copy.relocating_node == node_id:
            copies = list(group.copies)
            copies[position] = replace(copy, state=STARTED, relocating_node=None)
            group = replace(group, copies=tuple(copies))
            break
        if copy.node == node_id:
            group = _fail_copy(group, position, "ALLOCATION_FAILED", now)
            break
    else:
        return state
    return replace(state, shards={**state.shards, (index, shard): group})
