"""The driver shell: pymesos' MesosSchedulerDriver on one side, the :class:`~es_framework.core.engine.Engine`
on the other.

pymesos traps this module defends against (see the project's notes on pymesos 0.3.15):

- The driver sends TEARDOWN — and Mesos kills every node — when its loop ends without
  ``failover=True``, and an exception escaping a callback ends the loop. So the driver always runs
  with ``failover=True``, callbacks only enqueue events and never raise, and a driver whose loop
  died is replaced by a new one with the same framework id.
- ``failover_timeout`` defaults to 100 s in pymesos: it is always set from the configuration.
- ``reconcileTasks`` drops agent ids; RECONCILE is sent by hand with them.
- Nothing watches heartbeats: if no event arrives for several heartbeat intervals, the shell
  forces a reconnection.
- Calls made while disconnected are silently dropped by pymesos. That is safe here: a launch
  that never reached Mesos is answered UNKNOWN at the next reconciliation and its id is freed.
- A callback that fails anyway drops its event: an unacknowledged status update is re-sent by
  Mesos, and the offers of a failed ``resourceOffers`` are declined (an offer neither accepted nor
  declined would stay with us until the master rescinds it, which it never does by default).
- While the state store cannot be trusted (ZooKeeper suspended or lost), reconciliation answers
  are dropped and never re-sent; when it can be trusted again, state is re-read and every task
  reconciled again.

Also here: :func:`teardown_cluster` (``es-framework teardown``) and the end-to-end tests' crash
and raise hooks (:class:`TestHooks`, armed only through ``ESMESOS_TEST_*`` variables).
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from es_framework.config import Config
from es_framework.core.engine import (
    Accept,
    Acknowledge,
    Call,
    Counters,
    Decline,
    Engine,
    EngineEvent,
    Kill,
    Message,
    Reconcile,
    Revive,
    StoreConflictError,
    Suppress,
)
from es_framework.core.node_state import ClusterState, state_from_json, state_to_json
from es_framework.core.plan import SHORT_REFUSE_S
from es_framework.shell.state_store import (
    Leadership,
    StateConflictError,
    StateStore,
    open_state_store,
    state_url_for_mesos_master,
)
from identity.naming import volume_names
from identity.task_ids import try_node_id_from_task_id

log = logging.getLogger("es_framework.shell.scheduler")
T = TypeVar("T")

#: Mesos' default heartbeat interval; a subscription silent for HEARTBEAT_MISSES of them is dead.
HEARTBEAT_INTERVAL_S = 15.0
HEARTBEAT_MISSES = 5
#: How often the seed hosts are re-sent to every running node's executor.
SEED_RESEND_INTERVAL_S = 60.0
#: Status updates applied with one state write (and then acknowledged together).
UPDATE_BATCH_MAX = 1000


# --- test hooks -------------------------------------------------------------------------------------

#: Test hooks (for the end-to-end tests only; never set these in production). They are read from
#: the environment once, at start, and only when ``ESMESOS_TEST_HOOKS`` is exactly
#: ``I-understand-this-crashes-the-scheduler``; any other value, an unknown crash point or callback
#: name refuses to start. Not under ``ES_MESOS_``, which is the prefix of flags.
#:
#: - ``ESMESOS_TEST_CRASH_AT=after_launch_write``: ``os._exit(99)`` once a launch's record is
#:   written to the state store, before its ACCEPT goes to the master.
#: - ``ESMESOS_TEST_CRASH_AT=after_accept``: ``os._exit(99)`` right after the master has taken an
#:   ACCEPT, before any status update of the new task is recorded.
#: - ``ESMESOS_TEST_RAISE_IN=<pymesos callback name>`` (e.g. ``statusUpdate``): the first call of
#:   that callback raises ``RuntimeError`` inside it.
TEST_HOOKS_ENABLE_VAR = "ESMESOS_TEST_HOOKS"
TEST_HOOKS_ENABLE_VALUE = "I-understand-this-crashes-the-scheduler"
TEST_CRASH_VAR = "ESMESOS_TEST_CRASH_AT"
TEST_RAISE_VAR = "ESMESOS_TEST_RAISE_IN"
CRASH_POINTS = ("after_launch_write", "after_accept")
CALLBACKS = (
    "registered",
    "reregistered",
    "disconnected",
    "resourceOffers",
    "offerRescinded",
    "statusUpdate",
    "frameworkMessage",
    "slaveLost",
    "executorLost",
    "error",
    "processHeartBeat",
)
#: The exit status of a crash hook.
TEST_CRASH_STATUS = 99


@dataclass(frozen=True)
class TestHooks:
    """See :data:`TEST_HOOKS_ENABLE_VAR`. The default is no hook at all."""

    __test__ = False  # not a pytest test class

    crash_at: str | None = None
    raise_in: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TestHooks:
        """The hooks the environment arms; ``ValueError`` for anything half-set or misspelt."""
        crash_at = env.get(TEST_CRASH_VAR) or None
        raise_in = env.get(TEST_RAISE_VAR) or None
        enabled = env.get(TEST_HOOKS_ENABLE_VAR)
        if crash_at is None and raise_in is None and enabled is None:
            return cls()
        if enabled != TEST_HOOKS_ENABLE_VALUE:
            raise ValueError(
                f"test hooks ({TEST_CRASH_VAR}, {TEST_RAISE_VAR}) are for the end-to-end tests only and need "
                f"{TEST_HOOKS_ENABLE_VAR}={TEST_HOOKS_ENABLE_VALUE}; unset them"
            )
        if crash_at is not None and crash_at not in CRASH_POINTS:
            raise ValueError(f"{TEST_CRASH_VAR}={crash_at!r}: not one of {', '.join(CRASH_POINTS)}")
        if raise_in is not None and raise_in not in CALLBACKS:
            raise ValueError(f"{TEST_RAISE_VAR}={raise_in!r}: not one of {', '.join(CALLBACKS)}")
        return cls(crash_at=crash_at, raise_in=raise_in)

    @property
    def armed(self) -> bool:
        return self.crash_at is not None or self.raise_in is not None


class TornDownError(Exception):
    """The stored state belongs to a framework that ``es-framework teardown`` removed."""


def framework_info(config: Config, framework_id: str | None) -> dict[str, Any]:
    info: dict[str, Any] = {
        "user": "root" if config.use_docker else config.elasticsearch_user,
        "name": config.framework_name,
        "failover_timeout": config.failover_timeout_s,
        "checkpoint": True,
        "capabilities": [{"type": "PARTITION_AWARE"}],
        "labels": {"labels": [{"key": "es-mesos.cluster", "value": config.cluster_name}]},
    }
    if config.role != "*":
        info["roles"] = [config.role]
        info["capabilities"].append({"type": "MULTI_ROLE"})
    else:
        info["role"] = "*"
    if config.principal:
        info["principal"] = config.principal
    if framework_id:
        info["id"] = {"value": framework_id}
    return info


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
    events: tuple[EngineEvent, ...]


class SchedulerShell:
    """Runs one engine against Mesos through pymesos, one event at a time on its own thread."""

    def __init__(
        self,
        config: Config,
        engine: Engine,
        *,
        driver_factory: Callable[..., Any] | None = None,
        may_act: Callable[[], bool] = lambda: True,
        hooks: TestHooks = TestHooks(),
    ) -> None:
        self.config = config
        self.engine = engine
        self._may_act = may_act
        self._hooks = hooks
        self._raised = False
        self._events: queue.Queue[_Event] = queue.Queue()
        self._stop = threading.Event()
        self._driver: Any = None
        self._driver_factory = driver_factory
        self._last_event = time.monotonic()
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
        self._guard("registered", lambda: self._put("registered", _value(framework_id)))

    def reregistered(self, driver: Any, master_info: Any) -> None:
        self._guard("reregistered", lambda: self._put("registered", None))

    def disconnected(self, driver: Any) -> None:
        self._guard("disconnected", lambda: self._put("disconnected"))

    def resourceOffers(self, driver: Any, offers: Any) -> None:
        self._guard(
            "resourceOffers",
            lambda: self._put("offers", [_plain(o) for o in offers]),
            # An offer neither accepted nor declined stays with us until the master rescinds it
            # (never, without --offer_timeout): give it back.
            on_failure=lambda: self._put("decline", _offer_ids(offers)),
        )

    def offerRescinded(self, driver: Any, offer_id: Any) -> None:
        self._guard("offerRescinded", self._touch)

    def statusUpdate(self, driver: Any, status: Any) -> None:
        self._guard("statusUpdate", lambda: self._put("update", _plain(status)))

    def frameworkMessage(self, driver: Any, executor_id: Any, agent_id: Any, data: Any) -> None:
        self._guard("frameworkMessage", self._touch)

    def slaveLost(self, driver: Any, agent_id: Any) -> None:
        self._guard("slaveLost", lambda: self._put("log", f"agent {_value(agent_id)} lost"))

    def executorLost(self, driver: Any, executor_id: Any, agent_id: Any, status: Any) -> None:
        self._guard(
            "executorLost",
            lambda: self._put(
                "log", f"executor {_value(executor_id)} on agent {_value(agent_id)} lost (status {status})"
            ),
        )

    def error(self, driver: Any, message: Any) -> None:
        self._guard("error", lambda: self._put("log", f"Mesos error: {message}"))

    def processHeartBeat(self, driver: Any) -> None:
        self._guard("processHeartBeat", self._touch)

    def _guard(self, name: str, body: Callable[[], None], on_failure: Callable[[], None] | None = None) -> None:
        try:
            if self._hooks.raise_in == name and not self._raised:
                self._raised = True
                raise RuntimeError(f"test hook {TEST_RAISE_VAR}={name}: raising inside the callback")
            body()
        except Exception:  # a raise here would end pymesos' loop
            log.exception("the %s callback failed; its event is dropped (Mesos re-sends status updates)", name)
            if on_failure is not None:
                try:
                    on_failure()
                except Exception:
                    log.exception("the %s callback failed twice", name)

    def _touch(self) -> None:
        self._last_event = time.monotonic()

    def _put(self, kind: str, payload: Any = None) -> None:
        self._touch()
        self._events.put(_Event(kind, payload))

    # --- the engine thread ----------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stop.is_set():
            self.last_turn = time.monotonic()
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

    def master_address(self) -> str | None:
        """``host:port`` of the master the driver talks to now."""
        driver = self._driver
        master = getattr(driver, "master", None) if driver is not None else None
        return str(master) if master else None

    def _more_updates(self, first: _Event) -> _Event:
        """Status updates already queued behind ``first``, as one batch: the engine writes state once
        per batch (a reconciliation of N tasks would otherwise rewrite the state N times)."""
        batch = [first.payload]
        while len(batch) < UPDATE_BATCH_MAX:
            with self._events.mutex:  # peek: only this thread takes events, so the head stays ours
                following = self._events.queue[0] if self._events.queue else None
            if following is None or following.kind != "update":
                break
            try:
                batch.append(self._events.get_nowait().payload)
            except queue.Empty:
                break
        return _Event("updates", batch)

    def _handle(self, event: _Event) -> None:
        may_act = self._may_act()
        if may_act and not self.engine.may_act:
            log.info("the state store is trustworthy again; re-reading state before acting")
            self.engine.reload()
            self.engine.may_act = True
            # Reconciliation answers (no uuid) that arrived meanwhile were dropped and are never
            # re-sent: ask again.
            for call in self.engine.reconcile_calls():
                self._send(call)
        self.engine.may_act = may_act
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
            self.subscribed = True
            framework_id = event.payload or (self._driver.framework_id if self._driver else None)
            if framework_id:
                calls = self.engine.on_registered(framework_id)
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
        elif event.kind == "log":
            log.warning("%s", event.payload)
        for call in calls:
            self._send(call)

    def _send(self, call: Call) -> None:
        driver = self._driver
        if driver is None:
            return
        try:
            if isinstance(call, Accept):
                self._crash_hook("after_launch_write", call)
                driver.launchTasks(
                    [{"value": call.offer_id}], list(call.task_infos), {"refuse_seconds": call.refuse_seconds}
                )
                self._crash_hook("after_accept", call)
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

    def _crash_hook(self, point: str, call: Accept) -> None:
        if self._hooks.crash_at != point:
            return
        for task in call.task_infos:
            task_id = task["task_id"]["value"]
            log.critical(
                "node %s task %s: test hook %s=%s: exiting with status %d",
                try_node_id_from_task_id(task_id, self.config.framework_name),
                task_id,
                TEST_CRASH_VAR,
                point,
                TEST_CRASH_STATUS,
            )
        logging.shutdown()
        os._exit(TEST_CRASH_STATUS)

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

    # --- lifecycle ------------------------------------------------------------------------------------

    def _new_driver(self) -> Any:
        factory = self._driver_factory
        if factory is None:
            # Imported here: importing pymesos installs its own SIGINT handler process-wide.
            from pymesos import MesosSchedulerDriver  # noqa: PLC0415

            factory = MesosSchedulerDriver
        master = self.config.mesos_master
        if master is None:
            raise ValueError("no Mesos master configured (--mesosMaster or --zookeeperMesosUrl)")
        uri = master.url.removeprefix("http://") if master.kind == "http" else master.url
        secret = self.config.secret.reveal() if self.config.secret else None
        return factory(
            self,
            framework_info(self.config, self.engine.state.framework_id),
            uri,
            use_addict=True,
            implicit_acknowledgements=False,
            principal=self.config.principal,
            secret=secret,
            failover=True,
        )

    def run(self, should_stop: threading.Event) -> None:
        """Register and serve until ``should_stop`` is set (or Ctrl-C); then stop the driver *with
        failover*, so the nodes keep running and the next scheduler takes over."""
        self._worker.start()
        self._driver = self._new_driver()
        self._driver.start()
        try:
            while not should_stop.is_set():
                try:
                    while not should_stop.wait(1.0):
                        self._watch()
                except KeyboardInterrupt:
                    if not self._driver.aborted:
                        log.info("interrupted")
                        return
                    # pymesos re-raises its I/O thread's failure in the main thread via SIGINT.
                    self._restart("the Mesos driver's loop failed")
                except Exception:
                    log.exception("the Mesos driver's loop failed")
                    self._restart("the Mesos driver's loop failed")
        finally:
            log.info("stopping the driver with failover: the nodes keep running")
            try:
                self._driver.stop(failover=True)
            except Exception:
                log.exception("could not stop the driver cleanly")
            self._stop.set()

    def _watch(self) -> None:
        now = time.monotonic()
        if now - self._last_seed_resend > SEED_RESEND_INTERVAL_S:
            # Framework messages are best-effort: re-send the seed hosts now and then.
            self._last_seed_resend = now
            self._put("resend_seeds")
        if self._driver.aborted:
            self._restart("the Mesos driver stopped")
        elif time.monotonic() - self._last_event > HEARTBEAT_INTERVAL_S * HEARTBEAT_MISSES:
            log.error("no event from the master for %.0fs; reconnecting", HEARTBEAT_INTERVAL_S * HEARTBEAT_MISSES)
            self._touch()
            master = self._driver.master
            if master:
                self._driver.change_master(master)

    def _restart(self, why: str) -> None:
        log.error("%s; starting a new driver with the same framework id", why)
        try:
            self._driver.stop(failover=True)
        except Exception:
            log.exception("could not stop the old driver")
        self._driver = self._new_driver()
        self._driver.start()
        self._touch()


class EngineStore:
    """The engine's :class:`~es_framework.core.engine.Store` on top of a :class:`StateStore`."""

    #: The version the engine holds before any document exists.
    NO_DOCUMENT = -1

    def __init__(self, store: StateStore) -> None:
        self._store = store

    def load(self) -> tuple[dict[str, Any] | None, int]:
        stored = self._store.read()
        return (None, self.NO_DOCUMENT) if stored is None else (stored.document, stored.version)

    def save(self, document: dict[str, Any], version: int) -> int:
        try:
            if version == self.NO_DOCUMENT:
                return self._store.create(document).version
            return self._store.write(document, version).version
        except StateConflictError as exc:
            raise StoreConflictError(str(exc)) from exc


