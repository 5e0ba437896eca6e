"""Writes through any demo node (development tool, not Elasticsearch): ``_bulk`` and the single-document APIs.

The coordinating node creates missing indices, groups the operations by shard and sends each group to
the node holding the shard's primary (retrying while the primary moves, up to ``PRIMARY_WAIT``), and
answers in ``_bulk`` item form.
"""

from __future__ import annotations

import time
from typing import Any

from es_framework.dev.demo_es.actions.common import current_state, post
from es_framework.dev.demo_es.actions.indices import ensure_indices
from es_framework.dev.demo_es.actions.shards import primary_write
from es_framework.dev.demo_es.documents import BulkItem, Operation, op_to_json, shard_for_id
from es_framework.dev.demo_es.errors import EsError, index_not_found
from es_framework.dev.demo_es.master_actions import new_uuid
from es_framework.dev.demo_es.node_api import NodeAPI

#: How long a write waits for its shard's primary to be active (Elasticsearch waits a minute by default).
PRIMARY_WAIT = 15.0


def write(node: NodeAPI, items: list[BulkItem]) -> list[dict[str, Any]]:
    """Coordinate writes: every item's result in ``_bulk`` item form (``{"index": {...}}`` etc.)."""
    ensure_indices(node, sorted({item.index for item in items}))
    state = current_state(node)
    results: list[dict[str, Any] | None] = [None] * len(items)
    batches: dict[tuple[str, int], list[tuple[int, Operation]]] = {}
    for position, item in enumerate(items):
        doc_id = item.doc_id if item.doc_id is not None else new_uuid()[:20]
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


def _send_to_primary(node: NodeAPI, index: str, shard: int, ops: list[Operation]) -> list[dict[str, Any]]:
    deadline = time.monotonic() + PRIMARY_WAIT
    last_error = f"[{index}][{shard}] primary shard is not active"
    while True:
        state = current_state(node)
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
                status, answer = post(target, f"/_demo/shard/{meta.uuid}/{shard}/_write", body, timeout=30)
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


def single_write(node: NodeAPI, item: BulkItem) -> tuple[int, dict[str, Any]]:
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
