"""The scheduler's eye on Elasticsearch: cluster health for the API, and scaling down by draining.

:class:`ClusterMonitor` runs on its own thread, so that a slow node never delays Mesos events.
Every :data:`INTERVAL_S` seconds (faster while a drain runs) it asks one running node — a node
that stays, preferably — for the cluster's health, and while any node id is above the desired
count it applies :func:`es_framework.core.drain.plan_drain`: it sets the allocation exclusion and the
voting exclusions, reports progress (shards left per node) in the log and the API, explains a
drain that stalls (``_cluster/allocation/explain``), and asks the engine (through the shell's
command queue, so the engine stays single-threaded) to stop each node that is empty.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from es_framework.config import Config
from es_framework.core.drain import STALL_SECONDS, NodeDrain, Observation, leaving_nodes, plan_drain
from es_framework.core.node_state import ClusterState, TaskState
from es_framework.shell.es_client import ElasticsearchClient, ElasticsearchError

log = logging.getLogger("es_framework.shell.monitor")

INTERVAL_S = float(os.environ.get("ES_MESOS_MONITOR_INTERVAL", "5"))
DRAIN_INTERVAL_S = float(os.environ.get("ES_MESOS_DRAIN_INTERVAL", "2"))


@dataclass(frozen=True)
class DrainStatus:
    node_id: int
    shards_left: int | None
    status: str
    reason: str


@dataclass(frozen=True)
class MonitorView:
    """What the monitor last learnt (read by the API from another thread: replaced, never changed)."""

    health: str = "unknown"
    health_detail: str = ""
    drain: tuple[DrainStatus, ...] = ()
    checked_at: float | None = None


class ClusterMonitor:
    def __init__(
        self,
        config: Config,
        state: Callable[[], ClusterState],
        stop_node: Callable[[int], None],
        *,
        clock: Callable[[], float] = time.time,
        client_factory: Callable[[str, str | None], ElasticsearchClient] | None = None,
        may_act: Callable[[], bool] = lambda: True,
    ) -> None:
        self.config = config
        #: Whether this scheduler leads now. Reading health is harmless from anywhere; changing the
        #: cluster's allocation settings from a state that may be stale (a scheduler that lost the
        #: leader lock) is not, so drains and their clean-up run only while this says yes.
        self._may_act = may_act
        self._client_factory = client_factory or (
            lambda address, password: ElasticsearchClient(address, password=password)
        )
        self._state = state
        self._stop_node = stop_node
        self._clock = clock
        self.view = MonitorView()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="es-monitor", daemon=True)
        #: node id -> (shards left, since when): a drain that does not move is reported as stalled.
        self._progress: dict[int, tuple[int | None, float]] = {}
        self._logged: dict[int, str] = {}
        # Our exclusions may be left over from an earlier scheduler: look once at start.
        self._cleanup_pending = True

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _password(self) -> str | None:
        secret = self.config.elastic_password
        return secret.reveal() if secret is not None and self.config.security_enabled else None

    def _run(self) -> None:
        while not self._stop.is_set():
            draining = False
            try:
                draining = self.check_once()
            except Exception:
                log.exception("checking the cluster failed; trying again")
            self._stop.wait(DRAIN_INTERVAL_S if draining else INTERVAL_S)

    def _contact(self, state: ClusterState) -> str | None:
        running = [r for r in state.nodes.values() if r.state is TaskState.RUNNING and r.hostname and r.http_port]
        staying = [r for r in running if r.node_id <= state.desired_nodes]
        chosen = sorted(staying or running, key=lambda r: r.node_id)
        return chosen[0].http_address if chosen else None

    def check_once(self) -> bool:
        """One round; returns whether a drain is under way."""
        state = self._state()
        address = self._contact(state)
        leaving = leaving_nodes(state)
        if address is None:
            self.view = MonitorView(
                "unknown",
                "no running node to ask",
                tuple(DrainStatus(r.node_id, None, "waiting", "no running node to ask") for r in leaving),
                self._clock(),
            )
            return bool(leaving)
        client = self._client_factory(address, self._password())
        try:
            health = client.health()
            status = str(health.get("status", "unknown"))
            detail = (
                f"{health.get('number_of_nodes', '?')} nodes, {health.get('active_shards', '?')} active shards, "
                f"{health.get('relocating_shards', 0)} relocating, {health.get('unassigned_shards', 0)} unassigned"
            )
            drains: tuple[DrainStatus, ...] = ()
            if (leaving or self._cleanup_pending) and self._may_act():
                drains = self._drain(client, state)
            elif leaving or self._cleanup_pending:
                # Not leading: the drain belongs to whoever leads; show what we last knew of it.
                drains = self.view.drain
            self.view = MonitorView(status, detail, drains, self._clock())
        except ElasticsearchError as error:
            # Said once per problem, not every round: a cluster that is down is one event.
            if str(error) != self.view.health_detail:
                log.warning("cannot ask Elasticsearch at %s: %s", address, error)
            self.view = MonitorView("unknown", str(error), self.view.drain, self._clock())
        finally:
            client.close()
        return bool(leaving)

    def _drain(self, client: ElasticsearchClient, state: ClusterState) -> tuple[DrainStatus, ...]:
        seen: Observation = client.observe()
        plan = plan_drain(state, self.config.framework_name, self.config.master_nodes, seen)
        if plan.set_excluded is not None:
            log.info("setting cluster.routing.allocation.exclude._name to %r", ",".join(plan.set_excluded))
            client.set_excluded_names(plan.set_excluded)
        if plan.add_voting_exclusions:
            log.info("excluding %s from the voting configuration", ", ".join(plan.add_voting_exclusions))
            client.add_voting_exclusions(plan.add_voting_exclusions)
        if plan.clear_voting_exclusions:
            log.info("scale-down finished: clearing the voting configuration exclusions")
            client.clear_voting_exclusions()
        if not plan.nodes:
            self._cleanup_pending = False
            self._progress.clear()
            return ()
        # A drain is under way: clean up after it once it is over.
        self._cleanup_pending = True
        statuses = [self._status(client, node) for node in plan.nodes]
        for node_id in plan.stop:
            log.info("node %d: drained (no shards, nothing in flight); asking the engine to stop it", node_id)
            self._stop_node(node_id)
        return tuple(statuses)

    def _status(self, client: ElasticsearchClient, node: NodeDrain) -> DrainStatus:
        now = self._clock()
        last = self._progress.get(node.node_id)
        if last is None or last[0] != node.shards_left:
            self._progress[node.node_id] = (node.shards_left, now)
            last = self._progress[node.node_id]
        status, reason = node.status, node.reason
        if node.status in ("draining", "waiting") and now - last[1] > STALL_SECONDS:
            why = client.allocation_explain() or "Elasticsearch gives no reason"
            status, reason = "stalled", f"no progress for {now - last[1]:.0f}s: {why}"
        line = f"{status}: {reason}"
        if self._logged.get(node.node_id) != line:
            self._logged[node.node_id] = line
            log.info("node %d (%s) scale-down: %s", node.node_id, node.name, line)
        return DrainStatus(node.node_id, node.shards_left, status, reason)
