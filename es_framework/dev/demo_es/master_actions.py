"""What the demo master does for each master action (development tool, not Elasticsearch).

Pure: :func:`master_change` turns an action and its payload into a change of the cluster state;
the master (:meth:`~es_framework.dev.demo_es.publication.PublishingNode.master_update`) applies it,
reroutes, commits and publishes. The actions are index creation (``create_index``,
``create_index_if_missing``) and deletion (``delete_index``), the number of replicas
(``set_replicas``), cluster settings (``cluster_settings``), voting configuration exclusions
(``voting_exclusions_add``, ``voting_exclusions_clear``), node shutdowns (``shutdown_put``, ``shutdown_delete``,
see :mod:`.shutdown`), the ``elastic`` user's password hash (``elastic_password``, see :mod:`.security`), and
the shard events data nodes report
(``shard_started``, ``shard_failed``).
"""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from es_framework.dev.demo_es import routing, shutdown
from es_framework.dev.demo_es.cluster_state import (
    ClusterSettingsError,
    DemoClusterState,
    IndexMeta,
    ShutdownRecord,
    update_cluster_settings,
)
from es_framework.dev.demo_es.errors import EsError

logger = logging.getLogger("es_framework.dev.demo_es")

Change = Callable[[DemoClusterState], DemoClusterState]


def new_uuid() -> str:
    """An index uuid the way Elasticsearch writes one (22 URL-safe base64 characters)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")[:22]


def master_change(action: str, payload: Mapping[str, Any], now: int, master_name: str) -> Change:
    """The change ``action`` makes to the cluster state (``now`` in epoch milliseconds). An unknown action
    is a 400 ``illegal_argument_exception``; a change raises :class:`EsError` when Elasticsearch refuses it."""
    if action == "create_index":
        return _create_index(payload, now)
    if action == "create_index_if_missing":
        names = [str(n) for n in payload["indices"]]

        def create_missing(state: DemoClusterState) -> DemoClusterState:
            for name in names:
                if name not in state.indices:
                    state = routing.create_index(state, IndexMeta(name, new_uuid(), 1, 1, now))
            return state

        return create_missing
    if action == "delete_index":
        to_delete = [str(n) for n in payload["indices"]]

        def delete(state: DemoClusterState) -> DemoClusterState:
            for name in to_delete:
                state = routing.delete_index(state, name)
            return state

        return delete
    if action == "set_replicas":
        return lambda s: routing.set_replicas(s, str(payload["index"]), int(payload["replicas"]), now)
    if action == "cluster_settings":

        def settings(state: DemoClusterState) -> DemoClusterState:
            try:
                return update_cluster_settings(state, payload.get("persistent") or {}, payload.get("transient") or {})
            except ClusterSettingsError as error:
                raise EsError(400, "illegal_argument_exception", str(error)) from None

        return settings
    if action == "voting_exclusions_add":
        return _add_voting_exclusions([str(n) for n in payload["node_names"]])
    if action == "voting_exclusions_clear":
        return lambda s: replace(s, voting_exclusions=())
    if action == "shutdown_put":
        record = ShutdownRecord(**payload["record"])
        return lambda s: shutdown.put(s, record)
    if action == "shutdown_delete":
        return lambda s: shutdown.delete(s, str(payload["node_id"]))
    if action == "elastic_password":
        password_hash = str(payload["hash"])
        return lambda s: replace(s, elastic_password_hash=password_hash)
    if action in ("shard_started", "shard_failed"):
        return _shard_event(action, payload, now, master_name)
    raise EsError(400, "illegal_argument_exception", f"unknown master action [{action}]")


def _create_index(payload: Mapping[str, Any], now: int) -> Change:
    name = str(payload["index"])

    def create(state: DemoClusterState) -> DemoClusterState:
        if name in state.indices:
            raise EsError(
                400,
                "resource_already_exists_exception",
                f"index [{name}/{state.indices[name].uuid}] already exists",
                extra={"index_uuid": state.indices[name].uuid, "index": name},
            )
        meta = IndexMeta(name, new_uuid(), int(payload["shards"]), int(payload["replicas"]), now)
        return routing.create_index(state, meta)

    return create


def _add_voting_exclusions(wanted: list[str]) -> Change:
    def add(state: DemoClusterState) -> DemoClusterState:
        by_name = {n.name: n.node_id for n in state.nodes}
        current = list(state.voting_exclusions)
        for name in wanted:
            if name not in {n for _, n in current}:
                current.append((by_name.get(name, "_absent_"), name))
        return replace(state, voting_exclusions=tuple(current))

    return add


def _shard_event(action: str, payload: Mapping[str, Any], now: int, master_name: str) -> Change:
    index, shard, node_id = str(payload["index"]), int(payload["shard"]), str(payload["node_id"])

    def shard_event(state: DemoClusterState) -> DemoClusterState:
        meta = state.indices.get(index)
        if meta is None or meta.uuid != payload.get("index_uuid", meta.uuid):
            return state
        if action == "shard_started":
            return routing.shard_started(state, index, shard, node_id)
        logger.warning(
            "[%s] shard [%s][%s] on node [%s] failed: %s", master_name, index, shard, node_id, payload.get("reason")
        )
        return routing.shard_failed(state, index, shard, node_id, now)

    return shard_event
