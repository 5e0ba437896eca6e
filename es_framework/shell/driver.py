"""The driver shell: pymesos' MesosSchedulerDriver on one side, the :class:`~es_framework.core.engine.Engine`
on the other.

pymesos traps this module defends against (see the project's notes on pymesos 0.3.15):

- The driver sends TEARDOWN — and Mesos kills every node — when its loop ends without
  ``failover=True``, and an exception escaping a callback ends the loop. So the driver always runs
  with ``failover=True``, callbacks only enqueue events and never raise, and a driver whose loop
  died is replaced by a new one with the same framework id (while leading).
- ``failover_timeout`` defaults to 100 s in pymesos: it is always set from the configuration.
- ``reconcileTasks`` drops agent ids; RECONCILE is sent by hand with them.
- Nothing watches heartbeats: a subscription silent for several heartbeat intervals is let go and a
  new driver subscribes through the checked path (:mod:`es_framework.shell.watchdog`).
- Calls made while disconnected are silently dropped by pymesos. That is safe here: a launch
  that never reached Mesos is answered UNKNOWN at the next reconciliation and its id is freed.
- A callback that fails anyway drops its event: an unacknowledged status update is re-sent by
  Mesos, and the offers of a failed ``resourceOffers`` are declined (an offer neither accepted nor
  declined would stay with us until the master rescinds it, which it never does by default).
- While the state store cannot be trusted (ZooKeeper suspended or lost), reconciliation answers
  are dropped and never re-sent; when it can be trusted again, state is re-read and every task
  reconciled again.
- pymesos subscribes again by itself whenever its event stream closes, ERROR or not. The shell
  holds a subscription only while this scheduler holds the leader lock, stops the driver (with
  failover) on an ERROR event or when the lock is lost, and opens every new subscription itself:
  the rules and their sources are in :mod:`es_framework.shell.subscription`.
- Importing pymesos replaces the SIGINT handler: :mod:`es_framework.shell.signals` sets Python's first.

A development tool may step in at the ordering boundaries through :class:`~es_framework.shell.hooks.Hooks`
(production runs with none).
"""

from __future__ import annotations

import base64
import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, TypeVar

from es_framework.config import Config
from es_framework.core import mesos_calls
from es_framework.core.engine import Engine
from es_framework.core.engine_stats import Counters, EngineEvent
from es_framework.core.evaluation import RuleOutcome
from es_framework.core.mesos_calls import Accept, Acknowledge, Call, Decline, Kill, Message, Reconcile, Revive, Suppress
from es_framework.core.node_state import ClusterState
from es_framework.core.plan import SHORT_REFUSE_S
from es_framework.shell.framework_info import new_driver, offers_unwanted
from es_framework.shell.hooks import NO_HOOKS, Hooks
from es_framework.shell.memory import PeriodicTrim
from es_framework.shell.mesos_objects import IgnoredCallbacks, guard_dispatch, offer_ids, plain, value_of
from es_framework.shell.queued_updates import QueuedUpdates, slim
from es_framework.shell.signals import interrupt_on_sigint
from es_framework.shell.state_store import Leadership
from es_framework.shell.subscription import ALWAYS_LEADER, LeaderLock, MesosSubscription, may_send
from es_framework.shell.watchdog import HeartbeatWatchdog

log = logging.getLogger("es_framework.shell.driver")
T = TypeVar("T")

#: How often the seed hosts are re-sent to every running node's executor.
SEED_RESEND_INTERVAL_S = 60.0
#: Status updates applied with one state write (and then acknowledged together).
UPDATE_BATCH_MAX = 1000
#: How often the watch loop looks at the lock, the driver and the heartbeats.
WATCH_INTERVAL_S = 1.0


@dataclass(frozen=True)
class _Event:
    kind: str
    payload: Any = None


#: How long an API request waits for the engine thread to take its command.
COMMAND_TIMEOUT_S = 15.0
#: The engine thread counts as stuck (``/health`` fails) when it has not turned for this long.
STUCK_AFTER_S = 60.0


