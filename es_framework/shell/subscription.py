"""A scheduler holds a Mesos subscription only while it holds the leader lock.

Mesos fails a framework over to whoever SUBSCRIBEs last with its id: ``Master::failoverFramework``
(``src/master/master.cpp``) sends the old subscription an ERROR event with the message
``Framework failed over`` and ``Framework::updateConnection`` (``src/master/framework.cpp``) closes
it. pymesos then subscribes again at once on every closed stream, so two schedulers that both keep
a driver running take the framework from each other without end (seen on a real Mesos 1.12 master:
42 subscriptions in 45 s, and a killed node not replaced within 3 minutes). The leader lock
(:mod:`es_framework.shell.state_store`) is what decides who leads, so the driver shell
(:mod:`es_framework.shell.driver`) follows it:

- **Lock lost** (:attr:`Leadership.LOST`: the ZooKeeper session expired; :attr:`Leadership.NOT_LEADER`):
  stop the driver *with failover* — no TEARDOWN, Mesos keeps the framework and its tasks for the
  next leader — and wait for the lock. Once it is held again, re-read the state, subscribe with a
  new driver and reconcile. The process stays up (rather than exiting for Marathon to restart it):
  a ZooKeeper outage takes the lock from every scheduler at once, and one that exited would be
  gone for good outside Marathon, or restart-loop under it while ZooKeeper is down; the store
  already re-acquires the lock, and the engine already re-reads state, in place.
- **An ERROR event** (``Framework failed over``, or any other): stop that driver and never reconnect
  with it, as Mesos' own scheduler driver aborts on every error (``SchedulerProcess::error``,
  ``src/sched/sched.cpp``). A new subscription follows only through the checked path below, after
  a back-off that grows with consecutive errors (an error other than a failover repeats itself).
- **Connection in doubt** (:attr:`Leadership.SUSPENDED`: ZooKeeper unreachable, the session maybe
  still alive): act on nothing (the engine's ``may_act``), but keep the subscription already open,
  so that a ZooKeeper blip (a ZooKeeper leader election takes seconds) does not cost a
  re-subscription and a full reconciliation. Offers that arrive meanwhile are declined through it
  (DECLINE changes nothing we own; holding them would keep the resources from every framework until
  the subscription ends, as the master never rescinds them by default), and nothing else is sent.
  No *new* subscription is opened while suspended: a stream that closes then is let go. Suspended
  for longer than the session timeout, the session has expired on the server and another scheduler
  may lead: the subscription is let go as if the lock were lost — the rule Mesos applies to its own
  masters (``GroupProcess::timedout`` in ``src/zookeeper/group.cpp`` declares the session expired
  after one session timeout without a connection, and ``Master::lostCandidacy`` exits).
- **Only the leader talks to Mesos**: a call goes out only while the lock is held
  (:func:`may_send`), the one exception being DECLINE while suspended (above). A call that races
  with a failover anyway carries the old stream's ``Mesos-Stream-Id`` and is refused by the master
  (``400`` stream id mismatch, or ``403 Framework is not subscribed``, ``src/master/http.cpp``).

A (re)subscription is opened only through one checked path (:meth:`MesosSubscription.open_if_leading`):
hold the lock, re-read the state from the store — a round trip that fails if our ZooKeeper session
has expired, so a scheduler that merely *believes* it leads cannot pass — check the lock again,
then start a new driver with the stored framework id. A leader whose subscription a scheduler
without the lock took in a race thus takes it back once; the other one, failing the check, does not.

What an operator sees: one WARNING when a subscription is let go, saying why and that the driver
was stopped with failover; one WARNING "lost the leader lock" when the lock is lost after the
subscription already went (a failover error first); "holding the leader lock again" when it is
back. Meanwhile the process keeps its REST API up: reads show the state last known and
``registered: false``, changes answer 503 (the engine acts on nothing).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from es_framework.core.leader_check import StateRefusedError
from es_framework.core.mesos_calls import Call, Decline
from es_framework.core.node_state import ClusterState
from es_framework.shell.state_store import Leadership

#: The driver shell's logger: letting a subscription go is the shell's story, told in one place.
log = logging.getLogger("es_framework.shell.driver")

#: The ERROR message of ``Master::failoverFramework`` (src/master/master.cpp).
FAILED_OVER = "Framework failed over"
#: Back-off before subscribing again after an ERROR event: doubles per consecutive error, up to the cap.
ERROR_BACKOFF_S = 1.0
ERROR_BACKOFF_MAX_S = 60.0
#: How long one attempt to take the leader lock back waits.
LOCK_WAIT_S = 1.0


class LeaderLock(Protocol):
    """What the driver shell needs of the leader lock; a :class:`~es_framework.shell.state_store.StateStore`
    is one."""

    @property
    def leadership(self) -> Leadership: ...

    def acquire_leadership(self, timeout: float | None = None) -> bool: ...


class _AlwaysLeader:
    """The lock of a shell that has no store (unit tests, tools): always held."""

    @property
    def leadership(self) -> Leadership:
        return Leadership.LEADER

    def acquire_leadership(self, timeout: float | None = None) -> bool:
        return True


ALWAYS_LEADER: LeaderLock = _AlwaysLeader()


def may_send(status: Leadership, call: Call) -> bool:
    """Whether ``call`` may go to Mesos while the lock is ``status``: everything while leading,
    only DECLINE (through a subscription already open) while suspended, nothing otherwise."""
    if status is Leadership.LEADER:
        return True
    return status is Leadership.SUSPENDED and isinstance(call, Decline)


class SubscriptionGate:
    """When to let a subscription go and when a new one may be tried, from the lock's status as the
    shell observes it over time (``now`` is monotonic seconds). Not thread-safe: the shell's
    watch loop (one thread) calls :meth:`observe` and :meth:`why_let_go`; :meth:`note_error` and
    :meth:`note_subscribed` only replace numbers."""

    def __init__(self, session_timeout_s: float) -> None:
        #: How long a suspended connection may last before the session is presumed expired.
        self.session_timeout_s = session_timeout_s
        self._suspended_since: float | None = None
        self._errors = 0
        self._not_before = 0.0

    def observe(self, status: Leadership, now: float) -> None:
        if status is not Leadership.SUSPENDED:
            self._suspended_since = None
        elif self._suspended_since is None:
            self._suspended_since = now

    def why_let_go(self, status: Leadership, now: float) -> str | None:
        """Why an open subscription must be let go now, or ``None`` to keep it."""
        if status in (Leadership.LOST, Leadership.NOT_LEADER):
            return f"lost the leader lock (leadership {status.value}): another scheduler may lead now"
        if status is Leadership.SUSPENDED and self._suspended_since is not None:
            down = now - self._suspended_since
            if down > self.session_timeout_s:
                return (
                    f"the ZooKeeper connection has been down for {down:.1f}s, longer than the session timeout "
                    f"({self.session_timeout_s:g}s): the session is presumed expired and another scheduler may lead"
                )
        return None

    def note_error(self, now: float) -> float:
        """An ERROR event ended a subscription: the next may start no sooner than the returned back-off."""
        delay = min(ERROR_BACKOFF_MAX_S, ERROR_BACKOFF_S * 2.0**self._errors)
        self._errors += 1
        self._not_before = now + delay
        return delay

    def note_subscribed(self) -> None:
        """The master answered SUBSCRIBED: errors before it no longer count."""
        self._errors = 0

    def may_try(self, now: float) -> bool:
        """Whether the back-off after an error allows subscribing now."""
        return now >= self._not_before


class MesosSubscription:
    """The subscription this scheduler holds: which driver holds it (:attr:`driver`, ``None`` while
    none does), opened and let go by the rules of this module. Thread-safe: the watch loop, pymesos'
    thread (:meth:`on_error`, :meth:`on_disconnected`) and the engine thread all use it.

    ``new_driver(framework_id)`` makes a driver, not started; ``prepare(reread)`` runs on the engine
    thread and returns the state to subscribe from (re-read from the store first when ``reread``),
    raising when it cannot; ``let_go_done()`` is told after a subscription was let go."""

    def __init__(
        self,
        lock: LeaderLock,
        session_timeout_s: float,
        *,
        new_driver: Callable[[str | None], Any],
        prepare: Callable[[bool], ClusterState],
        let_go_done: Callable[[], None],
    ) -> None:
        self._lock = lock
        self._gate = SubscriptionGate(session_timeout_s)
        self._new_driver = new_driver
        self._prepare = prepare
        self._let_go_done = let_go_done
        self._mutex = threading.Lock()
        self._driver: Any = None
        #: Whether the state must be re-read before the next subscription: always, except for the first
        #: one while the lock has been held since the engine's initial load (another scheduler may have
        #: led in between).
        self._reread = False
        #: "Lost the leader lock" is logged once per loss.
        self._loss_logged = False
        #: Set when the stored state says the cluster was torn down: no subscription any more.
        self.finished = False

    @property
    def driver(self) -> Any:
        return self._driver

    @property
    def leadership(self) -> Leadership:
        return self._lock.leadership

    def note_subscribed(self) -> None:
        self._gate.note_subscribed()

    def on_error(self, driver: Any, message: str) -> None:
        """An ERROR event (on pymesos' thread, before it reads on): stopping the driver here keeps it
        from subscribing again when the master closes the stream right after."""
        delay = self._gate.note_error(time.monotonic())
        if message == FAILED_OVER:
            why = f"Mesos says {message!r}: another scheduler has subscribed as this framework"
        else:
            why = f"Mesos error {message!r}, which ends the subscription (the next one waits {delay:g}s)"
        if not self.let_go(driver, why):
            log.info("Mesos error on a driver already stopped: %s", message)

    def on_disconnected(self, driver: Any) -> bool:
        """pymesos calls this before it opens a new connection and SUBSCRIBEs on it: the last moment
        to keep a scheduler whose lock is in doubt from taking the framework. ``True`` when the
        stream was the one held now and pymesos may reconnect it (leading)."""
        status = self._lock.leadership
        current = driver is not None and driver is self._driver
        if current and status is not Leadership.LEADER:
            self.let_go(
                driver,
                f"the Mesos event stream closed while the leader lock is {status.value}: "
                "no new subscription until the lock is held",
            )
        return current and status is Leadership.LEADER

    def watch(self) -> Any:
        """Let the subscription go, or open one, as the lock now says; the driver to watch
        (heartbeats, seed re-sends) while leading, else ``None``."""
        now = time.monotonic()
        status = self._lock.leadership
        self._gate.observe(status, now)
        lost = status in (Leadership.LOST, Leadership.NOT_LEADER)
        driver = self._driver
        if driver is not None:
            why = self._gate.why_let_go(status, now)
            if why is not None:
                self._loss_logged = self._loss_logged or lost  # the line that lets go says so
                self.let_go(driver, why)
                return None
            if not driver.aborted:
                return driver if status is Leadership.LEADER else None
            self.let_go(driver, "the Mesos driver stopped", level=logging.ERROR)
        if lost and not self._loss_logged:
            self._loss_logged = True
            log.warning(
                "lost the leader lock (leadership %s): acting on nothing and sending nothing to Mesos; "
                "waiting for the lock",
                status.value,
            )
        self.open_if_leading()
        return None

    def let_go(self, driver: Any, why: str, *, level: int = logging.WARNING) -> bool:
        """Stop ``driver`` with failover if it holds the subscription now; ``False`` if it no longer did."""
        with self._mutex:
            if driver is None or driver is not self._driver:
                return False
        stopping = None
        try:  # an exception raised into this thread (pymesos' interrupt_main) must not leave it running
            with self._mutex:
                if driver is None or driver is not self._driver:
                    return False
                stopping = driver
                self._driver = None
            log.log(
                level,
                "%s: stopped the Mesos driver with failover (Mesos keeps the framework and its nodes for "
                "whoever leads); a new subscription only while this scheduler holds the leader lock, from "
                "state re-read",
                why,
            )
        finally:
            if stopping is not None:
                _stop(stopping)
        self._let_go_done()
        return True

    def open_if_leading(self) -> None:
        """Open a subscription through the one checked path: hold the lock, re-read the state (a
        ZooKeeper round trip our session must survive), hold the lock still, then a new driver
        with the stored framework id."""
        if self._driver is not None or self.finished or not self._gate.may_try(time.monotonic()):
            return
        if self._lock.leadership is not Leadership.LEADER:
            self._reread = True
        if self._lock.leadership in (Leadership.LOST, Leadership.NOT_LEADER):
            try:
                if not self._lock.acquire_leadership(timeout=LOCK_WAIT_S):
                    return
            except Exception as exc:
                log.debug("could not try the leader lock: %s", exc)
                return
            log.warning("holding the leader lock again")
            self._loss_logged = False
        if self._lock.leadership is not Leadership.LEADER:
            return  # suspended: wait until the connection is back (or the session lost)
        try:
            state = self._prepare(self._reread)
        except StateRefusedError as refused:
            # Another leader changed the cluster (e.g. upgraded it) while this one did not lead: its
            # flags no longer fit, so it stops, as it would refuse at start, rather than hold the lock
            # that a scheduler with the right flags needs.
            log.error("not subscribing to Mesos: %s; this scheduler stops (its flags do not fit the cluster)", refused)
            self.finished = True
            return
        except Exception as exc:
            log.warning("not subscribing to Mesos yet: %s", exc)
            return
        if self._lock.leadership is not Leadership.LEADER:
            self._reread = True  # what was read may be stale by the time the lock is held again
            return
        if state.torn_down_at is not None:
            log.error("the cluster's state was torn down while this scheduler did not lead; not subscribing")
            self.finished = True
            return
        with self._mutex:
            if self._driver is not None:
                return
            driver = self._driver = self._new_driver(state.framework_id)
            self._reread = True
        # Started once it holds the subscription: its first callbacks may come before start() returns.
        driver.start()

    def close(self, then: str) -> None:
        """Stop the driver with failover for good (the process ends); ``then`` says what happens to
        the nodes next (they keep running, except in local mode), for the log."""
        with self._mutex:
            driver, self._driver = self._driver, None
            self.finished = True
        if driver is not None:
            log.info("stopping the Mesos driver with failover (no TEARDOWN): %s", then)
            _stop(driver)


def _stop(driver: Any) -> None:
    """Stop ``driver`` with failover: no TEARDOWN, Mesos keeps the framework and its tasks."""
    try:
        driver.stop(failover=True)
    except Exception:
        log.exception("could not stop the driver cleanly")
