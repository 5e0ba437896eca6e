"""The log of refused API tokens, rate-limited per client: :class:`TokenFailureLog`.

A request without the token, or with a wrong one, is worth a WARNING (someone is trying the API, or
a client lost its token), but a scanner sends thousands: each client address gets one WARNING a
minute and the rest go to DEBUG, so the log stays readable and its disk cannot be filled from
outside. The line names the client address (``REMOTE_ADDR``: ``X-Forwarded-For`` is whatever the
client wants it to be), the method and the path, and why; never the token given (it may be the real
one mistyped by one character, or another system's secret).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

#: One WARNING per client address per this many seconds; the rest at DEBUG.
WARN_INTERVAL_S = 60.0
#: Clients remembered at most: a scan from many addresses must not grow the table without bound.
MAX_CLIENTS = 4096


class TokenFailureLog:
    """Logs refused tokens to ``logger``: the first per client (address) in :data:`WARN_INTERVAL_S`
    at WARNING with how many were refused since, the rest at DEBUG. Thread-safe (the API serves
    requests on several threads); ``clock`` is injectable for the tests."""

    def __init__(self, logger: logging.Logger, clock: Callable[[], float] = time.monotonic) -> None:
        self._logger = logger
        self._clock = clock
        self._lock = threading.Lock()
        #: client -> (when it was last warned about, refusals since that were logged at DEBUG only)
        self._clients: dict[str, tuple[float, int]] = {}

    def refused(self, client: str, method: str, path: str, reason: str) -> None:
        """Log one refused request from ``client``: ``reason`` says what was wrong (never the token)."""
        now = self._clock()
        with self._lock:
            last = self._clients.get(client)
            if last is not None and now - last[0] < WARN_INTERVAL_S:
                self._clients[client] = (last[0], last[1] + 1)
                quiet = True
            else:
                if len(self._clients) >= MAX_CLIENTS:
                    self._forget_old(now)
                self._clients[client] = (now, 0)
                quiet = False
        if quiet:
            self._logger.debug("API token refused: %s %s from %s: %s", method, path, client, reason)
            return
        since = (
            f" ({last[1]} more from it since the last such warning, at DEBUG)" if last is not None and last[1] else ""
        )
        self._logger.warning(
            "API token refused: %s %s from %s: %s; later refusals from this address are logged at DEBUG for a minute%s",
            method,
            path,
            client,
            reason,
            since,
        )

    def _forget_old(self, now: float) -> None:
        """Drop the clients not warned about within the interval; if all were, the oldest half."""
        fresh = {client: entry for client, entry in self._clients.items() if now - entry[0] < WARN_INTERVAL_S}
        if len(fresh) >= MAX_CLIENTS:
            by_age = sorted(fresh.items(), key=lambda item: item[1][0])
            fresh = dict(by_age[len(by_age) // 2 :])
        self._clients = fresh
