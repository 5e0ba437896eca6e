"""What the demo node (development tool, not Elasticsearch) keeps in its ``path.data``.

- ``node.lock``: held (``flock``) while the node runs, so that two nodes never share a data path;
  the message of a failed lock is Elasticsearch's.
- ``_state/demo-node-state.json`` (:data:`STATE_FILE`): the node id, generated once, and the
  ``cluster_uuid`` once the node joined or formed a cluster; neither is ever replaced.
- ``_state/cluster-state.json``: the newest cluster state the node accepted, so that a restarted
  cluster comes back with the same allocation.

Shard copies are under ``indices/`` (see :mod:`~es_framework.dev.demo_es.documents`). Every file is
written atomically (a temporary file, then a rename).
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from es_framework.dev.demo_es.cluster_state import DemoClusterState, state_from_json, to_json
from es_framework.dev.demo_es.settings import SettingsError

STATE_FILE = "demo-node-state.json"
CLUSTER_STATE_FILE = "cluster-state.json"


def lock_data_path(data_path: Path) -> int:
    """Create ``data_path`` and lock it; returns the lock's file descriptor (closing it unlocks)."""
    data_path.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_path / "node.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise SettingsError(
            f"failed to obtain node locks, tried [{data_path}]; maybe these locations are not writable "
            "or multiple nodes were started on the same data path?"
        ) from None
    return fd


def write_json(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(document), encoding="utf-8")
    os.replace(tmp, path)


def read_node_state(data_path: Path) -> tuple[str, str | None] | None:
    """``(node id, cluster uuid)`` as persisted, or None for a new data path."""
    path = data_path / "_state" / STATE_FILE
    if not path.exists():
        return None
    document = json.loads(path.read_text(encoding="utf-8"))
    return str(document["node_id"]), document.get("cluster_uuid")


def save_node_state(data_path: Path, node_id: str, cluster_uuid: str | None) -> None:
    write_json(data_path / "_state" / STATE_FILE, {"node_id": node_id, "cluster_uuid": cluster_uuid})


def read_cluster_state(data_path: Path, cluster_uuid: str | None) -> DemoClusterState | None:
    """The persisted cluster state of cluster ``cluster_uuid``, as a full cluster restart finds it."""
    path = data_path / "_state" / CLUSTER_STATE_FILE
    if not path.exists() or not cluster_uuid:
        return None
    saved = state_from_json(json.loads(path.read_text(encoding="utf-8")))
    if saved.cluster_uuid != cluster_uuid:
        return None
    # Transient settings do not survive a full restart, as in Elasticsearch.
    return replace(saved, transient={}, master=None)


def save_cluster_state(data_path: Path, state: DemoClusterState) -> None:
    write_json(data_path / "_state" / CLUSTER_STATE_FILE, to_json(state))
