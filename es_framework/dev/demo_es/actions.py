"""What the demo node (development tool, not Elasticsearch) does for each request, on top of
:class:`~es_framework.dev.demo_es.node.DemoNode`.

Three layers, as in Elasticsearch:

- **coordinating** (any node, the public API): resolves indices, creates an index on first write, sends each
  shard's operations to the node holding its primary and each search to one active copy of every shard,
  merges the answers;
- **shard level** (the data node holding a copy, internal ``/_demo/shard/...`` endpoints): the primary
  applies writes and replicates them to every other assigned copy (a copy that misses one is reported
  failed to the master before the write is acknowledged); copies answer searches; the primary is the
  source of recoveries;
- **master** (:func:`run_master_action`): index creation and deletion, settings, voting exclusions,
  shard started / failed, each a change of the cluster state followed by a reroute.
"""

from __future__ import annotations

import base64
import fnmatch
import logging
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from es_framework.dev.demo_es import routing
from es_framework.dev.demo_es.client import call
from es_framework.dev.demo_es.cluster_state import (
    ACTIVE_STATES,
    RELOCATING,
    UNASSIGNED,
    ClusterSettingsError,
    ClusterState,
    IndexMeta,
    flatten_settings,
    nest_settings,
    update_cluster_settings,
)
from es_framework.dev.demo_es.documents import (
    BulkItem,
    Doc,
    Operation,
    Outcome,
    Query,
    doc_from_json,
    doc_to_json,
    op_from_json,
    op_to_json,
    parse_query,
    query_from_json,
    query_to_json,
    shard_for_id,
)
from es_framework.dev.demo_es.errors import EsError, index_not_found

if TYPE_CHECKING:
    from es_framework.dev.demo_es.node import DemoNode

logger = logging.getLogger("es_framework.dev.demo_es")

#: How long a write waits for its shard's primary to be active (Elasticsearch waits a minute by default).
PRIMARY_WAIT = 15.0
CREATE_WAIT = 30.0
STATE_WAIT = 5.0
_INVALID_INDEX_CHARS = set('\\/*?"<>| ,#:')


def _call(node: DemoNode, address: str, path: str, body: Any, timeout: float = 10.0) -> tuple[int, Any]:
    """POST to another node's internal API."""
    return call(address, "POST", path, body, timeout=timeout)


# ====================================================================== master actions


def _validate_index_name(name: str) -> None:
    problem = None
    if name != name.lower():
        problem = "must be lowercase"
    elif name.startswith(("_", "-", "+")):
        problem = "must not start with '_', '-', or '+'"
    elif any(c in _INVALID_INDEX_CHARS for c in name):
        problem = 'must not contain the following characters [ , ", *, \\, <, |, ,, >, /, ?]'
    elif name in (".", ".."):
        problem = "must not be '.' or '..'"
    if problem:
        raise EsError(
            400,
            "invalid_index_name_exception",
            f"Invalid index name [{name}], {problem}",
            extra={"index": name, "index_uuid": "_na_"},
        )


def _index_settings(body: Mapping[str, Any]) -> tuple[int, int]:
    settings = body.get("settings") or {}
    index_settings = settings.get("index", settings) if isinstance(settings, Mapping) else {}
    flat = (
        {k.removeprefix("index."): v for k, v in index_settings.items()} if isinstance(index_settings, Mapping) else {}
    )
    try:
        shards = int(flat.get("number_of_shards", 1))
        replicas = int(flat.get("number_of_replicas", 1))
    except (TypeError, ValueError):
        raise EsError(
            400, "illegal_argument_exception", "Failed to parse value for setting [index.number_of_shards]"
        ) from None
    if not 1 <= shards <= 1024:
        raise EsError(
            400,
            "illegal_argument_exception",
            f"Failed to parse value [{shards}] for setting [index.number_of_shards] must be >= 1",
        )
    if replicas < 0:
        raise EsError(
            400,
            "illegal_argument_exception",
            f"Failed to parse value [{replicas}] for setting [index.number_of_replicas] must be >= 0",
        )
    return shards, replicas


