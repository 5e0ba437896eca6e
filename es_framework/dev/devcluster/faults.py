"""Fault-injection switches of the development master (development tool, not for production; the
chaos runner, :mod:`es_framework.dev.chaos`, turns them on for a while).

Each switch does only what a real Mesos cluster can do:

- **Status updates** (:meth:`FaultSwitches.status_chaos`): the agent's status update is duplicated,
  delayed, and updates of different tasks overtake each other. A Mesos agent keeps one stream of
  updates per task and forwards only the oldest unacknowledged one (``TaskStatusUpdateStream::pending``,
  a queue, and ``next()`` in ``src/slave/task_status_update_manager.hpp``), re-sending it until it is
  acknowledged (``STATUS_UPDATE_RETRY_INTERVAL_MIN`` 10 s, doubling, in ``src/slave/constants.hpp``):
  the framework can see one update several times (MESOS-2198: "Scheduler#statusUpdate can be called
  multiple times for the same status update ... when the slave retransmits"). Nothing orders the
  streams of different tasks, so updates of two tasks may arrive in either order. One task's updates
  are never reordered: its next update is only forwarded after the previous one's acknowledgement,
  and every copy travels the same agent → master → framework connections, which keep their order.
  So a delayed copy holds back every later event of its task (a FIFO per task) and only tasks
  overtake each other.
- **Rescinded offers** (:meth:`FaultSwitches.rescind_chaos`): an offer is rescinded (``RESCIND``) right
  after it was sent, as a Mesos master does when the agent is removed, the framework fails over, the
  offer times out (``--offer_timeout``) or the allocator takes resources back.
- **Malformed offers** (:meth:`FaultSwitches.malformed_chaos`): beside the good offers of a round, the
  master sends copies of them with a field missing, of the wrong type or out of range (what
  ``mesos.proto``'s ``Offer``, ``Resource`` and ``Attribute`` require), and good offers of enormous
  size (10 000 extra attributes). A malformed copy holds no resources and is not outstanding: an
  ACCEPT of it is refused as an offer "no longer valid" (``TASK_DROPPED``), as for any unknown offer.
  The switch records which ones the framework declined or accepted.

The switches live beside the master's state (:func:`switches`), so the modules that forward updates
and make offers (:mod:`.status_updates`, :mod:`.offers`) find them without a new field on it. Every
function expects the master's lock held.
"""

from __future__ import annotations

import collections
import copy
import itertools
import random
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from es_framework.dev.devcluster.frameworks import Framework, Subscription

#: A field added to make an offer enormous: this many extra attributes.
ENORMOUS_ATTRIBUTES = 10_000
#: ... and one attribute's text this long.
ENORMOUS_TEXT = 64 * 1024
#: The share of the chosen offers made enormous rather than given a malformed copy.
ENORMOUS_SHARE = 0.25


@dataclass
class _Window:
    until: float
    chance: float
    rng: random.Random
    hits: int = 0

    def hit(self) -> bool:
        """The first chance of a window always hits (so a window in which anything flows is never a
        no-op), later ones with probability ``chance``."""
        if self.hits == 0 or self.rng.random() < self.chance:
            self.hits += 1
            return True
        return False


@dataclass
class _Held:
    release_at: float
    seq: int
    framework_id: str
    status: dict[str, Any]


@dataclass
class MalformedOffer:
    """A malformed copy the master sent: its id (``None``: the variant drops it) and what is wrong."""

    offer_id: str | None
    variant: str
    subscription: Subscription
    declined: bool = False
    accepted: bool = False


def _drop(path: tuple[str, ...]) -> Callable[[dict[str, Any]], None]:
    def mangle(offer: dict[str, Any]) -> None:
        target = offer
        for key in path[:-1]:
            target = target[key]
        target.pop(path[-1], None)

    return mangle


def _set(key: str, bad: object) -> Callable[[dict[str, Any]], None]:
    def mangle(offer: dict[str, Any]) -> None:
        offer[key] = copy.deepcopy(bad)

    return mangle


