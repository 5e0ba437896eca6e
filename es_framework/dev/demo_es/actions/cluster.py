"""Cluster-level APIs of the demo node (development tool, not Elasticsearch): ``GET /``, ``GET /_nodes``,
``/_cluster/health``, ``/_cluster/settings`` and ``/_cluster/state``.

Health waits (up to ``timeout``) for a master and its state, then for the ``wait_for_*`` conditions
(408 with ``timed_out: true`` when they are not met). Cluster settings go through the master
(:mod:`~es_framework.dev.demo_es.master_actions`), which refuses what Elasticsearch refuses.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from es_framework.dev.demo_es.actions.common import current_state, parse_time, resolve
from es_framework.dev.demo_es.actions.indices import index_settings_doc
from es_framework.dev.demo_es.cluster_state import DemoClusterState, flatten_settings, nest_settings
from es_framework.dev.demo_es.errors import EsError
from es_framework.dev.demo_es.health import health
from es_framework.dev.demo_es.node_api import NodeAPI
from es_framework.dev.demo_es.version import TAGLINE, parse_version

_STATUS_ORDER = {"green": 0, "yellow": 1, "red": 2}


def root(node: NodeAPI) -> dict[str, Any]:
    """``GET /``: the version the node plays and its compatibility bounds (see :mod:`...version`)."""
    version = parse_version(node.version)
    return {
        "name": node.name,
        "cluster_name": node.cluster_name,
        "cluster_uuid": node.cluster_uuid or "_na_",
        "version": {
            "number": node.version,
            "build_flavor": "demo",
            "build_type": "es-mesos-demo",
            "lucene_version": "none",
            "minimum_wire_compatibility_version": str(version.minimum_wire_compatibility),
            "minimum_index_compatibility_version": version.minimum_index_compatibility,
        },
        "tagline": TAGLINE,
    }


def nodes(node: NodeAPI) -> dict[str, Any]:
    """``GET /_nodes``: this node and every member it reaches."""
    entries = {}
    for member in node.members():
        host = member.transport.rpartition(":")[0]
        entries[member.node_id] = {
            "name": member.name,
            "transport_address": member.transport,
            "host": host,
            "ip": host,
            "version": member.version,
            "roles": list(member.roles),
            "http": {"publish_address": member.http},
        }
    total = len(entries)
    return {
        "_nodes": {"total": total, "successful": total, "failed": 0},
        "cluster_name": node.cluster_name,
        "nodes": entries,
    }


def _health_document(node: NodeAPI, state: DemoClusterState | None, names: list[str] | None) -> dict[str, Any]:
    members = node.members()
    shard_health = health(state, names) if state is not None else health(DemoClusterState(cluster_uuid=""), [])
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


def cluster_health(node: NodeAPI, expression: str | None, params: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
    if node.cluster_uuid is None:
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


def get_cluster_settings(node: NodeAPI, params: Mapping[str, str]) -> dict[str, Any]:
    state = current_state(node)
    flat = params.get("flat_settings") == "true"
    persistent, transient = dict(state.persistent), dict(state.transient)
    return {
        "persistent": persistent if flat else nest_settings(persistent),
        "transient": transient if flat else nest_settings(transient),
    }


def put_cluster_settings(node: NodeAPI, body: Mapping[str, Any]) -> dict[str, Any]:
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


def cluster_state(node: NodeAPI, metrics: str | None) -> dict[str, Any]:
    state = current_state(node)
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
            n.node_id: {"name": n.name, "transport_address": n.transport, "roles": list(n.roles), "version": n.version}
            for n in state.nodes
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
                name: {"state": "open", "settings": {"index": index_settings_doc(meta)}, "mappings": {}, "aliases": []}
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
