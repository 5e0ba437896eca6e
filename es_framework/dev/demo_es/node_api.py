"""What the demo node's REST layer and request actions use of a running node (development tool, not Elasticsearch).

:class:`~es_framework.dev.demo_es.node.DemoNode` provides it; :mod:`.rest` and :mod:`.actions` see
only this, so they sit above no node module and the node's layers below them never import them back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from es_framework.dev.demo_es.cluster_state import DemoClusterState, NodeInfo
from es_framework.dev.demo_es.documents import ShardStore


class NodeAPI(Protocol):
    name: str
    cluster_name: str
    data_path: Path
    #: The Elasticsearch version the node plays (see :mod:`.version`).
    version: str

    @property
    def node_id(self) -> str: ...

    @property
    def cluster_uuid(self) -> str | None: ...

    # ------------------------------------------------------------------ membership

    def master_peer(self) -> NodeInfo | None: ...

    def members(self) -> list[NodeInfo]: ...

    # ------------------------------------------------------------------ the cluster state

    def current(self) -> DemoClusterState | None: ...

    def last_accepted(self) -> DemoClusterState | None: ...

    def wait_for(self, predicate: Callable[[DemoClusterState], bool], timeout: float) -> DemoClusterState | None: ...

    def wait_for_version(self, version: int, timeout: float = ...) -> DemoClusterState | None: ...

    def accept_published(self, document: dict[str, Any]) -> dict[str, Any]: ...

    def master_action(self, action: str, payload: dict[str, Any], timeout: float = ...) -> int: ...

    def master_action_here(self, action: str, payload: dict[str, Any]) -> int: ...

    # ------------------------------------------------------------------ shard copies

    def store(self, index_uuid: str, shard: int, create: bool = True) -> ShardStore | None: ...
