"""The node shutdown API of the demo node (development tool, not Elasticsearch), pure part: request checks, the
change to the cluster state, and each node's shutdown status, as Elasticsearch's shutdown plugin does them
(elastic/elasticsearch, x-pack/plugin/shutdown/src/main/java/org/elasticsearch/xpack/shutdown/).

- ``PUT /_nodes/<node_id>/shutdown`` (``PutShutdownNodeAction``, ``TransportPutShutdownNodeAction``): a strict
  body ``{type, reason, allocation_delay, target_node_name}``; ``type`` and ``reason`` are required, ``type`` is
  ``restart``, ``remove`` or ``replace`` in any case; ``allocation_delay`` only for ``restart``,
  ``target_node_name`` required for ``replace`` and refused otherwise. The node id is not checked against the
  cluster (a node may be registered while it is away). A new request for the same node replaces the record
  unless it changes nothing. Errors as Elasticsearch gives them: 400 ``parse_exception`` without a body,
  ``x_content_parse_exception`` for unknown fields, wrong value types and a bad type or time value,
  ``illegal_argument_exception`` ``Required [...]`` for missing fields, ``action_request_validation_exception``
  for the rules above.
- ``GET /_nodes/shutdown`` and ``GET /_nodes/<id,...>/shutdown`` (``TransportGetShutdownStatusAction``,
  ``SingleNodeShutdownStatus``, ``ShutdownShardMigrationStatus``): ``{"nodes": [...]}`` with the overall status
  and ``shard_migration``, ``persistent_tasks``, ``plugins`` (the demo has neither persistent tasks nor plugins:
  both ``COMPLETE``). Shard migration: ``restart`` is ``COMPLETE`` at once (shards stay); ``remove``/``replace``
  is ``NOT_STARTED`` while the node was never seen, ``STALLED`` when a copy of the node cannot go anywhere and
  has no started copy elsewhere, ``IN_PROGRESS`` while copies remain or move, ``COMPLETE`` when none remain.
  The started/relocating/initializing counts are reported from 8.12 on, as Elasticsearch does.
- ``DELETE /_nodes/<node_id>/shutdown``: 404 ``resource_not_found_exception`` when the node has no shutdown.

The API exists in 7.17 and 8.x alike (documented since 7.13, ``replace`` since 7.16); the documentation says it is
meant for ECE/ESS/ECK, and an operator-only restriction applies only when operator privileges are enabled, which
the demo node (no security) never does — so both versions serve it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from es_framework.dev.demo_es.cluster_state import (
    INITIALIZING,
    RELOCATING,
    SHUTDOWN_REMOVE,
    SHUTDOWN_REPLACE,
    SHUTDOWN_RESTART,
    STARTED,
    UNASSIGNED,
    Copy,
    DemoClusterState,
    ShardGroup,
    ShutdownRecord,
)
from es_framework.dev.demo_es.deciders import time_value_millis
from es_framework.dev.demo_es.errors import EsError
from es_framework.dev.demo_es.routing import Placement, can_allocate, verdict
from es_framework.dev.demo_es.version import EsVersion

PARSER = "put_node_shutdown_request"
FIELDS = ("type", "reason", "allocation_delay", "target_node_name")
REQUIRED = ("type", "reason")
NOT_STARTED, IN_PROGRESS, STALLED, COMPLETE = "NOT_STARTED", "IN_PROGRESS", "STALLED", "COMPLETE"
_ORDER = (NOT_STARTED, IN_PROGRESS, STALLED, COMPLETE)
NODE_ALLOCATION_DECISION = "node_allocation_decision"
#: From this version on the shard migration status carries its started/relocating/initializing counts.
COUNTS_SINCE = EsVersion(8, 12, 0)


def _position(raw: str, key: str) -> str:
    """``line:column`` of ``key``'s value in the body, as Elasticsearch's parser reports positions (roughly)."""
    at = raw.find(f'"{key}"')
    if at < 0:
        return "1:1"
    before = raw[:at]
    return f"{before.count(chr(10)) + 1}:{at - (before.rfind(chr(10)) + 1) + len(key) + 4}"


def _token(value: Any) -> str:
    if value is None:
        return "VALUE_NULL"
    if isinstance(value, bool):
        return "VALUE_BOOLEAN"
    if isinstance(value, (int, float)):
        return "VALUE_NUMBER"
    return "START_OBJECT" if isinstance(value, dict) else "START_ARRAY"


def _build_failure(raw: str, field: str, reason: str) -> EsError:
    """A value the request's constructor refuses: Elasticsearch wraps it twice (``ConstructingObjectParser``)."""
    built = {
        "type": "x_content_parse_exception",
        "reason": f"Failed to build [{PARSER}] after last required field arrived",
    }
    return EsError(
        400,
        "x_content_parse_exception",
        f"[{_position(raw, field)}] [{PARSER}] failed to parse field [{field}]",
        caused_by={**built, "caused_by": {"type": "illegal_argument_exception", "reason": reason}},
    )


