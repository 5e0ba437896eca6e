"""The shard applier of a demo node: shard copies on this node (development tool, not Elasticsearch).

Every node starts the recoveries the routing assigns to it (an empty or its own existing store for
a primary; a copy from the primary for a replica or a relocation target, skipped when its own files
already equal the primary's; ``demo.relocation_delay`` seconds of pretend copying first), reports
them started to the master, and deletes local shard copies once the routing no longer needs them.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from pathlib import Path

from es_framework.dev.demo_es.client import call
from es_framework.dev.demo_es.cluster_state import INITIALIZING, RECOVERY_PEER, RELOCATION_DELAY, DemoClusterState
from es_framework.dev.demo_es.documents import ShardStore, doc_from_json
from es_framework.dev.demo_es.publication import PublishingNode
from es_framework.dev.demo_es.settings import Settings

logger = logging.getLogger("es_framework.dev.demo_es")

#: Seconds before a copy recovered under a cluster state that still shows it initializing (the master has not
#: applied its shard-started yet, or did not take it) is reported again under that same state. Elasticsearch
#: sends shard-started again when a new cluster state still lists the shard as initializing
#: (``IndicesClusterStateService``), it does not copy the shard again in a loop.
RESEND_STARTED_AFTER = 1.0


class ApplierNode(PublishingNode):
    """A node that holds shard copies and follows the routing of each new cluster state."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.relocation_delay = float(settings.get(RELOCATION_DELAY, "0").removesuffix("s") or 0)
        self._applier_wake = threading.Event()
        self._stores: dict[tuple[str, int], ShardStore] = {}
        self._stores_lock = threading.Lock()
        self._recovering: set[tuple[str, int]] = set()
        #: (index, shard) → the cluster state version its last recovery here finished under, and when.
        self._recovered: dict[tuple[str, int], tuple[int, float]] = {}

    def _state_installed(self) -> None:
        self._applier_wake.set()

    def shard_dir(self, index_uuid: str, shard: int) -> Path:
        return self.data_path / "indices" / index_uuid / str(shard)

    def store(self, index_uuid: str, shard: int, create: bool = True) -> ShardStore | None:
        key = (index_uuid, shard)
        with self._stores_lock:
            store = self._stores.get(key)
            if store is None:
                directory = self.shard_dir(index_uuid, shard)
                if not create and not directory.exists():
                    return None
                store = ShardStore(directory)
                self._stores[key] = store
            return store

    def _applier_loop(self) -> None:
        while not self._stop.is_set():
            self._applier_wake.wait(0.5)
            self._applier_wake.clear()
            try:
                self._apply_round()
            except Exception:
                logger.exception("[%s] applying the cluster state failed", self.name)

    def _apply_round(self) -> None:
        state = self.current()
        if state is None:
            return
        me = self.state.node_id
        for (index, shard), group in state.shards.items():
            for copy in group.copies:
                target = (copy.state == INITIALIZING and copy.node == me) or copy.relocating_node == me
                if not target:
                    continue
                with self._stores_lock:
                    if (index, shard) in self._recovering or self._recently_recovered(state.version, (index, shard)):
                        continue
                    self._recovering.add((index, shard))
                threading.Thread(
                    target=self._recover,
                    args=(state, index, shard, copy.primary and copy.relocating_node != me, copy.recovery),
                    name="demo-es-recovery",
                    daemon=True,
                ).start()
        self._clean_up(state)

    def _recently_recovered(self, version: int, key: tuple[str, int]) -> bool:
        """Whether ``key`` finished recovering under cluster state ``version`` less than ``RESEND_STARTED_AFTER``
        ago (stores lock held): then it waits for a new state or that time, rather than recovering again at once."""
        done = self._recovered.get(key)
        return done is not None and done[0] == version and self._clock() - done[1] < RESEND_STARTED_AFTER

    def _recover(self, state: DemoClusterState, index: str, shard: int, primary: bool, recovery: str) -> None:
        meta = state.indices[index]
        try:
            store = self.store(meta.uuid, shard)
            assert store is not None
            if not primary or recovery == RECOVERY_PEER or not recovery:
                self._copy_from_primary(state, index, shard, store)
            else:
                with store.lock:
                    store.save()
                logger.info("[%s] [%s][%s] primary recovered from %s", self.name, index, shard, recovery)
            self.master_action(
                "shard_started",
                {"index": index, "shard": shard, "node_id": self.state.node_id, "index_uuid": meta.uuid},
            )
            with self._stores_lock:
                self._recovered[(index, shard)] = (state.version, self._clock())
        except Exception as error:
            logger.warning("[%s] [%s][%s] recovery failed, will retry: %s", self.name, index, shard, error)
            self._stop.wait(0.5)
        finally:
            with self._stores_lock:
                self._recovering.discard((index, shard))
            self._applier_wake.set()

    def _copy_from_primary(self, state: DemoClusterState, index: str, shard: int, store: ShardStore) -> None:
        group = state.shards[(index, shard)]
        source = state.node(group.primary.node)
        if source is None or not group.primary.active:
            raise RuntimeError("the primary is not active")
        delay = float(state.setting(RELOCATION_DELAY, str(self.relocation_delay)).removesuffix("s") or 0)
        if delay > 0 and self._stop.wait(delay):
            raise RuntimeError("stopping")
        with store.lock:
            digest = store.digest()
        status, answer = call(
            source,
            "POST",
            f"/_demo/shard/{state.indices[index].uuid}/{shard}/_recovery",
            {"index": index, "state_version": state.version, "digest": digest, "target": self.state.node_id},
            timeout=30,
        )
        if status != 200 or not isinstance(answer, dict):
            raise RuntimeError(f"recovery source [{source.name}] answered {status}: {answer}")
        with store.lock:
            if not answer.get("up_to_date"):
                store.merge(doc_from_json(d) for d in answer["docs"])
            store.save()
        logger.info(
            "[%s] [%s][%s] recovered from [%s]: %s",
            self.name,
            index,
            shard,
            source.name,
            "files already equal, nothing copied" if answer.get("up_to_date") else f"{len(answer['docs'])} docs copied",
        )

    def _clean_up(self, state: DemoClusterState) -> None:
        """Delete local copies the routing no longer needs: of deleted indices, and of shards whose every copy is
        started elsewhere (as Elasticsearch deletes a shard's files once it is fully active on other nodes)."""
        root = self.data_path / "indices"
        if not root.is_dir():
            return
        by_uuid = {meta.uuid: meta for meta in state.indices.values()}
        me = self.state.node_id
        for index_dir in root.iterdir():
            for shard_dir in index_dir.iterdir() if index_dir.is_dir() else []:
                try:
                    shard = int(shard_dir.name)
                    # A copy written moments ago may belong to a state this node has not seen yet.
                    if time.time() - shard_dir.stat().st_mtime < 5:
                        continue
                except (ValueError, OSError):
                    continue
                meta = by_uuid.get(index_dir.name)
                if meta is not None:
                    group = state.shards.get((meta.name, shard))
                    with self._stores_lock:
                        recovering = (meta.name, shard) in self._recovering
                    if group is None or recovering:
                        continue
                    if not group.fully_active or me in group.holders() or me in group.in_sync | group.stale:
                        continue
                with self._stores_lock:
                    self._stores.pop((index_dir.name, shard), None)
                shutil.rmtree(shard_dir, ignore_errors=True)
                logger.info("[%s] deleted the local copy of shard [%s][%s]", self.name, index_dir.name, shard)
            with contextlib.suppress(OSError):
                index_dir.rmdir()
