"""The demo node's cluster state: what the master decides and publishes (development tool, not Elasticsearch).

Plain frozen data and pure functions only, no I/O:

- :class:`NodeInfo`, :class:`IndexMeta`, :class:`Copy` (one shard copy: primary or replica, on which node,
  in which state), :class:`ShardGroup` (all copies of one shard plus the in-sync bookkeeping) and
  :class:`DemoClusterState`, which holds them with the cluster settings and the voting configuration;
- their JSON form (``to_json`` / ``state_from_json``), which the master publishes and every node persists;
- the cluster settings the demo accepts (:func:`update_cluster_settings`);
- the master election rule (:func:`claims_master`) and the voting configuration (:func:`voting_config`).

**Master rule.** Among the master-eligible nodes a node can see (itself included) that are not in the voting
configuration exclusions, the one with the lowest node name is the candidate; it acts as master when it sees
a majority of the last voting configuration it knows (or when no configuration was ever recorded, i.e. a new
cluster). A new master first adopts the newest state any member holds (highest ``version``). This is a
simplification of Elasticsearch's elections and can, like any such rule, be fooled by asymmetric partitions.

The allocation logic that changes the routing lives in :mod:`es_framework.dev.demo_es.routing`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from es_framework.dev.demo_es.version import DEMO_VERSION, EsVersion, join_refusal, parse_version

UNASSIGNED = "UNASSIGNED"
INITIALIZING = "INITIALIZING"
STARTED = "STARTED"
RELOCATING = "RELOCATING"
ACTIVE_STATES = frozenset({STARTED, RELOCATING})

#: How an INITIALIZING copy gets its data: a new empty shard, the node's own files, or a copy from the primary.
RECOVERY_EMPTY = "empty_store"
RECOVERY_EXISTING = "existing_store"
RECOVERY_PEER = "peer"

EXCLUDE_NAME = "cluster.routing.allocation.exclude._name"
EXCLUDE_ID = "cluster.routing.allocation.exclude._id"
RELOCATION_DELAY = "demo.relocation_delay"
#: Dynamic cluster settings the demo understands (everything else is refused like an unknown setting).
CLUSTER_SETTINGS = frozenset(
    {
        EXCLUDE_NAME,
        EXCLUDE_ID,
        "cluster.routing.allocation.enable",
        "cluster.routing.rebalance.enable",
        RELOCATION_DELAY,
    }
)
ALLOCATION_ENABLE_VALUES = frozenset({"all", "primaries", "new_primaries", "none"})


class ClusterSettingsError(ValueError):
    """A cluster settings update Elasticsearch would refuse (message in its wording)."""


@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    name: str
    roles: tuple[str, ...]
    http: str
    transport: str
    #: The Elasticsearch version the node plays (see :mod:`.version`).
    version: str = DEMO_VERSION

    @property
    def es_version(self) -> EsVersion:
        return parse_version(self.version)

    @property
    def is_data(self) -> bool:
        return any(role == "data" or role.startswith("data_") for role in self.roles)

    @property
    def is_master_eligible(self) -> bool:
        return "master" in self.roles


@dataclass(frozen=True)
class IndexMeta:
    name: str
    uuid: str
    number_of_shards: int
    number_of_replicas: int
    creation_date: int  # milliseconds since the epoch, as Elasticsearch reports it


@dataclass(frozen=True)
class Copy:
    """One copy of a shard. A RELOCATING copy is being copied to ``relocating_node`` (the target is
    INITIALIZING there and becomes this copy once it has started)."""

    primary: bool
    state: str = UNASSIGNED
    node: str | None = None
    relocating_node: str | None = None
    recovery: str = ""
    unassigned_reason: str | None = "INDEX_CREATED"
    unassigned_at: int = 0
    #: The node the copy was on before it became unassigned (Elasticsearch's ``lastAllocatedNodeId``).
    last_node: str | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


@dataclass(frozen=True)
class ShardGroup:
    """All copies of one shard. ``in_sync``: node ids whose copy has every acknowledged write (the only
    copies a primary may be rebuilt from). ``stale``: node ids that held a copy which may still be on their
    disk (preferred for a replica, which then needs copying only if it differs from the primary)."""

    index: str
    shard: int
    copies: tuple[Copy, ...]
    in_sync: frozenset[str] = frozenset()
    stale: frozenset[str] = frozenset()

    @property
    def primary(self) -> Copy:
        return next(c for c in self.copies if c.primary)

    def holders(self) -> frozenset[str]:
        """Every node holding or receiving a copy of this shard."""
        nodes = {c.node for c in self.copies if c.node} | {c.relocating_node for c in self.copies if c.relocating_node}
        return frozenset(n for n in nodes if n)

    @property
    def fully_active(self) -> bool:
        return all(c.state == STARTED for c in self.copies)


#: Node shutdown types (``SingleNodeShutdownMetadata.Type``) and the restart's default allocation delay.
SHUTDOWN_RESTART, SHUTDOWN_REMOVE, SHUTDOWN_REPLACE = "RESTART", "REMOVE", "REPLACE"
DEFAULT_RESTART_ALLOCATION_DELAY = "5m"


@dataclass(frozen=True)
class ShutdownRecord:
    """One node's shutdown, as Elasticsearch keeps it in the cluster state's metadata
    (``SingleNodeShutdownMetadata`` in elastic/elasticsearch, server/src/main/java/org/elasticsearch/cluster/
    metadata/SingleNodeShutdownMetadata.java). ``node_seen``: the node was in the cluster since it was recorded."""

    node_id: str
    type: str
    reason: str
    started_at: int  # epoch milliseconds
    node_seen: bool = False
    allocation_delay: str | None = None  # as given; RESTART only
    target_node_name: str | None = None  # REPLACE only

    @property
    def removing(self) -> bool:
        """REMOVE and REPLACE move every copy off the node (``NodeShutdownAllocationDecider``)."""
        return self.type in (SHUTDOWN_REMOVE, SHUTDOWN_REPLACE)

    @property
    def effective_allocation_delay(self) -> str | None:
        if self.type != SHUTDOWN_RESTART:
            return None
        return self.allocation_delay or DEFAULT_RESTART_ALLOCATION_DELAY


@dataclass(frozen=True)
class DemoClusterState:
    """The demo cluster's state (named so that it is never taken for the scheduler's
    :class:`es_framework.core.node_state.ClusterState`, which is another thing entirely)."""

    cluster_uuid: str
    version: int = 0
    master: str | None = None
    nodes: tuple[NodeInfo, ...] = ()
    indices: Mapping[str, IndexMeta] = field(default_factory=dict)
    #: ``(index, shard)`` → its copies; every index in ``indices`` has all its shards here.
    shards: Mapping[tuple[str, int], ShardGroup] = field(default_factory=dict)
    persistent: Mapping[str, str] = field(default_factory=dict)
    transient: Mapping[str, str] = field(default_factory=dict)
    voting_config: tuple[str, ...] = ()
    voting_exclusions: tuple[tuple[str, str], ...] = ()  # (node id, node name)
    #: Node id → its shutdown (metadata, so it is persisted and survives restarts like Elasticsearch's).
    shutdowns: Mapping[str, ShutdownRecord] = field(default_factory=dict)
    #: The ``elastic`` user's password hash once changed (Elasticsearch's ``.security`` index; see :mod:`.security`).
    elastic_password_hash: str | None = None

    def node(self, node_id: str | None) -> NodeInfo | None:
        return next((n for n in self.nodes if n.node_id == node_id), None)

    def setting(self, key: str, default: str = "") -> str:
        """Transient wins over persistent, as in Elasticsearch."""
        return self.transient.get(key, self.persistent.get(key, default))

    def groups(self, index: str) -> list[ShardGroup]:
        meta = self.indices[index]
        return [self.shards[(index, number)] for number in range(meta.number_of_shards)]


# ---------------------------------------------------------------------- JSON


def to_json(state: DemoClusterState) -> dict[str, Any]:
    return {
        "cluster_uuid": state.cluster_uuid,
        "version": state.version,
        "master": state.master,
        "nodes": [
            {
                "node_id": n.node_id,
                "name": n.name,
                "roles": list(n.roles),
                "http": n.http,
                "transport": n.transport,
                "version": n.version,
            }
            for n in state.nodes
        ],
        "indices": [vars(meta) for meta in state.indices.values()],
        "shards": [
            {
                "index": g.index,
                "shard": g.shard,
                "in_sync": sorted(g.in_sync),
                "stale": sorted(g.stale),
                "copies": [vars(c) for c in g.copies],
            }
            for g in state.shards.values()
        ],
        "persistent": dict(state.persistent),
        "transient": dict(state.transient),
        "voting_config": list(state.voting_config),
        "voting_exclusions": [list(pair) for pair in state.voting_exclusions],
        "shutdowns": [vars(record) for record in state.shutdowns.values()],
        "elastic_password_hash": state.elastic_password_hash,
    }


def state_from_json(document: Mapping[str, Any]) -> DemoClusterState:
    groups = {}
    for item in document.get("shards", []):
        group = ShardGroup(
            index=str(item["index"]),
            shard=int(item["shard"]),
            copies=tuple(Copy(**copy) for copy in item["copies"]),
            in_sync=frozenset(item.get("in_sync", [])),
            stale=frozenset(item.get("stale", [])),
        )
        groups[(group.index, group.shard)] = group
    return DemoClusterState(
        cluster_uuid=str(document["cluster_uuid"]),
        version=int(document.get("version", 0)),
        master=document.get("master"),
        nodes=tuple(
            NodeInfo(
                str(n["node_id"]),
                str(n["name"]),
                tuple(n["roles"]),
                str(n["http"]),
                str(n["transport"]),
                str(n.get("version", DEMO_VERSION)),
            )
            for n in document.get("nodes", [])
        ),
        indices={str(i["name"]): IndexMeta(**i) for i in document.get("indices", [])},
        shards=groups,
        persistent=dict(document.get("persistent", {})),
        transient=dict(document.get("transient", {})),
        voting_config=tuple(document.get("voting_config", [])),
        voting_exclusions=tuple((str(a), str(b)) for a, b in document.get("voting_exclusions", [])),
        shutdowns={str(r["node_id"]): ShutdownRecord(**r) for r in document.get("shutdowns", [])},
        elastic_password_hash=document.get("elastic_password_hash"),
    )


# ---------------------------------------------------------------------- cluster settings


def flatten_settings(document: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"cluster": {"routing": {...}}}`` and ``{"cluster.routing...": ...}`` alike → dotted keys."""
    flat: dict[str, Any] = {}
    for key, value in document.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_settings(value, full + "."))
        else:
            flat[full] = value
    return flat