def parse_put(node_id: str, raw: bytes, now: int) -> ShutdownRecord:
    """The record a ``PUT /_nodes/<node_id>/shutdown`` asks for; :class:`EsError` as Elasticsearch refuses it."""
    text = raw.decode("utf-8", errors="replace")
    if not text.strip():
        raise EsError(400, "parse_exception", "request body is required")
    try:
        body = json.loads(text)
    except ValueError as error:
        raise EsError(400, "x_content_parse_exception", f"[1:1] failed to parse request body: {error}") from None
    if not isinstance(body, dict):
        raise EsError(400, "x_content_parse_exception", f"[1:1] [{PARSER}] Expected START_OBJECT")
    for key, value in body.items():
        if key not in FIELDS:
            raise EsError(
                400, "x_content_parse_exception", f"[{_position(text, key)}] [{PARSER}] unknown field [{key}]"
            )
        if not isinstance(value, str):
            raise EsError(
                400,
                "x_content_parse_exception",
                f"[{_position(text, key)}] [{PARSER}] {key} doesn't support values of type: {_token(value)}",
            )
    missing = [key for key in REQUIRED if key not in body]
    if missing:
        raise EsError(400, "illegal_argument_exception", f"Required [{', '.join(missing)}]")
    last = max(REQUIRED, key=lambda k: list(body).index(k))
    kind = body["type"].upper()
    if kind not in (SHUTDOWN_RESTART, SHUTDOWN_REMOVE, SHUTDOWN_REPLACE):
        raise _build_failure(text, last, f"unknown shutdown type: {body['type']}")
    delay = body.get("allocation_delay")
    if delay is not None and time_value_millis(delay) is None:
        raise _build_failure(
            text,
            last,
            f"failed to parse setting [put-shutdown-node-request-{node_id}] with value [{delay}] as a time value: "
            "unit is missing or unrecognized",
        )
    target = body.get("target_node_name")
    problems = []
    if not node_id.strip():
        problems.append("the node id to shutdown is required")
    if delay is not None and kind != SHUTDOWN_RESTART:
        problems.append("allocation_delay is only allowed for RESTART-type shutdown requests")
    if target is not None and kind != SHUTDOWN_REPLACE:
        problems.append(
            "target node name is only valid for REPLACE type shutdowns, but was given type "
            f"[{kind}] and target node name [{target}]"
        )
    elif target is None and kind == SHUTDOWN_REPLACE:
        problems.append("target node name is required for REPLACE type shutdowns")
    if problems:
        listed = "".join(f"{number}: {problem};" for number, problem in enumerate(problems, start=1))
        raise EsError(400, "action_request_validation_exception", f"Validation Failed: {listed}")
    return ShutdownRecord(node_id, kind, body["reason"], now, allocation_delay=delay, target_node_name=target)


def put(state: DemoClusterState, record: ShutdownRecord) -> DemoClusterState:
    """Record (or replace) a node's shutdown; a request that changes nothing keeps the record as it is."""
    existing = state.shutdowns.get(record.node_id)

    def essence(r: ShutdownRecord) -> tuple[str, str, str | None, str | None]:
        return (r.type, r.reason, r.effective_allocation_delay, r.target_node_name)

    if existing is not None and essence(existing) == essence(record):
        return state
    seen = state.node(record.node_id) is not None
    return replace(state, shutdowns={**state.shutdowns, record.node_id: replace(record, node_seen=seen)})


def delete(state: DemoClusterState, node_id: str) -> DemoClusterState:
    if node_id not in state.shutdowns:
        raise EsError(404, "resource_not_found_exception", f"node [{node_id}] is not currently shutting down")
    return replace(state, shutdowns={k: v for k, v in state.shutdowns.items() if k != node_id})


# ---------------------------------------------------------------------- status


def _has_started_copy_elsewhere(state: DemoClusterState, group: ShardGroup) -> bool:
    """A started copy on a node that is not shutting down (``hasShardCopyOnAnotherNode``)."""
    return any(c.state == STARTED and c.node not in state.shutdowns for c in group.copies)


def _decision(state: DemoClusterState, group: ShardGroup, copy: Copy) -> dict[str, Any]:
    nodes = sorted((n for n in state.nodes if n.is_data and n.node_id != copy.node), key=lambda n: n.name)
    placement = Placement(state, nodes)
    result = []
    for node in nodes:
        deciders = can_allocate(state, group, node, placement.load, placement.incoming, copy=copy)
        result.append(
            {
                "node_id": node.node_id,
                "node_name": node.name,
                "node_decision": {"YES": "yes", "NO": "no", "THROTTLE": "throttled"}[verdict(deciders)],
                "deciders": [vars(d) for d in deciders if d.decision != "YES"],
            }
        )
    return {"node_allocation_decisions": result}


def _migration(
    status: str, version: EsVersion, counts: tuple[int, int, int] | None, remaining: int, explanation: str | None
) -> dict[str, Any]:
    document: dict[str, Any] = {"status": status}
    if counts is not None and not version.before(COUNTS_SINCE):
        document |= dict(zip(("started_shards", "relocating_shards", "initializing_shards"), counts, strict=True))
    document["shard_migrations_remaining"] = remaining
    if explanation is not None:
        document["explanation"] = explanation
    return document


