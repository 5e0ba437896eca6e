"""What Elasticsearch last said, for the disruption planner, read so that doubt means "not safe".

:func:`observe` turns the raw answers of ``GET _cluster/health``, ``GET _cat/shards?format=json``
and ``GET _cat/nodes?format=json&h=name,master`` into a :class:`Seen`, or an :class:`Unknown` when
any of them is missing, an error, or not what Elasticsearch answers (a missing count is not zero,
an unknown status is not green). Facts used, from Elasticsearch's reference: cluster health
``status`` is ``green``/``yellow``/``red`` and counts ``unassigned_shards``,
``relocating_shards``, ``initializing_shards`` (cluster-health.html); ``_cat/shards`` gives one row
per copy with ``state`` ``STARTED``/``RELOCATING``/``INITIALIZING``/``UNASSIGNED``, ``prirep``
``p`` for a primary and ``r`` for a replica, and, for a relocating copy, ``node`` as
``"source -> address id target"`` (cat-shards.html); ``_cat/nodes`` marks the elected master with
``*`` in its ``master`` column (cat-nodes.html). Health ``yellow`` means every primary is assigned
and some replica is not (cluster-health.html); the planner checks the shard rows for that itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

HEALTH_STATUSES = frozenset({"green", "yellow", "red"})
#: Copies that serve reads and can be promoted: a relocating copy is still active on its source.
_ACTIVE = frozenset({"STARTED", "RELOCATING"})
_SHARD_STATES = frozenset({"STARTED", "RELOCATING", "INITIALIZING", "UNASSIGNED"})


@dataclass(frozen=True)
class Unknown:
    """Elasticsearch did not answer, or not in a form this scheduler understands: not safe."""

    reason: str


@dataclass(frozen=True)
class Seen:
    status: str
    #: Names of the nodes in the cluster.
    joined: frozenset[str]
    elected_master: str | None
    unassigned_shards: int
    relocating_shards: int
    initializing_shards: int
    #: Node name -> shard copies on it.
    shards_by_node: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    #: Node name -> copies on it with no active copy of the same shard on another node.
    sole_copies: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    #: Node name -> (shutdown type, status), lower case, as registered with the node-shutdown API.
    shutdowns: Mapping[str, tuple[str, str]] = field(default_factory=lambda: MappingProxyType({}))
    #: ``cluster.routing.allocation.enable`` as set (None: not set, i.e. ``all``).
    allocation_enable: str | None = None
    #: Primary copies ``_cat/shards`` lists as unassigned (``prirep`` ``p``); None when a row does
    #: not say whether it is a primary: then yellow is not taken to mean "every primary assigned".
    unassigned_primaries: int | None = None

    @property
    def in_flight(self) -> int:
        return self.relocating_shards + self.initializing_shards


Observation = Seen | Unknown | None


def _count(health: Mapping[str, object], key: str) -> int | None:
    value = health.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def observe(
    health: object,
    shard_rows: object,
    node_rows: object,
    *,
    shutdowns: Mapping[str, tuple[str, str]] | None = None,
    allocation_enable: str | None = None,
) -> Seen | Unknown:
    """The planner's view from Elasticsearch's raw answers (None for a call that failed)."""
    if not isinstance(health, Mapping):
        return Unknown("no cluster health")
    status = health.get("status")
    if status not in HEALTH_STATUSES:
        return Unknown(f"cluster health status {status!r} is not green, yellow or red")
    counts = {k: _count(health, k) for k in ("unassigned_shards", "relocating_shards", "initializing_shards")}
    missing = sorted(k for k, v in counts.items() if v is None)
    if missing:
        return Unknown(f"cluster health has no valid {', '.join(missing)}")
    if not isinstance(node_rows, list) or not all(
        isinstance(r, Mapping) and isinstance(r.get("name"), str) and r.get("name") for r in node_rows
    ):
        return Unknown("the node list is missing or malformed")
    joined = frozenset(str(r["name"]) for r in node_rows)
    elected = [str(r["name"]) for r in node_rows if r.get("master") == "*"]
    if not isinstance(shard_rows, list):
        return Unknown("the shard list is missing")
    by_node: dict[str, int] = {}
    active: dict[tuple[str, str], set[str]] = {}
    copies: list[tuple[tuple[str, str], str, str]] = []
    unassigned_primaries: int | None = 0
    for row in shard_rows:
        if not isinstance(row, Mapping) or row.get("state") not in _SHARD_STATES:
            return Unknown("a shard row is malformed")
        key = (str(row.get("index")), str(row.get("shard")))
        node = row.get("node")
        if row["state"] == "UNASSIGNED":
            primary = row.get("prirep")
            if primary not in ("p", "r"):
                unassigned_primaries = None  # unknown from here on
            elif primary == "p" and unassigned_primaries is not None:
                unassigned_primaries += 1
            continue
        if not isinstance(node, str) or not node.strip():
            return Unknown(f"shard {key[0]}[{key[1]}] is {row['state']} on no node")
        source = node.split(" -> ")[0].strip()
        by_node[source] = by_node.get(source, 0) + 1
        copies.append((key, source, str(row["state"])))
        if row["state"] in _ACTIVE:
            active.setdefault(key, set()).add(source)
    sole: dict[str, int] = {}
    for key, node, _state in copies:
        if not active.get(key, set()) - {node}:
            sole[node] = sole.get(node, 0) + 1
    return Seen(
        status=str(status),
        joined=joined,
        elected_master=elected[0] if len(elected) == 1 else None,
        unassigned_shards=counts["unassigned_shards"] or 0,
        relocating_shards=counts["relocating_shards"] or 0,
        initializing_shards=counts["initializing_shards"] or 0,
        shards_by_node=MappingProxyType(by_node),
        sole_copies=MappingProxyType(sole),
        shutdowns=MappingProxyType(dict(shutdowns or {})),
        allocation_enable=allocation_enable,
        unassigned_primaries=unassigned_primaries,
    )
