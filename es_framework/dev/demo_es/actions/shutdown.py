"""The node shutdown API of the demo node (development tool, not Elasticsearch): ``PUT|GET|DELETE
/_nodes/<node_id>/shutdown`` and ``GET /_nodes/shutdown``. What each answers, and why, is in
:mod:`es_framework.dev.demo_es.shutdown`; changes go through the master and are acknowledged once every node
has them, as Elasticsearch's acknowledged requests are.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from es_framework.dev.demo_es import shutdown
from es_framework.dev.demo_es.actions.common import current_state
from es_framework.dev.demo_es.node_api import NodeAPI
from es_framework.dev.demo_es.version import parse_version


def put_shutdown(node: NodeAPI, node_id: str, raw: bytes) -> dict[str, Any]:
    record = shutdown.parse_put(node_id, raw, int(time.time() * 1000))
    node.master_action("shutdown_put", {"record": asdict(record)})
    return {"acknowledged": True}


def get_shutdown(node: NodeAPI, node_ids: str | None, params: Mapping[str, str]) -> dict[str, Any]:
    state = current_state(node)
    wanted = [i.strip() for i in node_ids.split(",") if i.strip()] if node_ids else None
    version = parse_version(node.version)
    records = (
        list(state.shutdowns.values())
        if wanted is None
        else [state.shutdowns[i] for i in dict.fromkeys(wanted) if i in state.shutdowns]
    )
    return {"nodes": [shutdown.node_status(state, record, version, params) for record in records]}


def delete_shutdown(node: NodeAPI, node_id: str) -> dict[str, Any]:
    state = current_state(node)
    # Checked here as Elasticsearch's transport action does before it submits the change (the master checks again).
    shutdown.delete(state, node_id)
    node.master_action("shutdown_delete", {"node_id": node_id})
    return {"acknowledged": True}