def run_master_action(node: DemoNode, action: str, payload: Mapping[str, Any]) -> int:
    """Apply one master action to the cluster state (this node must be the master); returns the new version."""
    now = int(time.time() * 1000)
    if action == "create_index":
        name = str(payload["index"])

        def create(state: ClusterState) -> ClusterState:
            if name in state.indices:
                raise EsError(
                    400,
                    "resource_already_exists_exception",
                    f"index [{name}/{state.indices[name].uuid}] already exists",
                    extra={"index_uuid": state.indices[name].uuid, "index": name},
                )
            meta = IndexMeta(name, _new_uuid(), int(payload["shards"]), int(payload["replicas"]), now)
            return routing.create_index(state, meta)

        return node.master_update(create)
    if action == "create_index_if_missing":
        names = [str(n) for n in payload["indices"]]

        def create_missing(state: ClusterState) -> ClusterState:
            for name in names:
                if name not in state.indices:
                    state = routing.create_index(state, IndexMeta(name, _new_uuid(), 1, 1, now))
            return state

        return node.master_update(create_missing)
    if action == "delete_index":
        names = [str(n) for n in payload["indices"]]

        def delete(state: ClusterState) -> ClusterState:
            for name in names:
                state = routing.delete_index(state, name)
            return state

        return node.master_update(delete)
    if action == "set_replicas":
        return node.master_update(
            lambda s: routing.set_replicas(s, str(payload["index"]), int(payload["replicas"]), now)
        )
    if action == "cluster_settings":

        def settings(state: ClusterState) -> ClusterState:
            try:
                return update_cluster_settings(state, payload.get("persistent") or {}, payload.get("transient") or {})
            except ClusterSettingsError as error:
                raise EsError(400, "illegal_argument_exception", str(error)) from None

        return node.master_update(settings)
    if action == "voting_exclusions_add":
        wanted = [str(n) for n in payload["node_names"]]

        def add(state: ClusterState) -> ClusterState:
            by_name = {n.name: n.node_id for n in state.nodes}
            current = list(state.voting_exclusions)
            for name in wanted:
                if name not in {n for _, n in current}:
                    current.append((by_name.get(name, "_absent_"), name))
            return replace(state, voting_exclusions=tuple(current))

        return node.master_update(add)
    if action == "voting_exclusions_clear":
        return node.master_update(lambda s: replace(s, voting_exclusions=()))
    if action in ("shard_started", "shard_failed"):
        index, shard, node_id = str(payload["index"]), int(payload["shard"]), str(payload["node_id"])

        def shard_event(state: ClusterState) -> ClusterState:
            meta = state.indices.get(index)
            if meta is None or meta.uuid != payload.get("index_uuid", meta.uuid):
                return state
            if action == "shard_started":
                return routing.shard_started(state, index, shard, node_id)
            logger.warning(
                "[%s] shard [%s][%s] on node [%s] failed: %s", node.name, index, shard, node_id, payload.get("reason")
            )
            return routing.shard_failed(state, index, shard, node_id, now)

        return node.master_update(shard_event)
    raise EsError(400, "illegal_argument_exception", f"unknown master action [{action}]")


def _new_uuid() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")[:22]


# ====================================================================== index resolution


def resolve(state: ClusterState, expression: str | None, *, allow_missing: bool = False) -> list[str]:
    """Index names for ``a,b``, ``logs-*``, ``_all`` or nothing (all); a missing concrete name is a 404."""
    if not expression or expression in ("_all", "*"):
        return sorted(state.indices)
    names: list[str] = []
    for raw in expression.split(","):
        part = raw.strip()
        if "*" in part or "?" in part:
            names.extend(n for n in sorted(state.indices) if fnmatch.fnmatchcase(n, part))
        elif part in state.indices:
            names.append(part)
        elif not allow_missing:
            raise index_not_found(part)
    return list(dict.fromkeys(names))


def _state(node: DemoNode) -> ClusterState:
    """This node's cluster state, waiting a little for the first one to arrive from the master."""
    state = node.current() or node.wait_for(lambda _: True, STATE_WAIT)
    if state is None:
        raise EsError(
            503, "cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];"
        )
    return state


# ====================================================================== indices