def nest_settings(flat: Mapping[str, str]) -> dict[str, Any]:
    """Dotted keys → nested objects, the shape ``GET /_cluster/settings`` answers with by default."""
    nested: dict[str, Any] = {}
    for key, value in sorted(flat.items()):
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def _setting_value(key: str, value: Any) -> str:
    if isinstance(value, list):
        text = ",".join(str(v) for v in value)
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    if key in ("cluster.routing.allocation.enable", "cluster.routing.rebalance.enable") and (
        text not in ALLOCATION_ENABLE_VALUES
    ):
        raise ClusterSettingsError(f"Illegal allocation.enable value [{text.upper()}]")
    if key == RELOCATION_DELAY:
        try:
            seconds = float(text.removesuffix("s"))
        except ValueError:
            raise ClusterSettingsError(f"failed to parse setting [{key}] with value [{text}] as a time value") from None
        if seconds < 0:
            raise ClusterSettingsError(f"failed to parse setting [{key}] with value [{text}]: must be >= 0")
    return text


def update_cluster_settings(
    state: DemoClusterState, persistent: Mapping[str, Any], transient: Mapping[str, Any]
) -> DemoClusterState:
    """Apply a ``PUT /_cluster/settings`` body; ``null`` clears a setting. Raises :class:`ClusterSettingsError`."""
    result = {}
    for scope, current, update in (
        ("persistent", state.persistent, persistent),
        ("transient", state.transient, transient),
    ):
        merged = dict(current)
        for key, value in flatten_settings(update).items():
            matching = [k for k in CLUSTER_SETTINGS if fnmatch.fnmatchcase(k, key)] if "*" in key else [key]
            if not matching or any(k not in CLUSTER_SETTINGS for k in matching):
                raise ClusterSettingsError(f"{scope} setting [{key}], not recognized")
            for name in matching:
                if value is None:
                    merged.pop(name, None)
                else:
                    merged[name] = _setting_value(name, value)
        result[scope] = merged
    return replace(state, persistent=result["persistent"], transient=result["transient"])


