"""The scheduler's eye on Elasticsearch: cluster health for the API, and scaling down by draining.

:class:`ClusterMonitor` runs on its own thread, so that a slow node never delays Mesos events.
Every :data:`INTERVAL_S` seconds (faster while a drain runs) it asks one running node — a node
that stays, preferably — for the cluster's health. While any node id is above the desired count
(or the disruption ledger holds an entry) it reads the shard list, the node list and the
allocation exclusions, builds the disruption planner's view from them
(:func:`es_framework.core.disruption_seen.observe`; any error or unreadable answer is ``Unknown``:
nothing starts), and asks the engine, through the shell's command queue so the engine stays
single-threaded, to run the planner (``engine.plan_disruptions``): the engine persists the one
scale-down it admits before it answers. Only admitted leaving nodes are drained
(:func:`es_framework.core.drain.plan_drain` with ``admitted``): the monitor sets their allocation
exclusion and voting exclusions, reports progress (shards left per node) in the log and the API,
explains a drain that stalls (``_cluster/allocation/explain``), and asks the engine to stop each one
that is empty. A leaving node the planner holds back is shown with the predicate that blocks it.
Restarts (rollout steps, the operator's) are prepared, stopped and cleaned up in the same round
(:mod:`es_framework.core.rollout_prep`), and so are maintenance moves and the operator's replaces
(:mod:`es_framework.core.maintenance_moves`: node shutdown ``restart`` with external volumes, the
same allocation exclusion as scale-down with local disk); rounds go on while a node shutdown
``restart`` record that may be ours is left (from an earlier scheduler, or a restart whose node
rejoined after its ledger entry ended), so every such record is cleared once its node is back.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from es_framework.config import Config
from es_framework.core.disruption import Decision
from es_framework.core.disruption_seen import Observation as PlannerView
from es_framework.core.disruption_seen import Seen, Unknown, observe
from es_framework.core.drain import STALL_SECONDS, NodeDrain, Observation, leaving_nodes, plan_drain
from es_framework.core.engine_commands import PlannerRound
from es_framework.core.engine_rollouts import uses_shutdown_api
from es_framework.core.maintenance_moves import exclusions, prepare_moves
from es_framework.core.node_state import ClusterState, TaskState
from es_framework.core.operations import OperatorError
from es_framework.core.rollout_prep import prepare
from es_framework.shell.es_client import ElasticsearchClient, ElasticsearchError
from es_framework.shell.maintenance_client import carry_out_moves, without_held
from es_framework.shell.rollout_client import RolloutClient, carry_out, named_shutdowns, restart_records_left
from identity.naming import node_name

log = logging.getLogger("es_framework.shell.monitor")

INTERVAL_S = float(os.environ.get("ES_MESOS_MONITOR_INTERVAL", "5"))
DRAIN_INTERVAL_S = float(os.environ.get("ES_MESOS_DRAIN_INTERVAL", "2"))

#: Runs one planner round on the engine thread (``engine.plan_disruptions``) with the planner's view,
#: the leaving ids already excluded and the restarts prepared (ready to stop); raises OperatorError
#: or TimeoutError when it cannot.
Planner = Callable[[PlannerView, frozenset[int], frozenset[int]], PlannerRound]


class MonitorClient(RolloutClient):
    """The client plus the two raw reads the planner's view is built from; they are judged by
    :func:`~es_framework.core.disruption_seen.observe`, which turns any doubt into ``Unknown``."""

    def shard_rows(self) -> Any:
        return self._call("GET", "/_cat/shards?format=json&h=index,shard,prirep,state,node")

    def node_rows(self) -> Any:
        # ``master`` is ``*`` on the elected master (cat-nodes.html).
        return self._call("GET", "/_cat/nodes?format=json&h=name,master")


@dataclass(frozen=True)
class DrainStatus:
    node_id: int
    shards_left: int | None
    status: str
    reason: str
    #: The planner's predicate that holds this leaving node back (``max_unavailable``, …), if one does.
    predicate: str | None = None


@dataclass(frozen=True)
class MonitorView:
    """What the monitor last learnt (read by the API from another thread: replaced, never changed)."""

    health: str = "unknown"
    health_detail: str = ""
    drain: tuple[DrainStatus, ...] = ()
    checked_at: float | None = None
    #: What the planner last held back: (node id, kind, predicate, message).
    blocked: tuple[tuple[int, str, str, str], ...] = ()


class ClusterMonitor:
    def __init__(
        self,
        config: Config,
        state: Callable[[], ClusterState],
        stop_node: Callable[[int], None],
        *,
        clock: Callable[[], float] = time.time,
        client_factory: Callable[[str, str | None], MonitorClient] | None = None,
        may_act: Callable[[], bool] = lambda: True,
        plan: Planner | None = None,
        replace: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        #: The engine's planner round. Without one nothing is admitted, so no leaving node is drained
        #: (fail closed: a drain never starts outside the planner's count).
        self._plan = plan
        #: One round against the Mesos operator API while leading (machines DOWN for maintenance,
        #: automatic replacement: ``app/scheduler_api.py``); None: none.
        self._replace = replace
        #: Whether this scheduler leads now. Reading health is harmless from anywhere; changing the
        #: cluster's allocation settings from a state that may be stale (a scheduler that lost the
        #: leader lock) is not, so drains and their clean-up run only while this says yes.
        self._may_act = may_act
        self._client_factory = client_factory or (lambda address, password: MonitorClient(address, password=password))
        self._state = state
        self._stop_node = stop_node
        self._clock = clock
        self.view = MonitorView()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="es-monitor", daemon=True)
        #: node id -> (shards left, since when): a drain that does not move is reported as stalled.
        self._progress: dict[int, tuple[int | None, float]] = {}
        self._logged: dict[int, str] = {}
        #: Elasticsearch node ids by node name, read this round (the shutdown API takes ids).
        self._ids: dict[str, str] = {}
        self._blocked: tuple[tuple[int, str, str, str], ...] = ()
        self._waits: dict[int, str] = {}
        # Our exclusions may be left over from an earlier scheduler: look once at start.
        self._cleanup_pending = True
        #: Node shutdown ``restart`` records of ours may be left to clear with nothing else making a
        #: round read them: left by an earlier scheduler, or by an operator's restart whose ledger
        #: entry ended with its task, before the node rejoined (the record is cleared only once it
        #: has). True until a round reads none that could be ours.
        self._records_pending = True

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
            try:
                if self._replace is not None and self._may_act():
                    self._replace()
            except Exception:
                log.exception("the automatic-replacement round failed; trying again")
            self._stop.wait(DRAIN_INTERVAL_S if draining else INTERVAL_S)

    def _contact(self, state: ClusterState) -> str | None:
        running = [r for r in state.nodes.values() if r.state is TaskState.RUNNING and r.hostname and r.http_port]
        # Not a node being restarted or stopped: it is about to go away, or has just started and may
        # not have joined yet (a node without a master answers health only after its timeout).
        busy = {i for i, e in state.disruptions.items() if e.started_at is not None}
        busy |= set(state.rollout.in_progress) if state.rollout is not None else set()
        steady = [r for r in running if r.stopping is None and r.node_id not in busy]
        staying = [r for r in steady if r.node_id <= state.desired_nodes]
        chosen = sorted(staying or steady or running, key=lambda r: r.node_id)
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
            work = bool(
                leaving
                or self._cleanup_pending
                or self._records_pending
                or state.disruptions
                or state.rollout
                or state.rollout_restore
            )
            if work and self._may_act():
                drains = self._drain(client, state, health)
            elif work:
                # Not leading: the drain belongs to whoever leads; show what we last knew of it.
                drains = self.view.drain
            self.view = MonitorView(status, detail, drains, self._clock(), self._blocked)
        except ElasticsearchError as error:
            # Said once per problem, not every round: a cluster that is down is one event.
            if str(error) != self.view.health_detail:
                log.warning("cannot ask Elasticsearch at %s: %s", address, error)
            self.view = MonitorView("unknown", str(error), self.view.drain, self._clock())
        finally:
            client.close()
        # Rounds come faster while a drain or a restart is under way.
        restarts = any(e.kind.value in ("restart", "replace", "maintenance") for e in state.disruptions.values())
        return bool(leaving or restarts or state.rollout or state.rollout_restore)

    def _observe(
        self, client: MonitorClient, health: object, state: ClusterState
    ) -> tuple[Seen | Unknown, tuple[str, ...], tuple[str, ...]]:
        """The planner's view and the exclusion lists; any error or doubt makes the view Unknown.
        Node shutdowns are read only where every running node's version has the API."""
        self._ids = {}
        try:
            running = [r for r in state.nodes.values() if r.state is TaskState.RUNNING]
            shutdowns: dict[str, tuple[str, str]] = {}
            allocation: str | None = None
            restarts = any(
                e.kind.value in ("rollout", "restart", "replace", "maintenance") for e in state.disruptions.values()
            )
            if restarts or state.rollout is not None or state.rollout_restore or self._records_pending:
                self._ids = client.node_ids()
                allocation = client.allocation_enable()
                if running and all(uses_shutdown_api(r) for r in running):
                    records = client.shutdown_records()
                    shutdowns = named_shutdowns(records, self._ids)
                    self._records_pending = restart_records_left(records, self._ids, self.config.framework_name)
                else:
                    # Not read: we register none on such a version (the allocation path is used).
                    self._records_pending = False
            seen = observe(
                health, client.shard_rows(), client.node_rows(), shutdowns=shutdowns, allocation_enable=allocation
            )
            return seen, client.excluded_names(), client.voting_exclusions()
        except (ElasticsearchError, ValueError) as error:
            return Unknown(str(error)), (), ()

    def _drain(self, client: MonitorClient, state: ClusterState, health: object) -> tuple[DrainStatus, ...]:
        seen, excluded, voting = self._observe(client, health, state)
        fw = self.config.framework_name
        # Leaving nodes already excluded by our name but not in the ledger: a drain an earlier
        # release began; the engine takes them over (see engine.plan_disruptions).
        adopt = frozenset(r.node_id for r in leaving_nodes(state) if node_name(fw, r.node_id) in excluded)
        if self._plan is None:
            return self._held(state, None, "planner", "no disruption planner: nothing is drained")
        try:
            ready = prepare(state, seen, fw).ready | prepare_moves(state, seen, fw, excluded).ready
            outcome = self._plan(seen, adopt, ready)
        except (OperatorError, TimeoutError) as error:
            # Fail closed: without a stored ledger entry nothing is excluded, changed or stopped.
            return self._held(state, None, "planner", f"the planner did not run: {error}")
        state = outcome.state
        self._blocked = tuple((b.node_id, b.kind.value, b.predicate, b.message) for b in outcome.decision.blocked)
        self._log_waits(outcome.decision)
        # Restarts and maintenance moves: prepare what the planner admitted, put settings back, clear
        # finished shutdowns (not those of moves under way).
        moves = prepare_moves(state, seen, fw, excluded)
        carry_out(client, without_held(prepare(state, seen, fw), moves), fw, self._ids)
        carry_out_moves(client, moves, fw, self._ids)
        if isinstance(seen, Unknown):
            why = f"Elasticsearch did not answer: not safe ({seen.reason})"
            return self._held(state, outcome.decision, "elasticsearch_answered", why)
        observed = Observation(
            seen.shards_by_node,
            seen.unassigned_shards,
            seen.relocating_shards,
            seen.initializing_shards,
            excluded,
            voting,
        )
        admitted = outcome.admitted
        plan = plan_drain(state, fw, self.config.master_nodes, observed, admitted=admitted)
        # Local-disk maintenance moves are drained by the same exclusion list as scale-down.
        wanted = exclusions(plan.set_excluded if plan.set_excluded is not None else excluded, moves.exclude)
        if wanted != excluded:
            log.info("setting cluster.routing.allocation.exclude._name to %r", ",".join(wanted))
            client.set_excluded_names(wanted)
        if plan.add_voting_exclusions:
            log.info("excluding %s from the voting configuration", ", ".join(plan.add_voting_exclusions))
            client.add_voting_exclusions(plan.add_voting_exclusions)
        if plan.clear_voting_exclusions:
            log.info("scale-down finished: clearing the voting configuration exclusions")
            client.clear_voting_exclusions()
        if not leaving_nodes(state):
            self._cleanup_pending = False
            self._progress.clear()
            return ()
        # A drain is under way: clean up after it once it is over.
        self._cleanup_pending = True
        statuses = [self._status(client, node) for node in plan.nodes]
        statuses += self._held(state, outcome.decision, "planner", "waiting for the planner", skip=admitted)
        for node_id in plan.stop:
            log.info("node %d: drained (no shards, nothing in flight); asking the engine to stop it", node_id)
            self._stop_node(node_id)
        return tuple(sorted(statuses, key=lambda d: d.node_id))

    def _log_waits(self, decision: Decision) -> None:
        """What each waiting restart or rollout step waits for: once per change at INFO, else DEBUG."""
        waits = {
            b.node_id: f"{b.kind.value} waits: {b.predicate}: {b.message}"
            for b in decision.blocked
            if b.kind.value in ("rollout", "restart", "replace", "maintenance")
        }
        for node_id, line in sorted(waits.items()):
            level = logging.DEBUG if self._waits.get(node_id) == line else logging.INFO
            log.log(level, "node %d: %s", node_id, line)
        self._waits = waits

    def _held(
        self,
        state: ClusterState,
        decision: Decision | None,
        predicate: str,
        why: str,
        *,
        skip: frozenset[int] = frozenset(),
    ) -> tuple[DrainStatus, ...]:
        """Leaving nodes the drain does not act on this round, each with what holds it back: the
        planner's blocking predicate for the node when it named one, else ``predicate``: ``why``."""
        blocked = {b.node_id: b for b in decision.blocked} if decision is not None else {}
        out: list[DrainStatus] = []
        for record in leaving_nodes(state):
            if record.node_id in skip:
                continue
            b = blocked.get(record.node_id)
            name, message = (b.predicate, b.message) if b is not None else (predicate, why)
            status = "blocked" if name == "node_running" else "waiting"
            if record.node_id not in state.disruptions:
                self._progress.pop(record.node_id, None)  # a stall is counted from its admission
            line = f"{status}: {name}: {message}"
            if self._logged.get(record.node_id) != line:
                self._logged[record.node_id] = line
                log.info("node %d task %s scale-down: %s", record.node_id, record.task_id, line)
            out.append(DrainStatus(record.node_id, None, status, f"{name}: {message}", name))
        return tuple(out)

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