def create_index(node: DemoNode, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
    _validate_index_name(name)
    shards, replicas = _index_settings(body)
    node.master_action("create_index", {"index": name, "shards": shards, "replicas": replicas})
    started = _wait_primaries(node, [name], CREATE_WAIT)
    return {"acknowledged": True, "shards_acknowledged": started, "index": name}


def _wait_primaries(node: DemoNode, names: list[str], timeout: float) -> bool:
    def ready(state: ClusterState) -> bool:
        return all(n in state.indices and all(g.primary.active for g in state.groups(n)) for n in names)

    state = node.wait_for(ready, timeout)
    return state is not None and ready(state)


def delete_index(node: DemoNode, expression: str) -> dict[str, Any]:
    names = resolve(_state(node), expression)
    node.master_action("delete_index", {"indices": names})
    return {"acknowledged": True}


def get_index(node: DemoNode, expression: str) -> dict[str, Any]:
    state = _state(node)
    return {
        name: {
            "aliases": {},
            "mappings": {},
            "settings": {"index": _index_settings_doc(state.indices[name])},
        }
        for name in resolve(state, expression)
    }


def _index_settings_doc(meta: IndexMeta) -> dict[str, Any]:
    return {
        "number_of_shards": str(meta.number_of_shards),
        "number_of_replicas": str(meta.number_of_replicas),
        "uuid": meta.uuid,
        "creation_date": str(meta.creation_date),
        "provided_name": meta.name,
        "version": {"created": "8.x-demo"},
    }


def put_index_settings(node: DemoNode, expression: str, body: Mapping[str, Any]) -> dict[str, Any]:
    settings = body.get("index", body)
    flat = {k.removeprefix("index."): v for k, v in settings.items()} if isinstance(settings, Mapping) else {}
    unknown = [k for k in flat if k != "number_of_replicas"]
    if unknown:
        raise EsError(
            400,
            "illegal_argument_exception",
            f"the demo node can only update [index.number_of_replicas], not {unknown}",
        )
    for name in resolve(_state(node), expression):
        node.master_action("set_replicas", {"index": name, "replicas": int(flat["number_of_replicas"])})
    return {"acknowledged": True}


def ensure_indices(node: DemoNode, names: list[str]) -> None:
    """Auto-create missing indices on first write (one shard, one replica, like Elasticsearch 8's defaults)."""
    for name in names:
        _validate_index_name(name)
    state = _state(node)
    missing = [n for n in names if n not in state.indices]
    if missing:
        node.master_action("create_index_if_missing", {"indices": missing})
        _wait_primaries(node, missing, CREATE_WAIT)


# ====================================================================== writes


def _shards_info(total: int, successful: int) -> dict[str, int]:
    return {"total": total, "successful": successful, "failed": 0}


def write(node: DemoNode, items: list[BulkItem]) -> list[dict[str, Any]]:
    """Coordinate writes: every item's result in ``_bulk`` item form (``{"index": {...}}`` etc.)."""
    ensure_indices(node, sorted({item.index for item in items}))
    state = _state(node)
    results: list[dict[str, Any] | None] = [None] * len(items)
    batches: dict[tuple[str, int], list[tuple[int, Operation]]] = {}
    for position, item in enumerate(items):
        doc_id = item.doc_id if item.doc_id is not None else _new_uuid()[:20]
        if item.action != "delete" and item.source is None:
            error = EsError(400, "mapper_parsing_exception", "failed to parse")
            results[position] = {
                item.action: {"_index": item.index, "_id": doc_id, "status": 400, "error": error.item_error()}
            }
            continue
        meta = state.indices[item.index]
        shard = shard_for_id(doc_id, meta.number_of_shards)
        op = Operation("delete" if item.action == "delete" else "index", doc_id, item.source, item.action == "create")
        batches.setdefault((item.index, shard), []).append((position, op))
    for (index, shard), batch in sorted(batches.items()):
        answers = _send_to_primary(node, index, shard, [op for _, op in batch])
        for (position, op), answer in zip(batch, answers, strict=True):
            action = items[position].action
            results[position] = {action: {"_index": index, "_id": op.doc_id, **answer}}
    return [r for r in results if r is not None]


def _send_to_primary(node: DemoNode, index: str, shard: int, ops: list[Operation]) -> list[dict[str, Any]]:
    deadline = time.monotonic() + PRIMARY_WAIT
    last_error = f"[{index}][{shard}] primary shard is not active"
    while True:
        state = _state(node)
        meta = state.indices.get(index)
        if meta is None:
            error = index_not_found(index)
            return [{"status": 404, "error": error.item_error()} for _ in ops]
        group = state.shards[(index, shard)]
        primary = group.primary
        target = state.node(primary.node) if primary.active else None
        if target is not None:
            body = {"index": index, "ops": [op_to_json(op) for op in ops], "state_version": state.version}
            try:
                if target.node_id == node.node_id:
                    return primary_write(node, meta.uuid, shard, body)
                status, answer = _call(node, target.http, f"/_demo/shard/{meta.uuid}/{shard}/_write", body, timeout=30)
            except EsError as error:
                status, answer = error.status, error.body()
            except OSError as error:
                status, answer = 503, {"error": {"type": "node_not_connected_exception", "reason": str(error)}}
            if status == 200 and isinstance(answer, dict):
                results: list[dict[str, Any]] = answer["results"]
                return results
            last_error = f"[{index}][{shard}] primary on [{target.name}] answered {status}: {answer}"
        if time.monotonic() > deadline:
            unavailable = EsError(503, "unavailable_shards_exception", f"{last_error}. Timeout: [{PRIMARY_WAIT}s]")
            return [{"status": 503, "error": unavailable.item_error()} for _ in ops]
        node.wait_for_version(state.version + 1, timeout=0.2)


def _outcome_json(outcome: Outcome, copies: int, successful: int) -> dict[str, Any]:
    if outcome.error is not None:
        return {"status": outcome.status, "error": outcome.error.item_error()}
    answer: dict[str, Any] = {
        "result": outcome.result,
        "_shards": _shards_info(copies, successful),
        "status": outcome.status,
    }
    if outcome.doc is not None:
        answer |= {"_version": outcome.doc.version, "_seq_no": outcome.doc.seq_no, "_primary_term": 1}
    return answer


def _copy_targets(state: ClusterState, index: str, shard: int, me: str) -> list[str]:
    """Node ids of every other copy that must receive this primary's writes (started, initializing, relocating)."""
    group = state.shards[(index, shard)]
    targets = []
    for copy in group.copies:
        if copy.node and copy.node != me and copy.state != UNASSIGNED:
            targets.append(copy.node)
        if copy.relocating_node and copy.relocating_node != me:
            targets.append(copy.relocating_node)
    return targets


def primary_write(node: DemoNode, index_uuid: str, shard: int, body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Shard level, on the primary: apply the operations, then replicate them to every other copy."""
    index = str(body["index"])
    node.wait_for_version(int(body.get("state_version", 0)), timeout=2)
    store = node.store(index_uuid, shard)
    assert store is not None
    with store.lock:
        state = _state(node)
        meta = state.indices.get(index)
        group = state.shards.get((index, shard))
        if meta is None or meta.uuid != index_uuid or group is None:
            raise EsError(503, "demo_not_primary_exception", f"[{index}][{shard}] unknown here (retry)")
        primary = group.primary
        if not primary.active or primary.node != node.node_id:
            raise EsError(
                503, "demo_not_primary_exception", f"[{index}][{shard}] primary is not on [{node.name}] (retry)"
            )
        outcomes = [store.apply(op_from_json(op), index) for op in body["ops"]]
        store.save()
        docs = [doc_to_json(o.doc) for o in outcomes if o.doc is not None]
        targets = _copy_targets(state, index, shard, node.node_id)
        successful = 1
        for target_id in targets:
            target = state.node(target_id)
            ok = False
            if target is not None and docs:
                try:
                    status, answer = _call(
                        node,
                        target.http,
                        f"/_demo/shard/{index_uuid}/{shard}/_replicate",
                        {"index": index, "docs": docs, "primary": node.node_id, "state_version": state.version},
                    )
                except OSError as error:
                    status, answer = 503, str(error)
                if status == 409:
                    # The target knows a newer primary: this node's view is stale; the coordinator retries.
                    raise EsError(503, "demo_not_primary_exception", f"[{index}][{shard}] primary moved (retry)")
                ok = status == 200
                if not ok:
                    node.master_action(
                        "shard_failed",
                        {
                            "index": index,
                            "shard": shard,
                            "node_id": target_id,
                            "index_uuid": index_uuid,
                            "reason": f"replication answered {status}: {answer}",
                        },
                    )
            elif not docs:
                ok = True
            successful += ok
        copies = 1 + len(targets)
        return [_outcome_json(o, copies, successful) for o in outcomes]


def replicate(node: DemoNode, index_uuid: str, shard: int, body: Mapping[str, Any]) -> dict[str, Any]:
    """Shard level, on a replica or recovery target: take the primary's documents."""
    index = str(body["index"])
    state = node.current()
    if state is not None and state.version >= int(body.get("state_version", 0)):
        group = state.shards.get((index, shard))
        if group is not None and group.primary.active and group.primary.node != body.get("primary"):
            raise EsError(
                409,
                "demo_stale_primary_exception",
                f"[{index}][{shard}] has another primary in version {state.version}",
            )
    store = node.store(index_uuid, shard)
    assert store is not None
    with store.lock:
        store.merge(doc_from_json(d) for d in body["docs"])
        store.save()
    return {"ok": True}


def recovery_source(node: DemoNode, index_uuid: str, shard: int, body: Mapping[str, Any]) -> dict[str, Any]:
    """Shard level, on the primary: everything a new copy needs, once this node routes writes to it too."""
    index = str(body["index"])
    state = node.wait_for_version(int(body["state_version"]), timeout=5)
    if state is None or state.version < int(body["state_version"]):
        raise EsError(503, "demo_recovery_exception", "the recovery source has not seen the target's cluster state yet")
    store = node.store(index_uuid, shard)
    assert store is not None
    with store.lock:
        group = _state(node).shards.get((index, shard))
        if group is None or group.primary.node != node.node_id or not group.primary.active:
            raise EsError(503, "demo_recovery_exception", f"[{index}][{shard}] primary is not on [{node.name}]")
        if store.digest() == body.get("digest"):
            return {"up_to_date": True}
        return {"up_to_date": False, "docs": [doc_to_json(d) for d in store.docs.values()]}


# ====================================================================== reads


def shard_search(node: DemoNode, index_uuid: str, shard: int, body: Mapping[str, Any]) -> dict[str, Any]:
    """Shard level, on an active copy: matching documents (``limit`` of them) and their number."""
    index = str(body["index"])
    state = _state(node)
    group = state.shards.get((index, shard))
    if group is None or not any(c.node == node.node_id and c.state in ACTIVE_STATES for c in group.copies):
        raise EsError(
            503, "no_shard_available_action_exception", f"[{node.name}][{index}][{shard}] no active copy here"
        )
    store = node.store(index_uuid, shard)
    assert store is not None
    query = query_from_json(body["query"])
    with store.lock:
        total, hits = store.search(query, int(body.get("limit", 10)))
    return {"total": total, "hits": [doc_to_json(d) for d in hits]}


def _read_shard(node: DemoNode, index: str, shard: int, query: Query, limit: int) -> tuple[int, list[Doc]]:
    """Ask one active copy (this node's, else the primary, else any); retries while copies move."""
    deadline = time.monotonic() + 3
    last: EsError | None = None
    while True:
        state = _state(node)
        meta = state.indices.get(index)
        if meta is None:
            raise index_not_found(index)
        group = state.shards[(index, shard)]
        copies = [c for c in group.copies if c.state in ACTIVE_STATES and c.node]
        copies.sort(key=lambda c: (c.node != node.node_id, not c.primary))
        body = {"index": index, "query": query_to_json(query), "limit": limit}
        for copy in copies:
            target = state.node(copy.node)
            if target is None:
                continue
            try:
                if target.node_id == node.node_id:
                    answer = shard_search(node, meta.uuid, shard, body)
                else:
                    status, answer = _call(node, target.http, f"/_demo/shard/{meta.uuid}/{shard}/_search", body)
                    if status != 200:
                        raise EsError(
                            status, "no_shard_available_action_exception", f"[{target.name}] answered {status}"
                        )
                return int(answer["total"]), [doc_from_json(d) for d in answer["hits"]]
            except (EsError, OSError) as error:
                last = error if isinstance(error, EsError) else EsError(503, "node_not_connected_exception", str(error))
        if time.monotonic() > deadline:
            raise last or EsError(
                503, "no_shard_available_action_exception", f"[{index}][{shard}] no active copy of the shard"
            )
        node.wait_for_version(state.version + 1, timeout=0.2)


def _fan_out(
    node: DemoNode, names: list[str], query: Query, limit: int
) -> tuple[int, list[tuple[str, Doc]], dict[str, Any]]:
    state = _state(node)
    total = 0
    hits: list[tuple[str, Doc]] = []
    failures = []
    shards = 0
    for name in names:
        for number in range(state.indices[name].number_of_shards):
            shards += 1
            try:
                count, docs = _read_shard(node, name, number, query, limit)
            except EsError as error:
                failures.append({"shard": number, "index": name, "node": None, "reason": error.item_error()})
                continue
            total += count
            hits.extend((name, d) for d in docs)
    info: dict[str, Any] = {
        "total": shards,
        "successful": shards - len(failures),
        "skipped": 0,
        "failed": len(failures),
    }
    if failures:
        info["failures"] = failures
        if len(failures) == shards:
            raise EsError(
                503,
                "search_phase_execution_exception",
                "all shards failed",
                extra={"phase": "query", "grouped": True, "failed_shards": failures},
            )
    return total, hits, info


def _int_param(params: Mapping[str, str], body: Mapping[str, Any], key: str, default: int) -> int:
    raw = params.get(key, body.get(key, default))
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise EsError(
            400, "illegal_argument_exception", f"Failed to parse int parameter [{key}] with value [{raw}]"
        ) from None


def search(
    node: DemoNode, expression: str | None, body: Mapping[str, Any], params: Mapping[str, str]
) -> dict[str, Any]:
    started = time.monotonic()
    names = resolve(_state(node), expression)
    query = parse_query(body, params.get("q"))
    size = _int_param(params, body, "size", 10)
    start = _int_param(params, body, "from", 0)
    total, hits, info = _fan_out(node, names, query, start + size)
    hits.sort(key=lambda pair: (pair[0], pair[1].doc_id))
    page = hits[start : start + size]
    return {
        "took": int((time.monotonic() - started) * 1000),
        "timed_out": False,
        "_shards": info,
        "hits": {
            "total": {"value": total, "relation": "eq"},
            "max_score": 1.0 if page else None,
            "hits": [
                {"_index": name, "_id": d.doc_id, "_score": 1.0, "_source": d.source}
                | (
                    {"_version": d.version, "_seq_no": d.seq_no, "_primary_term": 1}
                    if params.get("seq_no_primary_term") == "true"
                    else {}
                )
                for name, d in page
            ],
        },
    }


def count(node: DemoNode, expression: str | None, body: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
    names = resolve(_state(node), expression)
    query = parse_query(body, params.get("q"))
    total, _, info = _fan_out(node, names, query, 0)
    return {"count": total, "_shards": info}


def get_doc(node: DemoNode, index: str, doc_id: str) -> tuple[int, dict[str, Any]]:
    state = _state(node)
    if index not in state.indices:
        raise index_not_found(index)
    shard = shard_for_id(doc_id, state.indices[index].number_of_shards)
    _, docs = _read_shard(node, index, shard, Query("ids", value=(doc_id,)), 1)
    if not docs:
        return 404, {"_index": index, "_id": doc_id, "found": False}
    doc = docs[0]
    return 200, {
        "_index": index,
        "_id": doc_id,
        "_version": doc.version,
        "_seq_no": doc.seq_no,
        "_primary_term": 1,
        "found": True,
        "_source": doc.source,
    }


def single_write(node: DemoNode, item: BulkItem) -> tuple[int, dict[str, Any]]:
    """``PUT /<index>/_doc/<id>`` and friends: one bulk item, answered in the single-document shape."""
    ((_, answer),) = write(node, [item])[0].items()
    status = int(answer.pop("status"))
    if "error" in answer:
        error = answer["error"]
        raise EsError(
            status,
            str(error["type"]),
            str(error["reason"]),
            extra={k: v for k, v in error.items() if k not in ("type", "reason")},
        )
    return status, answer


def refresh(node: DemoNode, expression: str | None) -> dict[str, Any]:
    state = _state(node)
    names = resolve(state, expression)
    shards = sum(len(g.copies) for n in names for g in state.groups(n))
    active = sum(1 for n in names for g in state.groups(n) for c in g.copies if c.active)
    return {"_shards": {"total": shards, "successful": active, "failed": 0}}


# ====================================================================== stats and _cat


def local_shard_stats(node: DemoNode) -> dict[str, Any]:
    """Internal: ``{"<index uuid>/<shard>": {docs, deleted, size}}`` for every copy on this node."""
    result = {}
    root = node.data_path / "indices"
    for index_dir in sorted(root.iterdir()) if root.is_dir() else []:
        for shard_dir in sorted(index_dir.iterdir()) if index_dir.is_dir() else []:
            if not shard_dir.name.isdigit():
                continue
            store = node.store(index_dir.name, int(shard_dir.name), create=False)
            if store is None:
                continue
            with store.lock:
                result[f"{index_dir.name}/{shard_dir.name}"] = {
                    "docs": store.live_docs(),
                    "deleted": store.deleted_docs(),
                    "size": store.size_in_bytes(),
                }
    return result


def _all_stats(node: DemoNode, state: ClusterState) -> dict[str, dict[str, Any]]:
    """Node id → its local shard stats (nodes that do not answer are left out)."""
    stats: dict[str, dict[str, Any]] = {}
    for info in state.nodes:
        if info.node_id == node.node_id:
            stats[info.node_id] = local_shard_stats(node)
            continue
        try:
            status, answer = _call(node, info.http, "/_demo/shard_stats", {}, timeout=3)
        except OSError:
            continue
        if status == 200 and isinstance(answer, dict):
            stats[info.node_id] = answer
    return stats


def _size(size: int) -> str:
    if size < 1024:
        return f"{size}b"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f}kb"
    return f"{size / (1024 * 1024):.1f}mb"


def cat_indices(node: DemoNode, expression: str | None) -> list[dict[str, str]]:
    state = _state(node)
    stats = _all_stats(node, state)
    rows = []
    for name in resolve(state, expression):
        meta = state.indices[name]
        docs = deleted = size = primary_size = 0
        for group in state.groups(name):
            for copy in group.copies:
                entry = stats.get(copy.node or "", {}).get(f"{meta.uuid}/{group.shard}") if copy.active else None
                if entry is None:
                    continue
                size += entry["size"]
                if copy.primary:
                    docs += entry["docs"]
                    deleted += entry["deleted"]
                    primary_size += entry["size"]
        rows.append(
            {
                "health": routing.index_health(state, name),
                "status": "open",
                "index": name,
                "uuid": meta.uuid,
                "pri": str(meta.number_of_shards),
                "rep": str(meta.number_of_replicas),
                "docs.count": str(docs),
                "docs.deleted": str(deleted),
                "store.size": _size(size),
                "pri.store.size": _size(primary_size),
            }
        )
    return rows


def cat_shards(node: DemoNode, expression: str | None) -> list[dict[str, str | None]]:
    state = _state(node)
    stats = _all_stats(node, state)
    rows: list[dict[str, str | None]] = []
    for name in resolve(state, expression):
        meta = state.indices[name]
        for group in state.groups(name):
            for copy in sorted(group.copies, key=lambda c: not c.primary):
                info = state.node(copy.node)
                entry = (
                    stats.get(copy.node or "", {}).get(f"{meta.uuid}/{group.shard}")
                    if copy.state != UNASSIGNED
                    else None
                )
                node_text = info.name if info else None
                if copy.state == RELOCATING and copy.relocating_node:
                    target = state.node(copy.relocating_node)
                    host = target.transport.rpartition(":")[0] if target else "?"
                    node_text = f"{node_text} -> {host} {copy.relocating_node} {target.name if target else '?'}"
                rows.append(
                    {
                        "index": name,
                        "shard": str(group.shard),
                        "prirep": "p" if copy.primary else "r",
                        "state": copy.state,
                        "docs": str(entry["docs"]) if entry else None,
                        "store": _size(entry["size"]) if entry else None,
                        "ip": info.transport.rpartition(":")[0] if info else None,
                        "node": node_text,
                        "unassigned.reason": copy.unassigned_reason if copy.state == UNASSIGNED else None,
                    }
                )
    return rows


def shard_counts(state: ClusterState) -> dict[str, int]:
    """Node id → copies it holds (a relocation counts on its source until it finishes)."""
    counts = {n.node_id: 0 for n in state.nodes if n.is_data}
    for group in state.shards.values():
        for copy in group.copies:
            if copy.node and copy.state != UNASSIGNED:
                counts[copy.node] = counts.get(copy.node, 0) + 1
    return counts


def cat_allocation(node: DemoNode) -> list[dict[str, str | None]]:
    state = _state(node)
    counts = shard_counts(state)
    rows: list[dict[str, str | None]] = []
    for info in sorted(state.nodes, key=lambda n: n.name):
        if not info.is_data:
            continue
        host = info.transport.rpartition(":")[0]
        rows.append({"shards": str(counts.get(info.node_id, 0)), "host": host, "ip": host, "node": info.name})
    unassigned = sum(1 for g in state.shards.values() for c in g.copies if c.state == UNASSIGNED)
    if unassigned:
        rows.append({"shards": str(unassigned), "host": None, "ip": None, "node": "UNASSIGNED"})
    return rows


def cat_nodes(node: DemoNode) -> list[dict[str, str | None]]:
    master = node.master_peer()
    rows: list[dict[str, str | None]] = []
    for info in sorted(node.members(), key=lambda n: n.name):
        letters = {"master": "m", "data": "d", "ingest": "i", "ml": "l", "remote_cluster_client": "r", "transform": "t"}
        rows.append(
            {
                "ip": info.transport.rpartition(":")[0],
                "node.role": "".join(sorted(letters.get(r, "") for r in info.roles)) or "-",
                "master": "*" if master is not None and master.node_id == info.node_id else "-",
                "name": info.name,
                "id": info.node_id,
            }
        )
    return rows


def cat_master(node: DemoNode) -> list[dict[str, str | None]]:
    master = node.master_peer()
    if master is None:
        raise EsError(503, "master_not_discovered_exception", "no master discovered by the demo node")
    host = master.transport.rpartition(":")[0]
    return [{"id": master.node_id, "host": host, "ip": host, "node": master.name}]


def cat_health(node: DemoNode) -> list[dict[str, str | None]]:
    _, health = cluster_health(node, None, {})
    return [
        {
            "epoch": str(int(time.time())),
            "cluster": health["cluster_name"],
            "status": health["status"],
            "node.total": str(health["number_of_nodes"]),
            "node.data": str(health["number_of_data_nodes"]),
            "shards": str(health["active_shards"]),
            "pri": str(health["active_primary_shards"]),
            "relo": str(health["relocating_shards"]),
            "init": str(health["initializing_shards"]),
            "unassign": str(health["unassigned_shards"]),
        }
    ]


def nodes_stats(node: DemoNode) -> dict[str, Any]:
    state = _state(node)
    counts = shard_counts(state)
    stats = _all_stats(node, state)
    entries = {}
    for info in state.nodes:
        local = stats.get(info.node_id, {})
        entries[info.node_id] = {
            "name": info.name,
            "transport_address": info.transport,
            "host": info.transport.rpartition(":")[0],
            "roles": list(info.roles),
            "indices": {
                "docs": {
                    "count": sum(e["docs"] for e in local.values()),
                    "deleted": sum(e["deleted"] for e in local.values()),
                },
                "store": {"size_in_bytes": sum(e["size"] for e in local.values())},
                "shard_stats": {"total_count": counts.get(info.node_id, 0)},
            },
        }
    total = len(entries)
    return {
        "_nodes": {"total": total, "successful": len(stats), "failed": total - len(stats)},
        "cluster_name": node.cluster_name,
        "nodes": entries,
    }


# ====================================================================== cluster APIs


def _health_document(node: DemoNode, state: ClusterState | None, names: list[str] | None) -> dict[str, Any]:
    members = node.members()
    shard_health = (
        routing.health(state, names) if state is not None else routing.health(ClusterState(cluster_uuid=""), [])
    )
    return {
        "cluster_name": node.cluster_name,
        "status": shard_health["status"],
        "timed_out": False,
        "number_of_nodes": len(members),
        "number_of_data_nodes": sum(1 for n in members if n.is_data),
        "active_primary_shards": shard_health["active_primary_shards"],
        "active_shards": shard_health["active_shards"],
        "relocating_shards": shard_health["relocating_shards"],
        "initializing_shards": shard_health["initializing_shards"],
        "unassigned_shards": shard_health["unassigned_shards"],
        "delayed_unassigned_shards": 0,
        "number_of_pending_tasks": 0,
        "number_of_in_flight_fetch": 0,
        "task_max_waiting_in_queue_millis": 0,
        "active_shards_percent_as_number": shard_health["active_shards_percent_as_number"],
    }


def parse_time(text: str | None, default: float) -> float:
    """Elasticsearch time values (``30s``, ``500ms``, ``1m``) in seconds."""
    if not text:
        return default
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|nanos|micros)?", text.strip())
    if match is None:
        raise EsError(
            400, "illegal_argument_exception", f"failed to parse setting [timeout] with value [{text}] as a time value"
        )
    value = float(match.group(1))
    factor = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "nanos": 1e-9, "micros": 1e-6, None: 1}[
        match.group(2)
    ]
    return value * factor


