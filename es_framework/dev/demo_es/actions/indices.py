"""Index APIs of the demo node (development tool, not Elasticsearch): ``PUT|DELETE|GET /<index>``,
``GET|PUT /<index>/_settings``, and the creation of missing indices on first write.

Index names are checked as Elasticsearch 8 checks them; ``number_of_shards`` (default 1, at most
1024) and ``number_of_replicas`` (default 1) come from the body's ``settings``; only
``number_of_replicas`` can change later. Creating an index waits for its primaries to start.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from es_framework.dev.demo_es.actions.common import current_state, resolve
from es_framework.dev.demo_es.cluster_state import DemoClusterState, IndexMeta
from es_framework.dev.demo_es.errors import EsError
from es_framework.dev.demo_es.node_api import NodeAPI
from es_framework.dev.demo_es.version import DEMO_VERSION

CREATE_WAIT = 30.0
_INVALID_INDEX_CHARS = set('\\/*?"<>| ,#:')


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


def create_index(node: NodeAPI, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
    _validate_index_name(name)
    shards, replicas = _index_settings(body)
    node.master_action("create_index", {"index": name, "shards": shards, "replicas": replicas})
    started = _wait_primaries(node, [name], CREATE_WAIT)
    return {"acknowledged": True, "shards_acknowledged": started, "index": name}


def _wait_primaries(node: NodeAPI, names: list[str], timeout: float) -> bool:
    def ready(state: DemoClusterState) -> bool:
        return all(n in state.indices and all(g.primary.active for g in state.groups(n)) for n in names)

    state = node.wait_for(ready, timeout)
    return state is not None and ready(state)


def delete_index(node: NodeAPI, expression: str) -> dict[str, Any]:
    names = resolve(current_state(node), expression)
    node.master_action("delete_index", {"indices": names})
    return {"acknowledged": True}


def get_index(node: NodeAPI, expression: str) -> dict[str, Any]:
    state = current_state(node)
    return {
        name: {
            "aliases": {},
            "mappings": {},
            "settings": {"index": index_settings_doc(state.indices[name])},
        }
        for name in resolve(state, expression)
    }


def index_settings_doc(meta: IndexMeta) -> dict[str, Any]:
    return {
        "number_of_shards": str(meta.number_of_shards),
        "number_of_replicas": str(meta.number_of_replicas),
        "uuid": meta.uuid,
        "creation_date": str(meta.creation_date),
        "provided_name": meta.name,
        "version": {"created": DEMO_VERSION},
    }


def put_index_settings(node: NodeAPI, expression: str, body: Mapping[str, Any]) -> dict[str, Any]:
    settings = body.get("index", body)
    flat = {k.removeprefix("index."): v for k, v in settings.items()} if isinstance(settings, Mapping) else {}
    unknown = [k for k in flat if k != "number_of_replicas"]
    if unknown:
        raise EsError(
            400,
            "illegal_argument_exception",
            f"the demo node can only update [index.number_of_replicas], not {unknown}",
        )
    for name in resolve(current_state(node), expression):
        node.master_action("set_replicas", {"index": name, "replicas": int(flat["number_of_replicas"])})
    return {"acknowledged": True}


def ensure_indices(node: NodeAPI, names: list[str]) -> None:
    """Auto-create missing indices on first write (one shard, one replica, like Elasticsearch 8's defaults)."""
    for name in names:
        _validate_index_name(name)
    state = current_state(node)
    missing = [n for n in names if n not in state.indices]
    if missing:
        node.master_action("create_index_if_missing", {"indices": missing})
        _wait_primaries(node, missing, CREATE_WAIT)
