"""Allocation APIs of the demo node (development tool, not Elasticsearch): ``/_cluster/allocation/explain``
and the voting configuration exclusions (``POST|DELETE /_cluster/voting_config_exclusions``).

The explanation itself is :func:`~es_framework.dev.demo_es.explain.explain`'s, from the current
cluster state; exclusions go through the master.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from es_framework.dev.demo_es import explain
from es_framework.dev.demo_es.actions.common import current_state, parse_time
from es_framework.dev.demo_es.cluster_state import DemoClusterState
from es_framework.dev.demo_es.errors import EsError, index_not_found
from es_framework.dev.demo_es.node_api import NodeAPI


def allocation_explain(node: NodeAPI, body: Mapping[str, Any]) -> dict[str, Any]:
    state = current_state(node)
    if not body:
        first = explain.first_unassigned(state)
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
        return explain.explain(state, index, shard, primary)
    except explain.ExplainError as error:
        raise EsError(400, "illegal_argument_exception", str(error)) from None


def add_voting_exclusions(node: NodeAPI, params: Mapping[str, str]) -> None:
    names = [n.strip() for n in params.get("node_names", "").split(",") if n.strip()]
    ids = [n.strip() for n in params.get("node_ids", "").split(",") if n.strip()]
    if bool(names) == bool(ids):
        raise EsError(400, "illegal_argument_exception", "You must set [node_names] or [node_ids] but not both")
    if ids:
        state = current_state(node)
        by_id = {n.node_id: n.name for n in state.nodes}
        names = [by_id.get(i, i) for i in ids]
    node.master_action("voting_exclusions_add", {"node_names": names})


def clear_voting_exclusions(node: NodeAPI, params: Mapping[str, str]) -> None:
    if params.get("wait_for_removal", "true") == "true":
        timeout = parse_time(params.get("master_timeout") or params.get("timeout"), 30.0)

        def removed(state: DemoClusterState) -> bool:
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