def state_url(config: Config) -> str:
    """Where state lives: ``--frameworkStateUrl``, else the ZooKeeper of ``--zookeeperMesosUrl``.

    With an HTTP master and no state URL there is nowhere durable to keep it, and state lost on a
    redeploy is how the Java framework lost clusters: refuse."""
    if config.state_url is not None:
        return config.state_url.reveal()
    if config.local_mode:
        return local_state_url(config)
    derived = state_url_for_mesos_master(config.mesos_master)
    if derived is None:
        raise ValueError(
            "--frameworkStateUrl is needed with an HTTP Mesos master: give zk://host:port[,...] (or file:///dir "
            "on a single machine); without durable state a restarted scheduler would lose the cluster"
        )
    return str(derived)


def local_state_url(config: Config) -> str:
    """Local mode's default state URL: ``file://<absolute --localWorkDir>/state``."""
    return (Path(config.local_work_dir).expanduser().absolute() / "state").as_uri()


def open_store(config: Config) -> StateStore:
    """The cluster's state store (not started)."""
    return open_state_store(
        state_url(config),
        framework_name=config.framework_name,
        cluster_name=config.cluster_name,
        session_timeout_ms=config.zookeeper_mesos_timeout_ms,
    )


@contextlib.contextmanager
def leading(config: Config, *, lock_timeout: float, busy: Exception) -> Iterator[StateStore]:
    """The state store, started and led by this process for the ``with`` block, closed after;
    ``busy`` is raised when another process holds the leader lock for ``lock_timeout`` seconds."""
    store = open_store(config)
    store.start()
    try:
        if not store.acquire_leadership(timeout=lock_timeout):
            raise busy
        yield store
    finally:
        store.close()