def name_patterns(value: str) -> list[str]:
    return [p.strip() for p in value.split(",") if p.strip()]


def excluded(state: DemoClusterState, node: NodeInfo) -> str | None:
    """The exclusion filter that matches ``node`` (Elasticsearch's wording), or None."""
    for key, attribute, pattern_text in (
        (EXCLUDE_NAME, "_name", state.setting(EXCLUDE_NAME)),
        (EXCLUDE_ID, "_id", state.setting(EXCLUDE_ID)),
    ):
        value = node.name if attribute == "_name" else node.node_id
        for pattern in name_patterns(pattern_text):
            if fnmatch.fnmatchcase(value, pattern):
                scope = "transient" if key in state.transient else "persistent"
                return (
                    f'node matches cluster setting [{key.rsplit(".", 1)[0]}] filters [{attribute}:"{pattern_text}"]'
                    f" ({scope})"
                )
    return None


# ---------------------------------------------------------------------- master election and voting


def claims_master(
    own: NodeInfo,
    seen: list[NodeInfo],
    voting_config: tuple[str, ...],
    exclusions: tuple[tuple[str, str], ...],
    cluster_nodes: tuple[NodeInfo, ...] = (),
) -> bool:
    """Whether ``own`` is master, given the nodes it sees (itself excluded) — the rule in the module docstring.
    A node the last accepted cluster state (``cluster_nodes``) would refuse to join is never a candidate: in
    Elasticsearch a new master's own join goes through the same version checks (``JoinTaskExecutor``), so an
    older node cannot take over a cluster that finished upgrading."""
    everyone = [own, *seen]
    excluded_ids = {node_id for node_id, _ in exclusions}
    eligible = [n for n in everyone if n.is_master_eligible and n.node_id not in excluded_ids]
    if not eligible:
        # Everybody excluded: Elasticsearch would have no quorum either, but a lone excluded cluster still
        # needs someone to lift the exclusions.
        eligible = [n for n in everyone if n.is_master_eligible]
    versions = [n.es_version for n in cluster_nodes]
    eligible = [n for n in eligible if join_refusal(n.es_version, versions) is None]
    if not eligible or min(eligible, key=lambda n: n.name).node_id != own.node_id:
        return False
    if not voting_config:
        return True
    present = {n.node_id for n in everyone} & set(voting_config)
    return len(present) * 2 > len(voting_config)


def voting_config(
    previous: tuple[str, ...], live: list[NodeInfo], exclusions: tuple[tuple[str, str], ...], master: str = ""
) -> tuple[str, ...]:
    """The voting configuration the master records: its live master-eligible nodes without the excluded ones,
    an odd number of them (Elasticsearch leaves one out of an even count, never the master), and never
    shrunk below three by nodes merely leaving (only exclusions shrink it that far), so that one lost node
    cannot take the majority with it."""
    excluded_ids = {node_id for node_id, _ in exclusions}
    eligible = sorted(n.node_id for n in live if n.is_master_eligible and n.node_id not in excluded_ids)
    if len(eligible) < 3:
        kept = [n for n in previous if n not in excluded_ids and n not in eligible]
        eligible = sorted(eligible + kept[: max(0, 3 - len(eligible))])
    if len(eligible) > 1 and len(eligible) % 2 == 0:
        eligible.remove(max((n for n in eligible if n != master), default=eligible[-1]))
    return tuple(eligible)