def _first_resource(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def mangle(offer: dict[str, Any]) -> None:
        resources = offer.get("resources") or [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}}]
        change(resources[0])
        offer["resources"] = resources

    return mangle


def _attributes(bad: object) -> Callable[[dict[str, Any]], None]:
    def mangle(offer: dict[str, Any]) -> None:
        offer["attributes"] = [*offer.get("attributes", []), copy.deepcopy(bad)]

    return mangle


#: What a malformed copy gets wrong, by name (each breaks a field ``mesos.proto`` requires or types).
MANGLES: dict[str, Callable[[dict[str, Any]], None]] = {
    "no id": _drop(("id",)),
    "no agent_id": _drop(("agent_id",)),
    "no hostname": _drop(("hostname",)),
    "hostname a number": _set("hostname", 42),
    "resources an object": _set("resources", {"cpus": 4}),
    "resource without name": _first_resource(lambda r: r.pop("name", None)),
    "resource of unknown type": _first_resource(lambda r: r.update(type="NUMBER")),
    "scalar a string": _first_resource(lambda r: r.update(type="SCALAR", scalar={"value": "four"})),
    "scalar beyond a double": _first_resource(lambda r: r.update(type="SCALAR", scalar={"value": 10**400})),
    "attributes a string": _set("attributes", "rack=r1"),
    "attribute without value": _attributes({"name": "rack", "type": "TEXT"}),
    "attribute without name": _attributes({"type": "TEXT", "text": {"value": "r1"}}),
    "unavailability malformed": _set("unavailability", {"start": "tomorrow"}),
}