def torn_down_message(config: Config, state: ClusterState) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(state.torn_down_at or 0))
    return (
        f"cluster {config.cluster_name} (framework {config.framework_name}) was torn down at {when} "
        f"(framework id {state.framework_id or 'none'}); its state is kept only as a record and no scheduler "
        "starts on it. To start the cluster again (reusing its volumes), delete the state with "
        "'es-framework teardown --purge' and the same flags, or choose another --elasticsearchClusterName"
    )


def run_scheduler(config: Config, should_stop: threading.Event, hooks: TestHooks | None = None) -> None:
    """The scheduler process: lead, recover state, register, serve until ``should_stop``.

    Raises :class:`TornDownError` (before registering anything) when the state was torn down."""
    hooks = hooks or TestHooks()
    if hooks.armed:
        log.warning("TEST HOOKS ARMED (%s): this scheduler will crash or fail on purpose", hooks)
    store = open_store(config)
    store.start()
    try:
        log.info("waiting to lead cluster %s (only one scheduler acts at a time)", config.cluster_name)
        while not store.acquire_leadership(timeout=1.0):
            if should_stop.is_set():
                return
        log.info("leading cluster %s", config.cluster_name)
        engine = Engine(config, EngineStore(store), clock=time.time)
        if engine.state.torn_down_at is not None:
            raise TornDownError(torn_down_message(config, engine.state))

        def may_act() -> bool:
            if store.leadership is Leadership.LOST and store.acquire_leadership(timeout=0.1):
                log.warning("leadership re-acquired after the ZooKeeper session expired")
            return store.may_act.is_set()

        shell = SchedulerShell(config, engine, may_act=may_act, hooks=hooks)
        # Imported here: scheduler_api builds on this module.
        from es_framework.app.scheduler_api import start_api  # noqa: PLC0415

        api = start_api(config, shell)
        try:
            shell.run(should_stop)
        finally:
            api.stop()
    finally:
        store.close()


