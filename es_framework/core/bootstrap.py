"""Forming a brand-new Elasticsearch cluster exactly once, and node roles.

Elasticsearch 7+ forms a new cluster only from ``cluster.initial_master_nodes``; given to nodes of
a cluster that already exists (or to a node whose data already belongs to one), it can bootstrap a
*second* cluster over existing data. So, as the best current operators do:

- the list is decided once, when the first node of a brand-new cluster is launched (the
  master-eligible names, ``<framework>1 .. <framework>min(N, M)``), and stored in the state with
  that first launch;
- it is sent only to master-eligible nodes, and only until a node reports the cluster's uuid
  (``GET /`` → ``cluster_uuid``, relayed by the executor in ``TaskStatus.data``); the uuid is
  stored and the list dropped for good;
- a state that predates this record, or whose cluster ever ran, is never bootstrapped again
  (:func:`es_framework.core.state_document.state_from_json`), and the executor drops the list anyway
  when the node's data volume already holds a cluster.

Roles: node ids 1..M (``--elasticsearchMasterNodes``) are master-eligible and hold data, the
others hold data only, so scaling down from the highest id never removes a master while any
data-only node is left. Every node keeps ``ingest`` so ingest pipelines work on all of them.
"""

from __future__ import annotations

from dataclasses import replace

from es_framework.core.node_state import ClusterState
from identity.naming import node_name

MASTER_ROLES = ("master", "data", "ingest")
DATA_ROLES = ("data", "ingest")


def is_master_eligible(node_id: int, master_nodes: int) -> bool:
    return node_id <= master_nodes


def node_roles(node_id: int, master_nodes: int) -> tuple[str, ...]:
    return MASTER_ROLES if is_master_eligible(node_id, master_nodes) else DATA_ROLES


def decide_bootstrap(state: ClusterState, framework_name: str, master_nodes: int) -> ClusterState:
    """The state with its bootstrap list decided, if this is the first launch of a brand-new cluster.

    Call it before planning launches; it changes nothing once the list is decided or the cluster
    has a uuid, or while any node record exists (a cluster with nodes is not brand-new)."""
    if state.bootstrap_masters is not None or state.cluster_uuid is not None or state.nodes:
        return state
    count = min(state.desired_nodes, master_nodes)
    return replace(state, bootstrap_masters=tuple(node_name(framework_name, i) for i in range(1, count + 1)))


def initial_master_nodes_for(node_id: int, initial_master_nodes: tuple[str, ...], master_nodes: int) -> tuple[str, ...]:
    """What node ``node_id`` gets as ``cluster.initial_master_nodes`` (empty: none)."""
    return initial_master_nodes if is_master_eligible(node_id, master_nodes) else ()