def _label(group: ShardGroup, copy: Copy) -> str:
    return f"shard [{group.shard}] [{'primary' if copy.primary else 'replica'}] of index [{group.index}]"


def shard_migration(state: DemoClusterState, record: ShutdownRecord, version: EsVersion) -> dict[str, Any]:
    """``shard_migration`` of one node's shutdown (``TransportGetShutdownStatusAction.shardMigrationStatus``)."""
    if record.type == SHUTDOWN_RESTART:
        return _migration(COMPLETE, version, None, 0, "no shard relocation is necessary for a node restart")
    node_id = record.node_id
    if state.node(node_id) is None and not record.node_seen:
        return _migration(NOT_STARTED, version, None, 0, "node is not currently part of the cluster")
    see = f"see [{NODE_ALLOCATION_DECISION}] for details or use the cluster allocation explain API"
    stuck = [
        (group, copy)
        for _, group in sorted(state.shards.items())
        for copy in group.copies
        if copy.state == UNASSIGNED
        and copy.last_node == node_id
        and (copy.primary or not _has_started_copy_elsewhere(state, group))
    ]
    if stuck:
        group, copy = stuck[0]
        document = _migration(STALLED, version, None, len(stuck), f"{_label(group, copy)} is unassigned, {see}")
        return document | {NODE_ALLOCATION_DECISION: _decision(state, group, copy)}
    mine = [(g, c) for _, g in sorted(state.shards.items()) for c in g.copies if c.node == node_id]
    started = [(g, c) for g, c in mine if c.state == STARTED]
    relocating = sum(1 for _, c in mine if c.state == RELOCATING)
    initializing = sum(1 for _, c in mine if c.state == INITIALIZING)
    counts = (len(started), relocating, initializing)
    total = sum(counts)
    if total == 0:
        return _migration(COMPLETE, version, counts, 0, None)
    if relocating:
        return _migration(IN_PROGRESS, version, counts, total, None)
    if initializing and not started:
        return _migration(
            IN_PROGRESS,
            version,
            counts,
            total,
            "all remaining shards are currently INITIALIZING and must finish before they can be moved off this node",
        )
    ignored, unmovable, throttled = 0, [], []
    for group, copy in started:
        decisions = _decision(state, group, copy)["node_allocation_decisions"]
        outcomes = {d["node_decision"] for d in decisions}
        if "yes" in outcomes:
            continue
        if "throttled" in outcomes:
            throttled.append((group, copy))
        elif _has_started_copy_elsewhere(state, group):
            ignored += 1
        else:
            unmovable.append((group, copy))
    if total == ignored and not unmovable:
        return _migration(
            COMPLETE,
            version,
            None,
            0,
            f"[{ignored}] shards cannot be moved away from this node but have at least one copy on another node in "
            "the cluster",
        )
    if unmovable:
        group, copy = unmovable[0]
        document = _migration(STALLED, version, None, total, f"{_label(group, copy)} cannot move, {see}")
        return document | {NODE_ALLOCATION_DECISION: _decision(state, group, copy)}
    if throttled and len(throttled) == len(started) and not initializing:
        group, copy = throttled[0]
        document = _migration(
            IN_PROGRESS, version, counts, total, f"{_label(group, copy)} is waiting to be moved, {see}"
        )
        return document | {NODE_ALLOCATION_DECISION: _decision(state, group, copy)}
    return _migration(IN_PROGRESS, version, counts, total, None)


def combine(*statuses: str) -> str:
    """The overall status: the furthest from done of those not COMPLETE (``SingleNodeShutdownMetadata.Status``)."""
    pending = [_ORDER.index(s) for s in statuses if s != COMPLETE]
    return _ORDER[max(pending)] if pending else COMPLETE


def node_status(
    state: DemoClusterState, record: ShutdownRecord, version: EsVersion, params: Mapping[str, str]
) -> dict[str, Any]:
    """One entry of ``GET /_nodes/shutdown``."""
    migration = shard_migration(state, record, version)
    document: dict[str, Any] = {"node_id": record.node_id, "type": record.type, "reason": record.reason}
    if record.effective_allocation_delay is not None:
        document["allocation_delay"] = record.effective_allocation_delay
    if params.get("human") == "true":
        started = datetime.fromtimestamp(record.started_at / 1000, tz=UTC)
        document["shutdown_started"] = started.strftime("%Y-%m-%dT%H:%M:%S.") + f"{record.started_at % 1000:03d}Z"
    document["shutdown_startedmillis"] = record.started_at
    document["status"] = combine(migration["status"], COMPLETE, COMPLETE)
    document["shard_migration"] = migration
    document["persistent_tasks"] = {"status": COMPLETE}
    document["plugins"] = {"status": COMPLETE}
    if record.target_node_name is not None:
        document["target_node_name"] = record.target_node_name
    return document