# --- teardown ---------------------------------------------------------------------------------------


class TeardownError(Exception):
    """The teardown could not be done (or finished); the message says what to do."""


class _TeardownScheduler:
    """pymesos callbacks for the short-lived teardown driver: wait for SUBSCRIBED (or a refusal)."""

    def __init__(self) -> None:
        self.subscribed = threading.Event()
        self.refusal: str | None = None

    def registered(self, driver: Any, framework_id: Any, master_info: Any) -> None:
        self.subscribed.set()

    def reregistered(self, driver: Any, master_info: Any) -> None:
        self.subscribed.set()

    def error(self, driver: Any, message: Any) -> None:
        self.refusal = str(message)
        self.subscribed.set()

    def __getattr__(self, name: str) -> Callable[..., None]:
        # Every other callback (offers, updates, heartbeats, ...): nothing to do.
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: None


def _send_teardown(config: Config, framework_id: str, driver_factory: Callable[..., Any] | None, timeout: float) -> str:
    """Subscribe as ``framework_id`` and send TEARDOWN (Mesos then kills every task of it).
    Returns what happened, in words; raises :class:`TeardownError` if the master was not reached."""
    if driver_factory is None:
        from pymesos import MesosSchedulerDriver  # noqa: PLC0415

        driver_factory = MesosSchedulerDriver
    master = config.mesos_master
    if master is None:
        raise TeardownError("no Mesos master configured (--mesosMaster or --zookeeperMesosUrl)")
    uri = master.url.removeprefix("http://") if master.kind == "http" else master.url
    callbacks = _TeardownScheduler()
    driver = driver_factory(
        callbacks,
        framework_info(config, framework_id),
        uri,
        use_addict=True,
        implicit_acknowledgements=False,
        principal=config.principal,
        secret=config.secret.reveal() if config.secret else None,
        failover=False,
    )
    driver.start()
    subscribed = False
    try:
        if not callbacks.subscribed.wait(timeout):
            raise TeardownError(
                f"the Mesos master {master} did not answer within {timeout:.0f}s; the state is marked torn down, "
                "run the teardown again to send TEARDOWN"
            )
        if callbacks.refusal is not None:
            if "removed" in callbacks.refusal.lower():
                return f"framework {framework_id} was already removed from Mesos ({callbacks.refusal})"
            raise TeardownError(f"the Mesos master refused framework {framework_id}: {callbacks.refusal}")
        subscribed = True
    finally:
        if not subscribed:
            driver.stop(failover=True)
    driver.stop(failover=False)  # pymesos sends TEARDOWN when a non-failover driver stops
    driver.join()
    return f"framework {framework_id} {_TORN_DOWN}"