_STATUS_ORDER = {"green": 0, "yellow": 1, "red": 2}


def cluster_health(node: DemoNode, expression: str | None, params: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
    if node.state.cluster_uuid is None:
        raise EsError(503, "master_not_discovered_exception", "no master discovered by the demo node")
    timeout = parse_time(params.get("timeout"), 30.0)
    deadline = time.monotonic() + timeout
    # Like Elasticsearch, wait (up to ``timeout``) for a master and for the state it publishes.
    while node.master_peer() is None or node.current() is None:
        if time.monotonic() > deadline:
            raise EsError(503, "master_not_discovered_exception", "no master discovered by the demo node")
        node.wait_for(lambda _: True, min(0.1, max(0.0, deadline - time.monotonic())))

    def document() -> dict[str, Any]:
        state = node.current()
        names = resolve(state, expression) if state is not None and expression else None
        if state is not None and names is None:
            names = list(state.indices)
        return _health_document(node, state, names)

    def satisfied(doc: dict[str, Any]) -> bool:
        wanted_status = params.get("wait_for_status")
        if wanted_status and _STATUS_ORDER[doc["status"]] > _STATUS_ORDER.get(wanted_status, 0):
            return False
        if params.get("wait_for_no_relocating_shards") == "true" and doc["relocating_shards"]:
            return False
        if params.get("wait_for_no_initializing_shards") == "true" and doc["initializing_shards"]:
            return False
        wanted_nodes = params.get("wait_for_nodes")
        if wanted_nodes:
            match = re.fullmatch(r"(>=|<=|>|<|ge\(|le\(|gt\(|lt\()?(\d+)\)?", wanted_nodes)
            if match is None:
                raise EsError(400, "illegal_argument_exception", f"cannot parse wait_for_nodes [{wanted_nodes}]")
            op, number, have = match.group(1) or "", int(match.group(2)), doc["number_of_nodes"]
            checks = {
                "": have == number,
                ">=": have >= number,
                "ge(": have >= number,
                "<=": have <= number,
                "le(": have <= number,
                ">": have > number,
                "gt(": have > number,
                "<": have < number,
                "lt(": have < number,
            }
            if not checks[op]:
                return False
        return True

    waiting = any(k.startswith("wait_for_") for k in params)
    while True:
        doc = document()
        if satisfied(doc) or not waiting:
            return 200, doc
        if time.monotonic() > deadline:
            doc["timed_out"] = True
            return 408, doc
        time.sleep(0.05)


def get_cluster_settings(node: DemoNode, params: Mapping[str, str]) -> dict[str, Any]:
    state = _state(node)
    flat = params.get("flat_settings") == "true"
    persistent, transient = dict(state.persistent), dict(state.transient)
    return {
        "persistent": persistent if flat else nest_settings(persistent),
        "transient": transient if flat else nest_settings(transient),
    }


def put_cluster_settings(node: DemoNode, body: Mapping[str, Any]) -> dict[str, Any]:
    unknown = [k for k in body if k not in ("persistent", "transient")]
    if unknown:
        raise EsError(400, "action_request_validation_exception", f"Validation Failed: 1: unknown section {unknown};")
    if not body.get("persistent") and not body.get("transient"):
        raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: no settings to update;")
    node.master_action(
        "cluster_settings", {"persistent": body.get("persistent") or {}, "transient": body.get("transient") or {}}
    )
    return {
        "acknowledged": True,
        "persistent": nest_settings(
            {k: v for k, v in flatten_settings(body.get("persistent") or {}).items() if v is not None}
        ),
        "transient": nest_settings(
            {k: v for k, v in flatten_settings(body.get("transient") or {}).items() if v is not None}
        ),
    }


def allocation_explain(node: DemoNode, body: Mapping[str, Any]) -> dict[str, Any]:
    state = _state(node)
    if not body:
        first = routing.first_unassigned(state)
        if first is None:
            raise EsError(
                400,
                "illegal_argument_exception",
                "There are no unassigned shards in this cluster. Specify an assigned shard in the request body to "
                "explain its allocation.",
            )
        index, shard, primary = first
    else:
        missing = [k for k in ("index", "shard", "primary") if k not in body]
        if missing:
            raise EsError(
                400,
                "illegal_argument_exception",
                f"the demo node needs [index], [shard] and [primary] in the body, missing {missing}",
            )
        index, shard, primary = str(body["index"]), int(body["shard"]), bool(body["primary"])
        if index not in state.indices:
            raise index_not_found(index)
    try:
        return routing.explain(state, index, shard, primary)
    except routing.ExplainError as error:
        raise EsError(400, "illegal_argument_exception", str(error)) from None


def add_voting_exclusions(node: DemoNode, params: Mapping[str, str]) -> None:
    names = [n.strip() for n in params.get("node_names", "").split(",") if n.strip()]
    ids = [n.strip() for n in params.get("node_ids", "").split(",") if n.strip()]
    if bool(names) == bool(ids):
        raise EsError(400, "illegal_argument_exception", "You must set [node_names] or [node_ids] but not both")
    if ids:
        state = _state(node)
        by_id = {n.node_id: n.name for n in state.nodes}
        names = [by_id.get(i, i) for i in ids]
    node.master_action("voting_exclusions_add", {"node_names": names})


def clear_voting_exclusions(node: DemoNode, params: Mapping[str, str]) -> None:
    if params.get("wait_for_removal", "true") == "true":
        timeout = parse_time(params.get("master_timeout") or params.get("timeout"), 30.0)

        def removed(state: ClusterState) -> bool:
            present = {n.node_id for n in state.nodes}
            return not any(node_id in present for node_id, _ in state.voting_exclusions)

        state = node.wait_for(removed, timeout)
        if state is None or not removed(state):
            raise EsError(
                503,
                "elasticsearch_timeout_exception",
                "timed out waiting for removal of nodes; if nodes should not be removed, set [wait_for_removal] to "
                "false. " + str([name for _, name in (state.voting_exclusions if state else ())]),
            )
    node.master_action("voting_exclusions_clear", {})


def cluster_state(node: DemoNode, metrics: str | None) -> dict[str, Any]:
    state = _state(node)
    wanted = set((metrics or "_all").split(","))
    everything = "_all" in wanted
    document: dict[str, Any] = {"cluster_name": node.cluster_name, "cluster_uuid": state.cluster_uuid}
    if everything or "version" in wanted:
        document["version"] = state.version
        document["state_uuid"] = f"{state.cluster_uuid}-{state.version}"
    if everything or "master_node" in wanted:
        document["master_node"] = state.master
    if everything or "nodes" in wanted:
        document["nodes"] = {
            n.node_id: {"name": n.name, "transport_address": n.transport, "roles": list(n.roles)} for n in state.nodes
        }
    if everything or "metadata" in wanted:
        document["metadata"] = {
            "cluster_uuid": state.cluster_uuid,
            "cluster_uuid_committed": True,
            "cluster_coordination": {
                "term": 1,
                "last_committed_config": list(state.voting_config),
                "last_accepted_config": list(state.voting_config),
                "voting_config_exclusions": [{"node_id": i, "node_name": n} for i, n in state.voting_exclusions],
            },
            "persistent_settings": nest_settings(dict(state.persistent)),
            "transient_settings": nest_settings(dict(state.transient)),
            "indices": {
                name: {"state": "open", "settings": {"index": _index_settings_doc(meta)}, "mappings": {}, "aliases": []}
                for name, meta in state.indices.items()
            },
        }
    if everything or "routing_table" in wanted:
        document["routing_table"] = {
            "indices": {
                name: {
                    "shards": {
                        str(g.shard): [
                            {
                                "state": c.state,
                                "primary": c.primary,
                                "node": c.node,
                                "relocating_node": c.relocating_node,
                                "shard": g.shard,
                                "index": name,
                            }
                            for c in g.copies
                        ]
                        for g in state.groups(name)
                    }
                }
                for name in state.indices
            }
        }
    return document