@dataclass(frozen=True)
class Published:
    """What the engine thread publishes after every event, for readers on other threads (the API):
    immutable, replaced whole, never changed."""

    state: ClusterState
    registered: bool
    counters: Counters
    declines: Mapping[str, int]
    last_declines: Mapping[str, tuple[str, float]]
    #: Rule -> every rule's outcome, in order, for the last offer declined under it (empty when no
    #: rule judged that offer: malformed, or the state store unavailable).
    decline_explanations: Mapping[str, tuple[RuleOutcome, ...]]
    events: tuple[EngineEvent, ...]


class SchedulerShell(IgnoredCallbacks):
    """Runs one engine against Mesos through pymesos, one event at a time on its own thread; holds a
    Mesos subscription only while ``lock`` (the store's leader lock) is held."""

    def __init__(
        self,
        config: Config,
        engine: Engine,
        *,
        driver_factory: Callable[..., Any] | None = None,
        lock: LeaderLock = ALWAYS_LEADER,
        hooks: Hooks = NO_HOOKS,
    ) -> None:
        self.config = config
        self.engine, self._hooks, self._driver_factory = engine, hooks, driver_factory
        self._trim = PeriodicTrim()  # free C heap pages go back to the system (shell/memory.py)
        self._subscription = MesosSubscription(
            lock,
            config.zookeeper_mesos_timeout_ms / 1000.0,
            new_driver=self._new_driver,
            prepare=lambda reread: self.call(lambda: (self._prepare_subscription(reread), [])),
            let_go_done=lambda: self._put("let_go"),
        )
        self._events: queue.Queue[_Event] = queue.Queue()
        self._stop = threading.Event()
        #: Set once :meth:`run` is ending: the streams that close from then on are closed by us.
        self._stopping = threading.Event()
        #: A SUBSCRIBED that came while the engine could not act: handled once it can.
        self._deferred_registration: str | None = None
        #: The state was read for the subscription being opened (the engine thread's own flag).
        self._prepared = False
        self._watchdog = HeartbeatWatchdog()
        self._queued = QueuedUpdates()  # re-sent copies of a queued status update are dropped
        self._reload_problem: str | None = None  # why the state could not be re-read, said once
        self._last_seed_resend = time.monotonic()
        self._worker = threading.Thread(target=self._work, name="es-engine", daemon=True)
        self.subscribed = False
        #: When the engine thread last turned (monotonic); ``/health`` fails when it stops turning.
        self.last_turn = time.monotonic()
        self.published = self._publish()

    # --- pymesos callbacks: enqueue only, never raise -------------------------------------------------
    # An exception escaping a callback ends pymesos' loop; each callback therefore runs inside
    # _guard, which logs and swallows anything (an unacknowledged update is re-sent by Mesos).

    def registered(self, driver: Any, framework_id: Any, master_info: Any) -> None:
        self._guard("registered", lambda: self._put("registered", value_of(framework_id)))

    def reregistered(self, driver: Any, master_info: Any) -> None:
        self._guard("reregistered", lambda: self._put("registered", None))

    def disconnected(self, driver: Any) -> None:
        self._guard("disconnected", lambda: self._on_disconnected(driver))

    def _on_disconnected(self, driver: Any) -> None:
        ours = driver is not self._subscription.driver  # a driver this scheduler stopped (let go, or at the end)
        held = self._subscription.on_disconnected(driver)
        if held and not self._stopping.is_set():
            self._put("disconnected")  # the subscription held now, and pymesos reconnects it (leading)
        elif ours or held:
            # Said here: the engine thread may have stopped already.
            log.info("the Mesos event stream closed: this scheduler stopped that driver (no reconnection)")

    def resourceOffers(self, driver: Any, offers: Any) -> None:
        self._guard(
            "resourceOffers",
            lambda: self._put("offers", [plain(o) for o in offers]),
            # An offer neither accepted nor declined stays with us until the master rescinds it
            # (never, without --offer_timeout): give it back.
            on_failure=lambda: self._put("decline", offer_ids(offers)),
        )

    def statusUpdate(self, driver: Any, status: Any) -> None:
        # The condition runs first: it reads the update and admits it unless a copy is queued already.
        self._guard("statusUpdate", lambda: self._put("update", u) if self._queued.admit(u := slim(status)) else None)

    def inverseOffers(self, driver: Any, offers: Any) -> None:
        self._guard("inverseOffers", lambda: self._put("inverse_offers", [plain(o) for o in offers]))

    def slaveLost(self, driver: Any, agent_id: Any) -> None:
        self._guard("slaveLost", lambda: self._put("agent_lost", str(value_of(agent_id))))

    def executorLost(self, driver: Any, executor_id: Any, agent_id: Any, status: Any) -> None:
        self._guard(
            "executorLost",
            lambda: self._put(
                "log", f"executor {value_of(executor_id)} on agent {value_of(agent_id)} lost (status {status})"
            ),
        )

    def error(self, driver: Any, message: Any) -> None:
        self._guard("error", lambda: self._subscription.on_error(driver, str(message)))

    def _guard(self, name: str, body: Callable[[], None], on_failure: Callable[[], None] | None = None) -> None:
        self._watchdog.touch()  # every callback is an event from Mesos: the stream is alive
        try:
            self._hooks.before_callback(name)
            body()
        except Exception:  # a raise here would end pymesos' loop
            log.exception("the %s callback failed; its event is dropped (Mesos re-sends status updates)", name)
            if on_failure is not None:
                try:
                    on_failure()
                except Exception:
                    log.exception("the %s callback failed twice", name)
            return
        try:
            self._hooks.after_callback(name)
        except Exception:  # the event is queued already: nothing to undo
            log.exception("the after_callback hook of %s failed", name)

    def _put(self, kind: str, payload: Any = None) -> None:
        self._events.put(_Event(kind, payload))

    # --- the engine thread ----------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stop.is_set():
            self.last_turn = self._trim.turn()
            try:
                event = self._events.get(timeout=0.5)
            except queue.Empty:
                continue
            if event.kind == "update":
                event = self._more_updates(event)
            try:
                self._handle(event)
            except Exception:
                log.exception("error while handling %s; carrying on", event.kind)
            self.published = self._publish()

    def _publish(self) -> Published:
        engine = self.engine
        return Published(
            state=engine.state,
            registered=self.subscribed,
            counters=replace(engine.counters),
            declines=MappingProxyType(dict(engine.declines.by_rule)),
            last_declines=MappingProxyType(dict(engine.declines.last)),
            decline_explanations=MappingProxyType(dict(engine.declines.explanations)),
            events=tuple(engine.events),
        )

    # --- commands from other threads (the REST API) ---------------------------------------------------

    def call(self, body: Callable[[], tuple[T, list[Call]]], timeout: float = COMMAND_TIMEOUT_S) -> T:
        """Run ``body`` on the engine thread (the engine is single-threaded), send the calls it
        returns, and give back its result; its exception is re-raised here. Raises
        :class:`TimeoutError` if the engine thread does not take it within ``timeout`` seconds."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._put("command", (body, future))
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"the scheduler did not take the request within {timeout:.0f}s") from None

    @property
    def leading(self) -> bool:
        """Whether this scheduler holds the leader lock now (only then may anything act on the cluster)."""
        return self._subscription.leadership is Leadership.LEADER

    def master_address(self) -> str | None:
        """``host:port`` of the master the driver talks to now."""
        driver = self._subscription.driver
        master = getattr(driver, "master", None) if driver is not None else None
        return str(master) if master else None

    def _more_updates(self, first: _Event) -> _Event:
        """Status updates already queued behind ``first``, as one batch: the engine writes state once
        per batch (a reconciliation of N tasks would otherwise rewrite the state N times)."""
        batch = [first.payload]
        self._queued.taken(first.payload)
        while len(batch) < UPDATE_BATCH_MAX:
            with self._events.mutex:  # peek: only this thread takes events, so the head stays ours
                following = self._events.queue[0] if self._events.queue else None
            if following is None or following.kind != "update":
                break
            try:
                batch.append(self._events.get_nowait().payload)
            except queue.Empty:
                break
            self._queued.taken(batch[-1])
        return _Event("updates", batch)

    def _sync_may_act(self) -> None:
        """The engine acts only while the lock is held and a subscription is open to act through
        (a launch persisted while none is would only be undone by the next reconciliation). A
        subscription kept while the lock was in doubt re-reads the state and reconciles when it is
        held again; a new one was prepared from freshly read state (:meth:`_prepare_subscription`)."""
        if self._subscription.leadership is not Leadership.LEADER:
            self.engine.may_act = False
            self._prepared = False  # in doubt since the state was read: read it again
            return
        if self._subscription.driver is None:
            self.engine.may_act = False
            return
        if self.engine.may_act:
            return
        if self._prepared:
            self._prepared = False
            self.engine.may_act = True
            return
        if self._reload_problem is None:
            log.info("the state store is trustworthy again; re-reading state before acting")
        try:
            self.engine.reload()
        except Exception as exc:  # the event is still handled, by an engine that acts on nothing
            if str(exc) != self._reload_problem:
                self._reload_problem = str(exc)
                log.warning("could not re-read the state (%s); acting on nothing until it can be read", exc)
            return
        self._reload_problem = None
        self.engine.may_act = True
        # Reconciliation answers (no uuid) that arrived meanwhile were dropped and are never
        # re-sent: ask again (a SUBSCRIBED that came meanwhile reconciles as a registration).
        deferred, self._deferred_registration = self._deferred_registration, None
        calls = self.engine.on_registered(deferred) if deferred else self.engine.reconcile_calls()
        for call in calls:
            self._send(call)

    def _handle(self, event: _Event) -> None:
        self._sync_may_act()
        calls: list[Call] = []
        if event.kind == "command":
            body, future = event.payload
            if not future.set_running_or_notify_cancel():
                return  # the caller gave up waiting: do nothing it no longer expects
            try:
                result, calls = body()
            except BaseException as error:
                future.set_exception(error)
                return
            for call in calls:
                self._send(call)
            future.set_result(result)
            return
        if event.kind == "registered":
            calls = self._registered(event.payload)
        elif event.kind == "offers":
            calls = self.engine.on_offers(event.payload)
        elif event.kind == "updates":
            calls = self.engine.on_updates(event.payload)
        elif event.kind == "resend_seeds":
            calls = [*self.engine.seed_host_messages(resend=True), *self.engine.pending_kills()]
        elif event.kind == "decline":
            if event.payload:
                log.warning("declining %d offer(s) whose event could not be handled", len(event.payload))
                calls = [Decline(tuple(event.payload), SHORT_REFUSE_S)]
        elif event.kind == "disconnected":
            self.subscribed = False
            log.warning("disconnected from the Mesos master; pymesos reconnects")
        elif event.kind == "let_go":
            self.subscribed = False
        elif event.kind == "agent_lost":
            log.warning("agent %s lost", event.payload)
            calls = self.engine.on_agent_lost(event.payload)
        elif event.kind == "inverse_offers":
            calls = self.engine.on_inverse_offers(event.payload)
        elif event.kind == "log":
            log.warning("%s", event.payload)
        for call in calls:
            self._send(call)

    def _registered(self, framework_id: str | None) -> list[Call]:
        driver = self._subscription.driver
        if driver is None:
            log.info("SUBSCRIBED from a driver already stopped; ignored")
            return []
        self.subscribed = True
        self._subscription.note_subscribed()
        framework_id = framework_id or driver.framework_id
        if not framework_id:
            return []
        if not self.engine.may_act:
            log.warning(
                "subscribed as framework %s while the leader lock is in doubt; reconciling once it is held",
                framework_id,
            )
            self._deferred_registration = framework_id
            return []
        self._deferred_registration = None
        return self.engine.on_registered(framework_id)

    def _send(self, call: Call) -> None:
        driver = self._subscription.driver
        if driver is None:
            return
        status = self._subscription.leadership
        if not may_send(status, call):
            log.debug("not sending %s: the leader lock is %s", type(call).__name__.upper(), status.value)
            return
        try:
            if isinstance(call, Accept):
                self._hooks.after_launch_write(call)
                driver.launchTasks(
                    [{"value": call.offer_id}], list(call.task_infos), {"refuse_seconds": call.refuse_seconds}
                )
                self._hooks.after_accept(call)
            elif isinstance(call, Decline):
                driver.declineOffer([{"value": i} for i in call.offer_ids], {"refuse_seconds": call.refuse_seconds})
            elif isinstance(call, Kill):
                driver.killTask({"value": call.task_id})
            elif isinstance(call, Acknowledge):
                driver.acknowledgeStatusUpdate(
                    {"agent_id": {"value": call.agent_id}, "task_id": {"value": call.task_id}, "uuid": call.uuid}
                )
            elif isinstance(call, Reconcile):
                self._reconcile(driver, call)
            elif isinstance(call, mesos_calls.AnswerInverseOffers):  # pymesos' own calls, filters as for offers
                answer = driver.acceptInverseOffers if call.accept else driver.declineInverseOffer
                answer([{"value": i} for i in call.inverse_offer_ids], {"refuse_seconds": call.refuse_seconds})
            elif isinstance(call, Suppress):
                driver.suppressOffers()
            elif isinstance(call, Revive):
                driver.reviveOffers()
            elif isinstance(call, Message):
                driver.sendFrameworkMessage(
                    {"value": call.executor_id}, {"value": call.agent_id}, base64.b64encode(call.data).decode("ascii")
                )
        except Exception:
            log.exception("could not send %s to the master", type(call).__name__.upper())

    @staticmethod
    def _reconcile(driver: Any, call: Reconcile) -> None:
        # pymesos' reconcileTasks() drops agent ids, and without them the master answers UNKNOWN
        # for a task on an unreachable agent: build the call ourselves.
        if not driver.connected or not driver.framework_id:
            return
        driver._send(
            {
                "type": "RECONCILE",
                "framework_id": {"value": driver.framework_id},
                "reconcile": {"tasks": list(call.tasks)},
            }
        )

    # --- lifecycle: the watch loop on the caller's thread -----------------------------------------------

    def run(self, should_stop: threading.Event) -> None:
        """Subscribe and serve until ``should_stop`` is set (or SIGINT), holding a subscription only
        while leading; then stop the driver *with failover* (no TEARDOWN: Mesos keeps the nodes)."""
        subscription = self._subscription
        interrupt_on_sigint()
        self._worker.start()
        try:
            subscription.open_if_leading()
            while not should_stop.is_set() and not subscription.finished:
                try:
                    while not subscription.finished and not should_stop.wait(WATCH_INTERVAL_S):
                        self._watch()
                except KeyboardInterrupt:
                    # Only a SIGINT: pymesos re-raises its I/O thread's failure as that failure (an
                    # Exception, below), and the watch loop replaces the dead driver.
                    log.info("interrupted (SIGINT): stopping the scheduler")
                    return
                except Exception:
                    log.exception("error in the watch loop or the Mesos driver's thread; carrying on")
        finally:
            self._stopping.set()
            subscription.close(
                "local mode stops the development master and every executor and node next (state and volumes are kept)"
                if self.config.local_mode
                else "Mesos keeps the framework and its nodes running for the next scheduler"
            )
            self._stop.set()

    def _watch(self) -> None:
        driver = self._subscription.watch()
        if driver is None:
            return
        if not self.engine.may_act:  # lock held again: re-read and reconcile within a second, not at the next event
            self._put("wake")  # (a quiet cluster sends none; a dropped uuid-less TASK_LOST would wait 60 s)
        now = time.monotonic()
        if now - self._last_seed_resend > SEED_RESEND_INTERVAL_S:
            # Framework messages are best-effort: re-send the seed hosts now and then.
            self._last_seed_resend = now
            self._put("resend_seeds")
        silent = self._watchdog.why_expired() if self.subscribed else None
        if silent is not None:  # half-open: only a new driver, through the checked path, subscribes again
            self._subscription.let_go(driver, silent, level=logging.ERROR)

    def _new_driver(self, framework_id: str | None) -> Any:
        self._watchdog.touch()  # the heartbeat watchdog starts over with every subscription
        unwanted = lambda: offers_unwanted(self.engine.state)  # noqa: E731 (read at each (re)subscription)
        driver = new_driver(
            self.config, self, framework_id, failover=True, factory=self._driver_factory, suppressed=unwanted
        )
        return guard_dispatch(driver)

    def _prepare_subscription(self, reread: bool) -> ClusterState:
        """On the engine thread: the state the next subscription starts from."""
        if reread:
            log.info("leading: re-reading state before acting, then subscribing to Mesos again")
            self.engine.reload()
        self._deferred_registration = None
        self._prepared = True  # the engine acts once the new subscription's driver is in place
        return self.engine.state