_TORN_DOWN = "torn down: Mesos kills all of its tasks"


def teardown_cluster(
    config: Config,
    *,
    purge: bool = False,
    lock_timeout: float = 15.0,
    register_timeout: float = 30.0,
    driver_factory: Callable[..., Any] | None = None,
    clock: Callable[[], float] = time.time,
) -> list[str]:
    """``es-framework teardown``: mark the state torn down, send TEARDOWN with the stored framework id
    (Mesos kills the nodes), keep the volumes, and with ``purge`` delete the state. Returns the
    lines to print; raises :class:`TeardownError`."""
    busy = TeardownError(
        f"a scheduler is running for cluster {config.cluster_name} (it holds the leader lock); stop it "
        "first (e.g. scale its Marathon app to 0), then run the teardown again"
    )
    with leading(config, lock_timeout=lock_timeout, busy=busy) as store:
        engine_store = EngineStore(store)
        document, version = engine_store.load()
        if document is None:
            raise TeardownError(f"no state for cluster {config.cluster_name} of framework {config.framework_name}")
        state = state_from_json(document, config.framework_name)
        lines: list[str] = []
        if state.torn_down_at is None:
            state = replace(state, torn_down_at=clock())
            version = engine_store.save(state_to_json(state), version)
            lines.append(f"state of cluster {config.cluster_name} marked torn down")
        else:
            lines.append(f"state of cluster {config.cluster_name} was already marked torn down; sending TEARDOWN again")
        if state.framework_id is not None:
            outcome = _send_teardown(config, state.framework_id, driver_factory, register_timeout)
            lines.append(outcome)
            if state.nodes and outcome.endswith(_TORN_DOWN):
                for record in sorted(state.nodes.values(), key=lambda r: r.node_id):
                    log.info("node %d task %s: killed by TEARDOWN", record.node_id, record.task_id)
                lines.append(
                    "nodes killed: "
                    + ", ".join(f"node {r.node_id} (task {r.task_id})" for _, r in sorted(state.nodes.items()))
                )
        else:
            lines.append("no framework id stored: nothing registered with Mesos")
        ids = set(state.nodes) | set(range(1, state.desired_nodes + 1))
        if config.external_volume_driver or any(r.volumes for r in state.nodes.values()):
            kept = [name for node_id in sorted(ids) for name in volume_names(config.framework_name, node_id)]
            lines.append(f"volumes kept (not deleted): {', '.join(kept)}")
        else:
            lines.append(
                f"data kept on the agents under {config.data_dir}/{config.framework_name}/{config.cluster_name}"
            )
        if purge:
            store.delete()
            lines.append(f"state of cluster {config.cluster_name} deleted (--purge)")
        else:
            lines.append("a scheduler started on this state refuses to start; --purge deletes the state")
        return lines


def _value(obj: Any) -> str | None:
    if isinstance(obj, dict):
        value = obj.get("value")
        return value if isinstance(value, str) else None
    return obj if isinstance(obj, str) else None


def _offer_ids(offers: Any) -> list[str]:
    ids: list[str] = []
    for offer in offers or []:
        try:
            value = _value(offer.get("id"))
        except Exception:
            value = None
        if value:
            ids.append(value)
    return ids


def _plain(obj: Any) -> Any:
    """addict Dicts to plain dicts/lists (the engine works on plain JSON)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    return obj
