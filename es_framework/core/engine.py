"""The scheduler's engine: Mesos events in, state writes and Mesos calls out, in the safe order.

The engine knows nothing of pymesos or HTTP. Each ``on_*`` method takes one event, persists what
must survive a crash through the :class:`Store` it was given, and returns the calls to make to
Mesos as plain :class:`Call` values, which the driver shell (``es_framework.shell.driver``) sends. The
order is the guarantee:

- a launch's record is written *before* its ACCEPT is returned (a crash in between leaves the id
  reserved; reconciliation settles it), and if the write fails nothing is launched;
- a status update is applied and written *before* its ACKNOWLEDGE is returned (if the write
  fails, no acknowledgement: the agent resends the update);
- while the engine may not act (ZooKeeper session suspended or lost, or not the leader), offers
  are declined and nothing is launched or freed; updates are left unacknowledged so that Mesos
  resends them to whoever acts next.

At every registration the engine also records the node-shaping configuration
(:mod:`es_framework.core.config_record`): a changed one marks the running nodes outdated and
creates a ``configuration`` rollout of them (``engine_rollouts.configuration_rollout``). Offers
also teach the engine each agent's hostname, which fills in the hostname of tasks adopted through
reconciliation. The calls it returns are
:mod:`es_framework.core.mesos_calls`.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType

from es_framework.config import Config
from es_framework.core.blocked_agents import BlockedAgents
from es_framework.core.config_record import record_configuration
from es_framework.core.engine_agents import AgentChecks
from es_framework.core.engine_commands import OperatorCommands
from es_framework.core.engine_configuration import ConfigurationCommands
from es_framework.core.engine_maintenance import MaintenanceAnswers, MoveMemory
from es_framework.core.engine_replacement import AutomaticReplacement, ReplacementMemory
from es_framework.core.engine_rollouts import RolloutCommands
from es_framework.core.engine_security_switch import switch_kills
from es_framework.core.engine_state import Store
from es_framework.core.engine_stats import (
    EVENTS_KEPT,
    Counters,
    DeclineCounts,
    EngineEvent,
    agents_full,
    node_message,
    runs_demo_node,
)
from es_framework.core.es_versions import version_news
from es_framework.core.evaluation import OfferEvaluator
from es_framework.core.failures import Backoff, classify_failure, failure_report
from es_framework.core.history_notes import HistoryPersistence, noted_launches, noted_update
from es_framework.core.launch_finish import LaunchHook
from es_framework.core.launch_finish import offer_id as raw_offer_id
from es_framework.core.leader_check import check_state
from es_framework.core.mesos_calls import Accept, Acknowledge, Call, Decline, Kill, Reconcile, Revive, Suppress
from es_framework.core.node_state import FREEING_STATES, ClusterState, NodeRecord, NodeStateError, TaskState
from es_framework.core.offers import Offer, OfferError, parse_offer
from es_framework.core.plan import SHORT_REFUSE_S, DeclinedOffer, plan_offer_cycle
from es_framework.core.seed_hosts import SeedHostsSent, seed_host_messages, seed_host_updates
from es_framework.core.status_updates import Action, Decision, StatusUpdate, apply_status, parse_status
from es_framework.core.volume_tasks import plan_removals, release_after_stop, removal_wait
from identity.task_ids import new_launch_id, try_node_id_from_task_id

log = logging.getLogger("es_framework.core.engine")

#: ``TaskStatus.Reason`` of a launch Mesos refused because its offer was gone (rescinded, expired or
#: used): the master answers ``TASK_DROPPED`` (``TASK_LOST`` to a framework that is not partition-aware)
#: from ``Master::_accept`` (``src/master/master.cpp``).
OFFER_GONE = "REASON_INVALID_OFFERS"


# --- the engine -------------------------------------------------------------------------------------


class Engine(
    HistoryPersistence,  # the engine's state writes, with the nodes' histories noted in them
    OperatorCommands,
    RolloutCommands,
    ConfigurationCommands,
    AgentChecks,
    AutomaticReplacement,
    MaintenanceAnswers,
    LaunchHook,  # finish_launch, after_registration: what the shell adds (core/launch_finish.py)
):
    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        clock: Callable[[], float],
        new_launch_id: Callable[[], str] = new_launch_id,
        strategy: OfferEvaluator,
    ) -> None:
        self.config = self.flags_config = config
        self._store = store
        self._clock = clock
        self._new_launch_id = new_launch_id
        #: The offer strategy, handed in by the wiring (``strategies.strategy_for(config)``): the core
        #: defines what a strategy is (core/evaluation.py) and never imports one.
        self._strategy = strategy
        self.backoff = Backoff()
        self.agents = BlockedAgents(block_s=config.agent_failure_backoff_s)
        self.replacements = ReplacementMemory()
        self.declines = DeclineCounts()
        self.counters = Counters()
        #: Newest last; the engine thread appends, readers take a copy (``tuple(engine.events)``).
        self.events: collections.deque[EngineEvent] = collections.deque(maxlen=EVENTS_KEPT)
        #: Cleared while the state store cannot be trusted (session suspended/lost, not leader).
        self.may_act = True
        self.suppressed = False
        #: agent id -> hostname, learnt from offers (reconciliation answers carry no hostname).
        self.agent_hostnames: dict[str, str] = {}
        self.maintenance_said: dict[str, str] = {}
        self.moves = MoveMemory()
        self._seeds = SeedHostsSent()
        #: The records ``_seeds`` was worked out for: what was sent follows from them alone.
        self._seeded_for: Mapping[int, NodeRecord] | None = None
        self.state, self._version = self._read()
        self._apply_overrides()  # the flags plus what PUT /v1/cluster/configuration stored

    def reload(self) -> None:
        """Re-read the state, and the configuration overrides in it (another leader may have changed them)."""
        super().reload()
        self._apply_overrides()
        check_state(self.config, self.state)  # at every leadership: another leader may have upgraded the nodes

    # --- events -----------------------------------------------------------------------------------

    def on_registered(self, framework_id: str) -> list[Call]:
        """SUBSCRIBED (first registration or failover): remember the id, then reconcile everything."""
        calls: list[Call] = []
        new_state = self.state
        if self.state.framework_id == framework_id:
            self.counters.failovers += 1
        self._event(f"registered with Mesos as framework {framework_id}")
        if self.state.framework_id != framework_id:
            if self.state.framework_id is not None:
                log.warning("framework id changed from %s to %s", self.state.framework_id, framework_id)
            new_state = replace(new_state, framework_id=framework_id)
        # A changed configuration also creates (or replaces) the rollout that restarts the outdated nodes.
        new_state = self.rollout_on_change(new_state, record_configuration(new_state, self.config, now=self._clock()))
        if new_state is not self.state and not self._persist(new_state):
            log.error("could not record framework id %s and the configuration", framework_id)
        log.info("registered as %s", framework_id)
        calls.extend(self.reconcile_calls())
        calls.extend(self.pending_kills())
        calls.extend(self._offer_interest(force=True))
        calls.extend(self.seed_host_messages(resend=True))
        calls.extend(self.after_registration() if self.after_registration is not None else ())
        return calls

    def seed_host_messages(
        self, *, resend: bool = False, changed: tuple[ClusterState, Collection[int]] | None = None
    ) -> list[Call]:
        """Tell running nodes the master-eligible nodes' transport addresses (see
        :mod:`es_framework.core.seed_hosts`); ``resend`` sends the current version to every one.
        ``changed`` (a state and the node ids whose records differ from it) lets a status update
        look at its own nodes only; unchanged records cost nothing."""
        nodes = self.state.nodes
        if not resend and nodes is self._seeded_for:
            return []
        if not resend and changed is not None and changed[0].nodes is self._seeded_for:
            before, node_ids = changed
            self._seeds, messages = seed_host_updates(
                self._seeds, before, self.state, node_ids, self.config, now=self._clock()
            )
        else:
            self._seeds, messages = seed_host_messages(
                self._seeds, self.state, self.config, now=self._clock(), resend=resend
            )
        self._seeded_for = nodes
        return [*messages]

    def reconcile_calls(self) -> list[Call]:
        """Reconcile every known task explicitly (with its agent id), then all tasks implicitly."""
        explicit = tuple(self.state.reconcile_tasks())
        log.info("reconciling %d known task(s), then all tasks", len(explicit))
        self.counters.reconciliations += 1
        calls: list[Call] = [Reconcile(explicit)] if explicit else []
        calls.append(Reconcile(()))
        return calls

    def _learn_hostnames(self, offers: Sequence[Offer]) -> ClusterState:
        """Remember each offer's agent hostname; fill it into records that lack it (adopted tasks)."""
        for offer in offers:
            self.agent_hostnames[offer.agent_id] = offer.hostname
        return self._fill_hostnames(self.state)

    def _fill_hostnames(self, state: ClusterState) -> ClusterState:
        missing = {
            node_id: record
            for node_id, record in state.nodes.items()
            if not record.hostname and record.agent_id in self.agent_hostnames
        }
        if not missing:
            return state
        nodes = dict(state.nodes)
        for node_id, record in missing.items():
            nodes[node_id] = replace(record, hostname=self.agent_hostnames[record.agent_id])
            log.info(
                "node %d task %s: hostname %s learnt from agent %s",
                node_id,
                record.task_id,
                nodes[node_id].hostname,
                record.agent_id,
            )
        return replace(state, nodes=MappingProxyType(nodes))

    def on_offers(self, raw_offers: Sequence[object]) -> list[Call]:
        offers: list[Offer] = []
        malformed: list[str] = []
        for raw in raw_offers:
            try:
                offers.append(parse_offer(raw))
            except OfferError as exc:
                offer_id = raw_offer_id(raw)
                log.error("declining malformed offer %s: %s", offer_id, exc)
                self.declines.add("malformed", str(exc), self._clock())
                if offer_id:
                    malformed.append(offer_id)
        calls: list[Call] = []
        if malformed:
            calls.append(Decline(tuple(malformed), SHORT_REFUSE_S))
        if not offers:
            return calls
        if not self.may_act:
            log.warning("declining %d offer(s): state store not available, launching nothing", len(offers))
            self.declines.add("store_unavailable", "state store not available", self._clock())
            return [*calls, Decline(tuple(o.id for o in offers), SHORT_REFUSE_S)]

        self.counters.offers_received += len(offers)
        # Persisted on its own before the cycle: the cycle's state starts from it.
        self._request_moves({o.agent_id: o.unavailability for o in offers})
        known = self._learn_hostnames(offers)
        self._agents_offered(offers)
        offers, held = self._maintenance_declines(offers)  # never a new node on an agent under maintenance
        calls += held
        plan = plan_offer_cycle(
            known,
            offers,
            self.config,
            now=self._clock(),
            backoff=self.backoff,
            new_launch_id=self._new_launch_id,
            strategy=self._strategy,
            agents=self.agents,
        )
        declined = [d.offer for d in plan.declines]
        launched = noted_launches(plan.state, plan.launches, self._clock())  # in the nodes' histories
        new_state, removals = plan_removals(
            launched, self.config, declined, self._clock(), iter(self._new_launch_id, "")
        )
        if (plan.launches or removals or known is not self.state) and not self._persist(new_state):
            return [*calls, Decline(tuple(o.id for o in offers), SHORT_REFUSE_S)]
        for launch in plan.launches:
            log.info(
                "node %d task %s: launching on %s [%s] (offer %s)%s",
                launch.record.node_id,
                launch.record.task_id,
                launch.offer.hostname,
                launch.offer.agent_id,
                launch.offer.id,
                f", volumes {launch.record.volumes[0]}, {launch.record.volumes[1]}" if launch.record.volumes else "",
            )
            task_info = launch.task_info if self.finish_launch is None else self.finish_launch(launch, raw_offers)
            calls.append(Accept(launch.offer.id, (task_info,), SHORT_REFUSE_S))
            self.counters.offers_accepted += 1
            self._event(
                f"launching on {launch.offer.hostname} (task {launch.record.task_id})",
                launch.record.node_id,
                launch.record.state.value,
            )
        for removal in removals:
            entry = removal.removal
            log.info(
                "node %d task %s: removing volumes %s on %s [%s] (attempt %d, released by %s)",
                entry.node_id,
                entry.task_id,
                ", ".join(entry.volumes),
                entry.hostname,
                entry.agent_id,
                entry.attempts,
                entry.reason,
            )
            self._event(f"removing volumes {', '.join(entry.volumes)} (task {entry.task_id})", entry.node_id)
            calls.append(Accept(removal.offer_id, (removal.task_info,), SHORT_REFUSE_S))
        used = {removal.offer_id for removal in removals}
        # Offers come back in time for the next removal that is due (a failed one backs off).
        wait = removal_wait(new_state, self.config, self._clock())
        by_refuse: dict[float, list[str]] = {}
        for decline in plan.declines:
            if decline.offer.id in used:
                continue
            self._declined(decline)
            refuse = decline.refuse_seconds if wait is None else min(decline.refuse_seconds, max(SHORT_REFUSE_S, wait))
            by_refuse.setdefault(refuse, []).append(decline.offer.id)
        calls.extend(Decline(tuple(ids), refuse) for refuse, ids in sorted(by_refuse.items()))
        if plan.launches:
            log.info("%s", self._describe())
        calls.extend(self._offer_interest())
        calls.extend(self.seed_host_messages())
        return calls

    def _declined(self, decline: DeclinedOffer) -> None:
        """Count a decline under its first failing rule; log that rule, the others that failed too,
        and (DEBUG) every rule's outcome."""
        self.declines.add(decline.rule, decline.reason, self._clock(), decline.outcomes)
        others = [o.rule for o in decline.verdict.failures if o.rule != decline.rule]
        log.info(
            "offer %s from %s [%s] declined for %gs: %s: %s%s",
            decline.offer.id,
            decline.offer.hostname,
            decline.offer.agent_id,
            decline.refuse_seconds,
            decline.rule,
            decline.reason,
            f" (also failing: {', '.join(others)})" if others else "",
        )
        if log.isEnabledFor(logging.DEBUG):
            log.debug("offer %s, every rule: %s", decline.offer.id, decline.verdict.explain())

    def on_update(self, raw_status: object) -> list[Call]:
        return self.on_updates([raw_status])

    def on_updates(self, raw_statuses: Sequence[object]) -> list[Call]:
        """Apply a batch of status updates with **one** state write, then acknowledge them all.

        If the write fails, none is acknowledged (Mesos resends them) and nothing changes.
        Reconciling N tasks thus costs one write, not N writes of an N-node document."""
        updates: list[StatusUpdate] = []
        for raw in raw_statuses:
            try:
                updates.append(parse_status(raw))
            except NodeStateError as exc:
                log.error("ignoring malformed status update: %s", exc)
        if not updates:
            return []
        if not self.may_act:
            for update in updates:
                log.warning("task %s: %s left unacknowledged: state store not available", update.task_id, update.state)
            return []
        new_state = before = self.state
        applied: list[tuple[StatusUpdate, Decision, bool, bool, NodeRecord | None]] = []
        # Node ids whose records this batch changed (None: unknown, an adoption may fill in others).
        touched: set[int] | None = set()
        for update in updates:
            holder = new_state.holder_of(
                update.task_id, try_node_id_from_task_id(update.task_id, self.config.framework_name)
            )
            # A record written before a crash whose ACCEPT never went out: reconciliation answers GONE
            # or UNKNOWN for it. That is no failure of the node, so it is not backed off.
            never_launched = (
                holder is not None
                and holder.state is TaskState.LAUNCHING
                and update.reason == "REASON_RECONCILIATION"
                and update.state in (TaskState.GONE, TaskState.UNKNOWN, TaskState.LOST)
            )
            intended = holder is not None and holder.stopping is not None
            new_state, decision = apply_status(new_state, update, self.config.framework_name, now=self._clock())
            if decision.action is Action.FREE and decision.node_id is not None and holder is not None:
                new_state = release_after_stop(new_state, self.config, decision.node_id, holder.stopping, self._clock())
            new_state = noted_update(new_state, holder, update, decision, self._clock())  # a failure, not a RUNNING
            if decision.action is Action.ADOPT:
                new_state, touched = self._fill_hostnames(new_state), None
            elif touched is not None and decision.node_id is not None and decision.action is not Action.IGNORE:
                touched.add(decision.node_id)
            node = f"node {decision.node_id}" if decision.node_id is not None else "no node"
            reported = update.report.version if update.report is not None else None
            if reported and (holder is None or holder.version != reported):  # a task's first report, or a new one
                mismatch = version_news(reported, None, self.config.target_version)
                if mismatch is not None:
                    log.warning("%s task %s: %s", node, update.task_id, mismatch)
            # A running executor repeats TASK_RUNNING with every health report: routine, so DEBUG.
            log.log(
                logging.DEBUG if decision.duplicate else logging.INFO,
                "%s task %s: %s (%s): %s",
                node,
                update.task_id,
                update.state,
                update.reason or "-",
                decision.reason,
            )
            applied.append((update, decision, never_launched, intended, holder))
            if decision.action is not Action.IGNORE:
                self._event(
                    f"{update.state.value}{f' ({update.reason})' if update.reason else ''}: {decision.reason}"
                    # A demo node's executor says "Elasticsearch answers on …" too: say what it is.
                    + (
                        f" — {node_message(update.message, runs_demo_node(self.config, update.report))}"
                        if update.message
                        else ""
                    ),
                    decision.node_id,
                    update.state.value,
                )
        if new_state is not self.state and not self._persist(new_state):
            return []  # unacknowledged: the agents resend them
        calls: list[Call] = []
        progress = False
        for update, decision, never_launched, intended, holder in applied:
            calls.extend(self._after_update(update, decision, never_launched, intended, holder))
            progress = progress or decision.action is not Action.IGNORE
        if progress:
            log.info("%s", self._describe())
        calls.extend(self._offer_interest())
        calls.extend(self.seed_host_messages(changed=None if touched is None else (before, touched)))
        calls.extend(self.release_inverse_offers())  # a moved node has left its agent under maintenance
        return calls

    def _after_update(
        self, update: StatusUpdate, decision: Decision, never_launched: bool, intended: bool, holder: NodeRecord | None
    ) -> list[Call]:
        """Kills, back-off bookkeeping and the acknowledgement of one update already written (``holder``:
        the task's record before it, whose ``started_at`` shows a run this scheduler did not see)."""
        calls: list[Call] = [*switch_kills(holder, update)]  # a task a full restart stops, live again
        if decision.action is Action.KILL:
            calls.append(Kill(update.task_id, update.agent_id))
        if decision.action is Action.FREE and decision.node_id is not None:
            if intended:
                # Stopped on purpose (restart, replace, scale-down): no failure, no back-off.
                log.info("node %d task %s: stopped as asked (%s)", decision.node_id, update.task_id, update.state)
            elif never_launched:
                log.info(
                    "node %d task %s: the launch never reached Mesos (%s on reconciliation); relaunching without "
                    "back-off",
                    decision.node_id,
                    update.task_id,
                    update.state,
                )
            elif update.reason == OFFER_GONE:
                # Mesos refused the launch itself (Master::_accept: the offer was rescinded or already
                # used): the task never ran, so it says nothing about the node. Relaunch on the next offer.
                log.info(
                    "node %d task %s: %s (%s): the launch's offer was no longer valid; relaunching on the next "
                    "offer without back-off",
                    decision.node_id,
                    update.task_id,
                    update.state,
                    update.reason,
                )
                calls.extend([] if self.suppressed else [Revive()])
            elif (blocked := self._agent_check_failed(update, decision.node_id)) is not None:
                calls.extend(blocked)  # the agent's fault, not a crash loop of the node: no back-off
            elif update.state in FREEING_STATES and update.state is not TaskState.FINISHED:
                kind, now, why = classify_failure(update), self._clock(), update.message or ""
                self.backoff = self.backoff.failed(
                    decision.node_id, kind, why, now, update.task_id, record=holder, ended_at=update.timestamp
                )
                wait = self.backoff.wait(decision.node_id, now)
                record = self.backoff.failures[decision.node_id]
                level, line = failure_report(decision.node_id, update.task_id, record, wait, update.reason)
                log.log(level, "%s", line)
                # Agents declined meanwhile may stay filtered for minutes: REVIVE clears that (see failures.py).
                calls.extend([Revive()] if wait == 0 and not self.suppressed else [])
        if update.state is TaskState.RUNNING and decision.node_id is not None:
            self.backoff = self.backoff.running(update, self.state.nodes.get(decision.node_id), self._clock())
        if update.uuid is not None and update.agent_id is not None:
            calls.append(Acknowledge(update.agent_id, update.task_id, update.uuid))
        return calls

    def _event(self, message: str, node_id: int | None = None, state: str | None = None) -> None:
        self.events.append(EngineEvent(self._clock(), message, node_id, state))

    def _offer_interest(self, *, force: bool = False) -> list[Call]:
        """SUPPRESS when no node is missing, REVIVE when one is; only on a change, or when ``force``d
        (after registration, when the master's idea of our suppression is unknown). Called after
        every change of the state, so it also follows which missing nodes wait for an offer, and logs
        them with the decline reasons by count once per change of (ids, top reason)."""
        waiting = self.declines.track(
            self.state,
            self._clock(),
            lambda: agents_full(self.state, self.agents.seen, self.config.max_nodes_per_agent),
        )
        if waiting is not None:
            log.info("%s", waiting)
        removing = bool(self.state.volume_removals) and removal_wait(self.state, self.config, self._clock()) is not None
        wants = self.state.missing_nodes > 0 or removing
        if wants and (self.suppressed or force):
            self.suppressed = False
            log.info(
                "reviving offers: %d node(s) missing%s",
                self.state.missing_nodes,
                ", volumes to remove" if removing else "",
            )
            return [Revive()]
        if not wants and (not self.suppressed or force):
            self.suppressed = True
            log.info("suppressing offers: all %d node(s) placed", self.state.desired_nodes)
            return [Suppress()]
        return []
