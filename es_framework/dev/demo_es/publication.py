"""The cluster state of a demo node: master updates and their publication (development tool, not Elasticsearch).

The master keeps the cluster state (indices, routing table, cluster settings, voting
configuration), runs :func:`~es_framework.dev.demo_es.routing.reroute` whenever something changes,
persists it in its ``path.data`` and publishes it over HTTP to every node, which persists the newest
version it saw (a restarted cluster comes back with the same allocation; a restarted node serves
requests only once the master sent it the current state). A new master first takes the newest state
any member holds, so that no decision is lost. Any node forwards master actions (see
:mod:`~es_framework.dev.demo_es.master_actions`) to the master; an API change is answered once every
node applied it, as Elasticsearch's acknowledged answers are. A node joins the cluster state only when
Elasticsearch's version rules let it (:meth:`PublishingNode._admit`); a refused node gets no state and serves
no requests that need one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from es_framework.dev.demo_es import persistence
from es_framework.dev.demo_es.client import call
from es_framework.dev.demo_es.cluster_state import DemoClusterState, NodeInfo, state_from_json, to_json, voting_config
from es_framework.dev.demo_es.errors import EsError
from es_framework.dev.demo_es.master_actions import master_change
from es_framework.dev.demo_es.membership import MembershipNode
from es_framework.dev.demo_es.routing import reroute
from es_framework.dev.demo_es.settings import Settings
from es_framework.dev.demo_es.version import join_refusal

#: Seconds a node waits for its cluster state to catch up with a version another node has seen.
CATCH_UP_TIMEOUT = 5.0
#: Seconds an acknowledged API change waits for every node to apply the new cluster state.
ACK_TIMEOUT = 5.0

logger = logging.getLogger("es_framework.dev.demo_es")


def now_millis() -> int:
    return int(time.time() * 1000)


class PublishingNode(MembershipNode):
    """A member that holds the cluster state, and as master changes and publishes it."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._state_changed = threading.Condition(self._state_lock)
        #: The last cluster state this node accepted (persisted, so it survives restarts) ...
        self.cluster: DemoClusterState | None = None
        #: ... which it serves requests from only once it is current: received from the master since this
        #: process started, or taken over as the master (Elasticsearch's "state not recovered" block).
        self._live = False
        #: Elected and caught up with the newest state any member had.
        self._synced = False
        self._master_wake = threading.Event()
        #: Node id → the newest version it acknowledged.
        self._acked: dict[str, int] = {}
        self._publishing: set[str] = set()
        #: Node id → the version whose join this master refused (so that it is logged once).
        self._refused: dict[str, str] = {}

    # -------------------------------------------------------------- the membership layer's questions

    @property
    def acting_master(self) -> bool:
        return self.is_master and self._synced

    def _voting(self) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
        if self.cluster is None:
            return (), ()
        return self.cluster.voting_config, self.cluster.voting_exclusions

    def _state_version(self) -> int:
        return self.cluster.version if self.cluster else -1

    def _leadership_changed(self) -> None:
        self._synced = False
        self._acked.clear()

    def _round_done(self) -> None:
        self._master_wake.set()

    def _serving(self) -> bool:
        return self._live

    def _cluster_nodes(self) -> tuple[NodeInfo, ...]:
        return self.cluster.nodes if self.cluster is not None else ()

    def _admitted(self, node_id: str) -> bool:
        if not self._live or self.cluster is None or not self.cluster.nodes:
            return True
        return any(n.node_id == node_id for n in self.cluster.nodes)

    def _state_installed(self) -> None:
        """A new cluster state is this node's (state lock held): the shard applier's cue."""

    # -------------------------------------------------------------- the cluster state

    def current(self) -> DemoClusterState | None:
        """The cluster state to serve requests from (None until it is current, see ``_live``)."""
        with self._state_lock:
            return self.cluster if self._live else None

    def last_accepted(self) -> DemoClusterState | None:
        """The last state this node accepted, current or not (what a new master takes over)."""
        with self._state_lock:
            return self.cluster

    def wait_for_version(self, version: int, timeout: float = CATCH_UP_TIMEOUT) -> DemoClusterState | None:
        """The current cluster state once it is at least ``version`` (or whatever it is after ``timeout``)."""
        return self.wait_for(lambda state: state.version >= version, timeout)

    def wait_for(self, predicate: Callable[[DemoClusterState], bool], timeout: float) -> DemoClusterState | None:
        """Wait until the current cluster state satisfies ``predicate``; the last state either way."""
        deadline = time.monotonic() + timeout
        with self._state_changed:
            while not self._stop.is_set():
                if self._live and self.cluster is not None and predicate(self.cluster):
                    return self.cluster
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._state_changed.wait(min(remaining, 0.5))
            return self.cluster if self._live else None

    def _install(self, state: DemoClusterState) -> None:
        """Called with the state lock held: make ``state`` this node's (current) cluster state."""
        self.cluster = state
        self._live = True
        persistence.save_cluster_state(self.data_path, state)
        self._state_changed.notify_all()
        self._state_installed()

    def accept_published(self, document: dict[str, Any]) -> dict[str, Any]:
        """``POST /_demo/publish``: a master's cluster state; newer versions replace older ones."""
        state = state_from_json(document)
        with self._state_lock:
            if state.cluster_uuid != self.state.cluster_uuid:
                raise EsError(
                    400,
                    "coordination_state_rejected_exception",
                    f"cluster uuid [{state.cluster_uuid}] is not this node's [{self.state.cluster_uuid}]",
                )
            # Until this node has a current state it takes the master's, even one older than what it had
            # persisted (a master that took over may have gone on from an earlier version).
            if not self._live or self.cluster is None or state.version > self.cluster.version:
                self._install(state)
            return {"version": self.cluster.version if self.cluster else -1}

    # -------------------------------------------------------------- as master

    def master_update(self, change: Callable[[DemoClusterState], DemoClusterState]) -> int:
        """On the master: apply ``change`` and a reroute, commit and publish. Returns the new version."""
        with self._state_lock:
            if not self.is_master or not self._synced or self.state.cluster_uuid is None:
                raise EsError(503, "not_master_exception", f"[{self.name}] is not the master (yet)")
            base = self.cluster or DemoClusterState(cluster_uuid=self.state.cluster_uuid)
            changed = change(base)
            rerouted = self._rerouted(changed)
            if rerouted != base:
                self._install(replace(rerouted, version=base.version + 1))
            version = self.cluster.version if self.cluster else 0
        self._master_wake.set()
        return version

    def _rerouted(self, state: DemoClusterState) -> DemoClusterState:
        """Called with the state lock held on the master."""
        live = self._admit(state, [self.own_info(), *(p.info() for p in self._recent.values())])
        config = voting_config(state.voting_config, live, state.voting_exclusions, self.state.node_id)
        state = replace(state, master=self.state.node_id, voting_config=config)
        return reroute(state, live, now_millis())

    def _admit(self, state: DemoClusterState, live: list[NodeInfo]) -> list[NodeInfo]:
        """The live nodes the master keeps in the cluster: members of the state stay, a new node joins only if
        Elasticsearch's join validation (``JoinTaskExecutor``, see :func:`~.version.join_refusal`) lets it, judged
        against the nodes of the cluster state it joins. A refused node is logged once per version."""
        members = {n.node_id: n.version for n in state.nodes}
        admitted = []
        for node in live:
            # A node that comes back with another version joins again (as a restarted Elasticsearch node does);
            # the master itself passed the same check to be elected (cluster_state.claims_master).
            known = members.get(node.node_id) == node.version or node.node_id == self.state.node_id
            others = [n.es_version for n in state.nodes if n.node_id != node.node_id] or [self.es_version]
            refusal = None if known else join_refusal(node.es_version, others)
            if refusal is None:
                admitted.append(node)
                self._refused.pop(node.node_id, None)
            elif self._refused.get(node.node_id) != node.version:
                self._refused[node.node_id] = node.version
                logger.warning(
                    "[%s] node-join: [%s] refused, caused by java.lang.IllegalStateException: %s",
                    self.name,
                    node.name,
                    refusal,
                )
        return admitted

    def _master_loop(self) -> None:
        while not self._stop.is_set():
            self._master_wake.wait(0.5)
            self._master_wake.clear()
            try:
                if self.is_master:
                    self._master_round()
            except EsError as error:
                logger.info("[%s] master round stopped: %s", self.name, error.reason)
            except Exception:
                logger.exception("[%s] master round failed", self.name)

    def _master_round(self) -> None:
        if self._synced:
            self._check_newer_state()
        if not self._synced:
            # A new master waits until the old one stepped down (it sees this node in its next round), then
            # takes the newest state any member has, so that no decision is lost.
            with self._state_lock:
                own = self.cluster.version if self.cluster else -1
                other_master = any(p.master for p in self.state.peers.values())
                newest = max(self.state.peers.values(), key=lambda p: p.state_version, default=None)
            if other_master:
                return
            if newest is not None and newest.state_version > own:
                status, document = call(newest, "GET", "/_demo/state", timeout=5)
                if status == 200 and isinstance(document, dict):
                    with self._state_lock:
                        adopted = state_from_json(document)
                        if adopted.cluster_uuid == self.state.cluster_uuid and (
                            self.cluster is None or adopted.version > self.cluster.version
                        ):
                            self._install(adopted)
                else:
                    return
            with self._state_lock:
                self._install(self.cluster or DemoClusterState(cluster_uuid=self.state.cluster_uuid or ""))
            self._synced = True
            current = self.current()
            logger.info(
                "[%s] acting as master from cluster state version %s", self.name, current.version if current else 0
            )
        self.master_update(lambda state: state)
        self._publish()

    def _check_newer_state(self) -> None:
        """A live peer holding a newer state than this master's was sent it by another master (one that took this
        one for gone, see :mod:`.fault_detection`): the nodes that accepted it refuse this master's older versions,
        so its shard events and routing would never reach them (a recovery repeated forever, a drain that never
        ends). Like an Elasticsearch master that learns of a newer term, it stops acting and takes the newest state
        over again (the new-master path of :meth:`_master_round`), then publishes a version above it."""
        with self._state_lock:
            own = self.cluster.version if self.cluster else -1
            ahead = max(self.state.peers.values(), key=lambda p: p.state_version, default=None)
            if ahead is None or ahead.state_version <= own:
                return
            # The acknowledgements this master counted were answers from nodes on the other master's line.
            self._leadership_changed()
        logger.warning(
            "[%s] node [%s] (node id [%s]) holds cluster state version %s, newer than this master's %s: "
            "another master published it; taking it over",
            self.name,
            ahead.name,
            ahead.node_id,
            ahead.state_version,
            own,
        )

    def _publish(self) -> None:
        with self._state_lock:
            state = self.cluster
            if state is None:
                return
            for peer in self._recent.values():
                if not peer.live:
                    # Restarted since it acknowledged: it has no current state until it is sent one again.
                    self._acked.pop(peer.node_id, None)
            targets = [
                n
                for n in state.nodes
                if n.node_id != self.state.node_id
                and self._acked.get(n.node_id, -1) < state.version
                and n.node_id not in self._publishing
            ]
            self._publishing.update(n.node_id for n in targets)
        document = to_json(state) if targets else None
        for node in targets:
            threading.Thread(
                target=self._publish_to, args=(node, document, state.version), name="demo-es-publish", daemon=True
            ).start()

    def _publish_to(self, node: NodeInfo, document: Any, version: int) -> None:
        try:
            status, answer = call(node, "POST", "/_demo/publish", document, timeout=3)
            if status == 200 and isinstance(answer, dict):
                with self._state_lock:
                    self._acked[node.node_id] = max(self._acked.get(node.node_id, -1), int(answer["version"]))
                    self._state_changed.notify_all()
            else:
                logger.warning(
                    "[%s] publishing version %s to [%s] failed: %s %s", self.name, version, node.name, status, answer
                )
        except (OSError, ValueError):
            logger.debug("[%s] publishing version %s to [%s] failed", self.name, version, node.name, exc_info=True)
        finally:
            with self._state_lock:
                self._publishing.discard(node.node_id)
                newer = self.cluster is not None and self.cluster.version > self._acked.get(node.node_id, -1)
            if newer and self._acked.get(node.node_id, -1) >= version:
                # A newer state was committed while this one was on its way: send it now, not next round.
                self._master_wake.set()

    # -------------------------------------------------------------- master actions

    def _run_master_action(self, action: str, payload: dict[str, Any]) -> int:
        """Apply one master action here (this node must be the master); the version that holds it."""
        return self.master_update(master_change(action, payload, now_millis(), self.name))

    def master_action_here(self, action: str, payload: dict[str, Any]) -> int:
        """``POST /_demo/master/<action>``: run a master action on this node, which must be the master."""
        if not self.is_master:
            raise EsError(503, "not_master_exception", f"[{self.name}] is not the master")
        return self._acknowledged(action, self._run_master_action(action, payload))

    def _acknowledged(self, action: str, version: int) -> int:
        """Like Elasticsearch's acknowledged answers: an API change returns once every node applied it (or after
        ``ACK_TIMEOUT``), so that the next request to any node sees it. Shard events do not wait."""
        if action in ("shard_started", "shard_failed"):
            return version
        self._master_wake.set()
        deadline = time.monotonic() + ACK_TIMEOUT
        with self._state_changed:
            while not self._stop.is_set():
                nodes = self.cluster.nodes if self.cluster else ()
                if all(self._acked.get(n.node_id, -1) >= version for n in nodes if n.node_id != self.state.node_id):
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._state_changed.wait(min(remaining, 0.2))
        return version

    def master_action(self, action: str, payload: dict[str, Any], timeout: float = 10.0) -> int:
        """Run a master action (see :mod:`~es_framework.dev.demo_es.master_actions`) here if this node is the
        master, else on the master over HTTP; returns the version that holds its result, which this node has
        once this returns (or after ``CATCH_UP_TIMEOUT``)."""
        deadline = time.monotonic() + timeout
        while True:
            master = self.master_peer()
            if master is not None and master.node_id == self.state.node_id:
                try:
                    return self._acknowledged(action, self._run_master_action(action, payload))
                except EsError as error:
                    if error.kind != "not_master_exception" or time.monotonic() > deadline:
                        raise
            elif master is not None:
                try:
                    status, answer = call(master, "POST", f"/_demo/master/{action}", payload)
                except (OSError, ValueError):
                    status, answer = 503, None
                if status == 200 and isinstance(answer, dict):
                    version = int(answer["version"])
                    self.wait_for_version(version)
                    return version
                if (
                    isinstance(answer, dict)
                    and "error" in answer
                    and answer["error"].get("type") != "not_master_exception"
                ):
                    cause = answer["error"]
                    raise EsError(int(answer.get("status", status)), str(cause["type"]), str(cause["reason"]))
            if time.monotonic() > deadline:
                raise EsError(503, "master_not_discovered_exception", "no master discovered by the demo node")
            time.sleep(0.1)
