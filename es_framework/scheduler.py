"""The driver shell: pymesos' MesosSchedulerDriver on one side, the :class:`~es_framework.engine.Engine`
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
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from es_framework.config import Config
from es_framework.engine import (
    Accept,
    Acknowledge,
    Call,
    Decline,
    Engine,
    Kill,
    Reconcile,
    Revive,
    StoreConflictError,
    Suppress,
)
from es_framework.state_store import (
    Leadership,
    StateConflictError,
    StateStore,
    open_state_store,
    state_url_for_mesos_master,
)

log = logging.getLogger("es_framework.scheduler")

#: Mesos' default heartbeat interval; a subscription silent for HEARTBEAT_MISSES of them is dead.
HEARTBEAT_INTERVAL_S = 15.0
HEARTBEAT_MISSES = 5


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


class SchedulerShell:
    """Runs one engine against Mesos through pymesos, one event at a time on its own thread."""

    def __init__(
        self,
        config: Config,
        engine: Engine,
        *,
        driver_factory: Callable[..., Any] | None = None,
        may_act: Callable[[], bool] = lambda: True,
    ) -> None:
        self.config = config
        self.engine = engine
        self._may_act = may_act
        self._events: queue.Queue[_Event] = queue.Queue()
        self._stop = threading.Event()
        self._driver: Any = None
        self._driver_factory = driver_factory
        self._last_event = time.monotonic()
        self._worker = threading.Thread(target=self._work, name="es-engine", daemon=True)

    # --- pymesos callbacks: enqueue only, never raise -------------------------------------------------

    def registered(self, driver: Any, framework_id: Any, master_info: Any) -> None:
        self._put("registered", _value(framework_id))

    def reregistered(self, driver: Any, master_info: Any) -> None:
        self._put("registered", None)

    def disconnected(self, driver: Any) -> None:
        self._put("disconnected")

    def resourceOffers(self, driver: Any, offers: Any) -> None:
        self._put("offers", [_plain(o) for o in offers])

    def offerRescinded(self, driver: Any, offer_id: Any) -> None:
        self._touch()

    def statusUpdate(self, driver: Any, status: Any) -> None:
        self._put("update", _plain(status))

    def frameworkMessage(self, driver: Any, executor_id: Any, agent_id: Any, data: Any) -> None:
        self._touch()

    def slaveLost(self, driver: Any, agent_id: Any) -> None:
        self._put("log", f"agent {_value(agent_id)} lost")

    def executorLost(self, driver: Any, executor_id: Any, agent_id: Any, status: Any) -> None:
        self._put("log", f"executor {_value(executor_id)} on agent {_value(agent_id)} lost (status {status})")

    def error(self, driver: Any, message: Any) -> None:
        self._put("log", f"Mesos error: {message}")

    def processHeartBeat(self, driver: Any) -> None:
        self._touch()

    def _touch(self) -> None:
        self._last_event = time.monotonic()

    def _put(self, kind: str, payload: Any = None) -> None:
        try:
            self._touch()
            self._events.put(_Event(kind, payload))
        except Exception:  # a raise here would end pymesos' loop
            log.exception("could not queue %s event", kind)

    # --- the engine thread ----------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                event = self._events.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self._handle(event)
            except Exception:
                log.exception("error while handling %s; carrying on", event.kind)

    def _handle(self, event: _Event) -> None:
        may_act = self._may_act()
        if may_act and not self.engine.may_act:
            log.info("the state store is trustworthy again; re-reading state before acting")
            self.engine.reload()
        self.engine.may_act = may_act
        calls: list[Call] = []
        if event.kind == "registered":
            framework_id = event.payload or (self._driver.framework_id if self._driver else None)
            if framework_id:
                calls = self.engine.on_registered(framework_id)
        elif event.kind == "offers":
            calls = self.engine.on_offers(event.payload)
        elif event.kind == "update":
            calls = self.engine.on_update(event.payload)
        elif event.kind == "disconnected":
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
                driver.launchTasks(
                    [{"value": call.offer_id}], list(call.task_infos), {"refuse_seconds": call.refuse_seconds}
                )
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
    """The engine's :class:`~es_framework.engine.Store` on top of a :class:`StateStore`."""

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
    derived = state_url_for_mesos_master(config.mesos_master)
    if derived is None:
        raise ValueError(
            "--frameworkStateUrl is needed with an HTTP Mesos master: give zk://host:port[,...] (or file:///dir "
            "on a single machine); without durable state a restarted scheduler would lose the cluster"
        )
    return str(derived)


def run_scheduler(config: Config, should_stop: threading.Event) -> None:
    """The scheduler process: lead, recover state, register, serve until ``should_stop``."""
    store = open_state_store(
        state_url(config),
        framework_name=config.framework_name,
        cluster_name=config.cluster_name,
        session_timeout_ms=config.zookeeper_mesos_timeout_ms,
    )
    store.start()
    try:
        log.info("waiting to lead cluster %s (only one scheduler acts at a time)", config.cluster_name)
        while not store.acquire_leadership(timeout=1.0):
            if should_stop.is_set():
                return
        log.info("leading cluster %s", config.cluster_name)
        engine = Engine(config, EngineStore(store), clock=time.time)

        def may_act() -> bool:
            if store.leadership is Leadership.LOST and store.acquire_leadership(timeout=0.1):
                log.warning("leadership re-acquired after the ZooKeeper session expired")
            return store.may_act.is_set()

        SchedulerShell(config, engine, may_act=may_act).run(should_stop)
    finally:
        store.close()


def _value(obj: Any) -> str | None:
    if isinstance(obj, dict):
        value = obj.get("value")
        return value if isinstance(value, str) else None
    return obj if isinstance(obj, str) else None


def _plain(obj: Any) -> Any:
    """addict Dicts to plain dicts/lists (the engine works on plain JSON)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    return obj
