"""Shard-level operations of the demo node (development tool, not Elasticsearch): what the node holding
a shard copy does, reached over the internal ``/_demo/shard/<index uuid>/<shard>/...`` endpoints.

The primary applies writes and replicates them to every other assigned copy (a copy that misses one
is reported failed to the master before the write is acknowledged; a copy that knows a newer primary
refuses, and the coordinating node retries); copies answer searches; the primary is the source of
recoveries. ``/_demo/shard_stats`` reports this node's copies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from es_framework.dev.demo_es.actions.common import current_state, post
from es_framework.dev.demo_es.cluster_state import ACTIVE_STATES, UNASSIGNED, DemoClusterState
from es_framework.dev.demo_es.documents import Outcome, doc_from_json, doc_to_json, op_from_json, query_from_json
from es_framework.dev.demo_es.errors import EsError
from es_framework.dev.demo_es.node_api import NodeAPI


def _shards_info(total: int, successful: int) -> dict[str, int]:
    return {"total": total, "successful": successful, "failed": 0}


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


def _copy_targets(state: DemoClusterState, index: str, shard: int, me: str) -> list[str]:
    """Node ids of every other copy that must receive this primary's writes (started, initializing, relocating)."""
    group = state.shards[(index, shard)]
    targets = []
    for copy in group.copies:
        if copy.node and copy.node != me and copy.state != UNASSIGNED:
            targets.append(copy.node)
        if copy.relocating_node and copy.relocating_node != me:
            targets.append(copy.relocating_node)
    return targets


def primary_write(node: NodeAPI, index_uuid: str, shard: int, body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Shard level, on the primary: apply the operations, then replicate them to every other copy."""
    index = str(body["index"])
    node.wait_for_version(int(body.get("state_version", 0)), timeout=2)
    store = node.store(index_uuid, shard)
    assert store is not None
    with store.lock:
        state = current_state(node)
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
                    status, answer = post(
                        target,
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


def replicate(node: NodeAPI, index_uuid: str, shard: int, body: Mapping[str, Any]) -> dict[str, Any]:
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


def recovery_source(node: NodeAPI, index_uuid: str, shard: int, body: Mapping[str, Any]) -> dict[str, Any]:
    """Shard level, on the primary: everything a new copy needs, once this node routes writes to it too."""
    index = str(body["index"])
    state = node.wait_for_version(int(body["state_version"]), timeout=5)
    if state is None or state.version < int(body["state_version"]):
        raise EsError(503, "demo_recovery_exception", "the recovery source has not seen the target's cluster state yet")
    store = node.store(index_uuid, shard)
    assert store is not None
    with store.lock:
        group = current_state(node).shards.get((index, shard))
        if group is None or group.primary.node != node.node_id or not group.primary.active:
            raise EsError(503, "demo_recovery_exception", f"[{index}][{shard}] primary is not on [{node.name}]")
        if store.digest() == body.get("digest"):
            return {"up_to_date": True}
        return {"up_to_date": False, "docs": [doc_to_json(d) for d in store.docs.values()]}


def shard_search(node: NodeAPI, index_uuid: str, shard: int, body: Mapping[str, Any]) -> dict[str, Any]:
    """Shard level, on an active copy: matching documents (``limit`` of them) and their number."""
    index = str(body["index"])
    state = current_state(node)
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


def local_shard_stats(node: NodeAPI) -> dict[str, Any]:
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
