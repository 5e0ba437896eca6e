"""Reads through any demo node (development tool, not Elasticsearch): ``_search``, ``_count``, ``GET
/<index>/_doc/<id>`` and ``_refresh``.

Each shard is asked on one active copy (this node's, else the primary, else any), retrying while
copies move; a shard without an active copy is reported in ``_shards.failures`` (503
``search_phase_execution_exception`` when every shard fails). Hits are ordered by index and ``_id``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from es_framework.dev.demo_es.actions.common import current_state, int_param, post, resolve
from es_framework.dev.demo_es.actions.shards import shard_search
from es_framework.dev.demo_es.cluster_state import ACTIVE_STATES
from es_framework.dev.demo_es.documents import Doc, Query, doc_from_json, parse_query, query_to_json, shard_for_id
from es_framework.dev.demo_es.errors import EsError, index_not_found
from es_framework.dev.demo_es.node_api import NodeAPI


def _read_shard(node: NodeAPI, index: str, shard: int, query: Query, limit: int) -> tuple[int, list[Doc]]:
    """Ask one active copy (this node's, else the primary, else any); retries while copies move."""
    deadline = time.monotonic() + 3
    last: EsError | None = None
    while True:
        state = current_state(node)
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
                    status, answer = post(target, f"/_demo/shard/{meta.uuid}/{shard}/_search", body)
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
    node: NodeAPI, names: list[str], query: Query, limit: int
) -> tuple[int, list[tuple[str, Doc]], dict[str, Any]]:
    state = current_state(node)
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


def search(node: NodeAPI, expression: str | None, body: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
    started = time.monotonic()
    names = resolve(current_state(node), expression)
    query = parse_query(body, params.get("q"))
    size = int_param(params, body, "size", 10)
    start = int_param(params, body, "from", 0)
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


def count(node: NodeAPI, expression: str | None, body: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
    names = resolve(current_state(node), expression)
    query = parse_query(body, params.get("q"))
    total, _, info = _fan_out(node, names, query, 0)
    return {"count": total, "_shards": info}


def get_doc(node: NodeAPI, index: str, doc_id: str) -> tuple[int, dict[str, Any]]:
    state = current_state(node)
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


def refresh(node: NodeAPI, expression: str | None) -> dict[str, Any]:
    state = current_state(node)
    names = resolve(state, expression)
    shards = sum(len(g.copies) for n in names for g in state.groups(n))
    active = sum(1 for n in names for g in state.groups(n) for c in g.copies if c.active)
    return {"_shards": {"total": shards, "successful": active, "failed": 0}}
