"""The heartbeat watchdog of a Mesos subscription.

The master sends a HEARTBEAT event every 15 s on a subscription's event stream
(``DEFAULT_HEARTBEAT_INTERVAL``, ``src/master/constants.hpp``; the interval is in the
SUBSCRIBED event's ``heartbeat_interval_seconds``, ``include/mesos/v1/scheduler/scheduler.proto``),
so a stream silent for several intervals is dead even if its TCP connection looks open (half-open).
pymesos 0.3.15 only hands heartbeats to ``processHeartBeat`` and never reconnects such a stream
itself: the driver shell (:mod:`es_framework.shell.driver`) touches the watchdog on every event that
comes from Mesos — and only on those: an internal event (a timer, an API command) says nothing
about the stream — and lets the subscription go when it expires.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: Mesos' default heartbeat interval; a subscription silent for HEARTBEAT_MISSES of them is dead.
HEARTBEAT_INTERVAL_S = 15.0
HEARTBEAT_MISSES = 5


class HeartbeatWatchdog:
    """When the last event from Mesos came, and whether the subscription has been silent too long.
    Thread-safe enough: :meth:`touch` only replaces a float."""

    def __init__(
        self,
        timeout_s: float = HEARTBEAT_INTERVAL_S * HEARTBEAT_MISSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout_s = timeout_s
        self._clock = clock
        self._last = clock()

    def touch(self) -> None:
        """An event came from Mesos (or a new subscription starts): the silence starts over."""
        self._last = self._clock()

    def why_expired(self) -> str | None:
        """Why the subscription is dead, when no event came from Mesos for longer than
        :attr:`timeout_s`; ``None`` while it lives."""
        if self._clock() - self._last > self.timeout_s:
            return f"no event from the master for {self.timeout_s:.0f}s"
        return None