class FaultSwitches:
    """The master's fault switches; all off until the chaos runner turns one on for a while."""

    def __init__(self) -> None:
        self._status: _Window | None = None
        self._rescind: _Window | None = None
        self._malformed: _Window | None = None
        #: Delayed status updates per task, each task's in order (a FIFO per task).
        self._held: dict[tuple[str, str], collections.deque[_Held]] = {}
        self._seq = itertools.count()
        #: The latest-produced update sent so far (an earlier one sent after it was overtaken).
        self._max_sent_seq = -1
        self._malformed_seq = itertools.count()
        self.malformed_offers: list[MalformedOffer] = []
        #: What the switches did: ``duplicated``, ``delayed``, ``reordered``, ``rescinded``, ``malformed``,
        #: ``enormous``.
        self.counts: Counter[str] = Counter()

    # ------------------------------------------------------------------ turning them on

    def status_chaos(self, until: float, chance: float, max_delay_s: float, seed: int) -> None:
        """Until ``until``, each forwarded update is duplicated (the first one always) and each copy
        delayed (up to ``max_delay_s``) with probability ``chance`` each."""
        self._status = _Window(until, chance, random.Random(seed))
        self._max_delay_s = max_delay_s

    def rescind_chaos(self, until: float, chance: float, seed: int) -> None:
        """Until ``until``, each offer sent is rescinded at once (the first one always, the others with
        probability ``chance``)."""
        self._rescind = _Window(until, chance, random.Random(seed))

    def malformed_chaos(self, until: float, chance: float, seed: int) -> None:
        """Until ``until``, each good offer sent gets a malformed copy or is made enormous (the first
        one always, the others with probability ``chance``)."""
        self._malformed = _Window(until, chance, random.Random(seed))

    @staticmethod
    def _active(window: _Window | None, now: float) -> _Window | None:
        return window if window is not None and now < window.until else None

    # ------------------------------------------------------------------ status updates

    def deliver_update(
        self, send: Callable[[str, dict[str, Any]], None], key: tuple[str, str], status: dict[str, Any], now: float
    ) -> None:
        """Put a task's update on its framework's stream through ``send(framework id, status)``:
        at once, or held back (then every later update of that task waits behind it), and perhaps twice."""
        window = self._active(self._status, now)
        copies = 1
        if window is not None and window.hit():
            copies = 2
            self.counts["duplicated"] += 1
        for _ in range(copies):
            queue = self._held.get(key)
            delay = 0.0
            if window is not None and window.rng.random() < window.chance:
                delay = window.rng.uniform(0.05, self._max_delay_s)
                self.counts["delayed"] += 1
            held = _Held(now + delay, next(self._seq), key[0], copy.deepcopy(status))
            if delay == 0.0 and not queue:
                self._sent(send, held)
                continue
            # Never before what its task already holds back: one task's updates keep their order.
            held.release_at = max(held.release_at, queue[-1].release_at if queue else 0.0)
            self._held.setdefault(key, collections.deque()).append(held)

    def release_due(self, send: Callable[[str, dict[str, Any]], None], now: float) -> None:
        """Send the held updates whose time has come, in the order of their times (each task's stay in
        order); one overtaken by a later-produced update of another task counts as reordered."""
        due = sorted(
            (held.release_at, held.seq, key)
            for key, queue in self._held.items()
            for held in queue
            if held.release_at <= now
        )
        for _, _, key in due:
            held = self._held[key].popleft()
            if not self._held[key]:
                del self._held[key]
            if held.seq < self._max_sent_seq:
                self.counts["reordered"] += 1
            self._sent(send, held)

    def _sent(self, send: Callable[[str, dict[str, Any]], None], held: _Held) -> None:
        self._max_sent_seq = max(self._max_sent_seq, held.seq)
        send(held.framework_id, held.status)

    def held_updates(self) -> int:
        return sum(len(q) for q in self._held.values())

    # ------------------------------------------------------------------ offers

    def rescind_now(self, now: float) -> bool:
        """Whether to rescind an offer just sent."""
        window = self._active(self._rescind, now)
        return window is not None and window.hit()

    def bad_offers(self, framework: Framework, good: list[dict[str, Any]], master_id: str, now: float) -> None:
        """Mix malformed copies into ``good`` (in place), or make a good one enormous."""
        window = self._active(self._malformed, now)
        if window is None or framework.subscription is None:
            return
        rng = window.rng
        for offer in list(good):
            if not window.hit():
                continue
            if rng.random() < ENORMOUS_SHARE:
                _enormous(offer)
                self.counts["enormous"] += 1
                continue
            variant = rng.choice(sorted(MANGLES))
            bad = copy.deepcopy(offer)
            bad["id"] = {"value": f"{master_id}-O-malformed-{next(self._malformed_seq)}"}
            MANGLES[variant](bad)
            offer_id = bad.get("id", {}).get("value") if isinstance(bad.get("id"), dict) else None
            self.malformed_offers.append(MalformedOffer(offer_id, variant, framework.subscription))
            self.counts["malformed"] += 1
            good.insert(rng.randrange(len(good) + 1), bad)

    def answered(self, offer_ids: object, accepted: bool) -> None:
        """A DECLINE (or ACCEPT) named these offer ids: note the malformed ones."""
        ids = {o.get("value") for o in offer_ids if isinstance(o, dict)} if isinstance(offer_ids, list) else set()
        for offer in self.malformed_offers:
            if offer.offer_id in ids:
                if accepted:
                    offer.accepted = True
                else:
                    offer.declined = True

    def off(self) -> None:
        """Every switch off (held updates still go out at their time)."""
        self._status = self._rescind = self._malformed = None


def _enormous(offer: dict[str, Any]) -> None:
    """A good offer, enormous: many extra attributes, one with a long text (all well-formed)."""
    extra = [{"name": f"chaos-{n}", "type": "TEXT", "text": {"value": str(n)}} for n in range(ENORMOUS_ATTRIBUTES)]
    extra.append({"name": "chaos-long", "type": "TEXT", "text": {"value": "x" * ENORMOUS_TEXT}})
    offer["attributes"] = [*offer.get("attributes", []), *extra]


_SWITCHES: weakref.WeakKeyDictionary[object, FaultSwitches] = weakref.WeakKeyDictionary()


def switches(state: object) -> FaultSwitches:
    """The fault switches of the master whose state is ``state`` (created off on first use)."""
    found = _SWITCHES.get(state)
    if found is None:
        found = _SWITCHES[state] = FaultSwitches()
    return found
