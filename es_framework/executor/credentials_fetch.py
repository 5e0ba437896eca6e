"""The executor's side of a password rotation: when Elasticsearch refuses the ``elastic`` password the
task was launched with, fetch the cluster's current one from the scheduler and use it.

The scheduler gave the task at launch its token (``ES_MESOS_TASK_TOKEN``, a Mesos SECRET variable)
and where to ask (``ES_MESOS_CREDENTIALS_URL``); after a rotation, or a failover that moved the
scheduler, a :class:`~es_framework.core.credentials.CredentialsSource` framework message says where to
ask now (:mod:`es_framework.core.credentials`). :class:`CredentialsFetch` asks ``GET
/v1/executor/credentials`` with ``Authorization: Bearer <task id>.<token>``, tries the password it
gets (and the next one, while a rotation is not settled) against its own node, and keeps the first
that Elasticsearch takes. It asks at most once per :data:`RETRY_INTERVAL` while nothing works, so a
password changed outside es-mesos does not flood the scheduler.

An ``https://`` URL is verified against the cluster CA (the one the task got at launch) with the
host name checked; the scheduler's REST API serves plain HTTP today (see
:mod:`es_framework.app.credentials_rotation`). No password or token ever goes into a log line.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from es_framework.contract import NodeReport
from es_framework.executor.probes import Answer, basic_authorization
from es_framework.executor.settings import NodeSettings

#: Seconds between two fetches while none gave a working password.
RETRY_INTERVAL = 10.0
FETCH_TIMEOUT = 5.0


class CredentialsFetch:
    """Fetches the current ``elastic`` password for one task (see the module docstring)."""

    def __init__(
        self,
        url: Callable[[], str | None],
        bearer: str,
        ca_pem: str | None,
        *,
        log: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._bearer = bearer
        self._ca_pem = ca_pem
        self._log = log
        self._clock = clock
        self._next_try = 0.0

    def __repr__(self) -> str:
        return "CredentialsFetch(****)"

    def passwords(self) -> list[str]:
        """The passwords the scheduler answers (current first), [] when it cannot be asked or refuses."""
        url = self._url()
        if not url:
            return []
        request = urllib.request.Request(
            url, headers={"Accept": "application/json", "Authorization": f"Bearer {self._bearer}"}
        )
        context = ssl.create_default_context(cadata=self._ca_pem) if url.startswith("https:") and self._ca_pem else None
        try:
            with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT, context=context) as response:
                answer = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as error:
            self._log(f"the scheduler refused the task's credentials request ({url}): HTTP {error.code}")
            return []
        except (OSError, ValueError) as error:
            self._log(f"cannot ask the scheduler for the current credentials ({url}): {type(error).__name__}")
            return []
        found = [answer.get(k) for k in ("password", "next_password")] if isinstance(answer, dict) else []
        return [p for p in found if isinstance(p, str) and p]

    def working(self, probe: Callable[[str | None], Answer]) -> tuple[str, NodeReport] | None:
        """``(Authorization header, the node's answer)`` for a fetched password the node takes (``probe``
        asks the node with a header); None when none does, or when the last try was too recent."""
        now = self._clock()
        if now < self._next_try:
            return None
        self._next_try = now + RETRY_INTERVAL
        for password in self.passwords():
            header = basic_authorization(password)
            answer = probe(header)
            if header is not None and isinstance(answer, NodeReport):
                self._next_try = 0.0
                self._log("Elasticsearch takes the elastic password fetched from the scheduler; the probes use it")
                return header, answer
        return None


def fetch_for(
    settings: NodeSettings, url: Callable[[], str | None], log: Callable[[str], None]
) -> CredentialsFetch | None:
    """The task's fetch, None when the scheduler gave it no token (not ``auto``, or an older scheduler)."""
    if not settings.task_token:
        return None
    ca = settings.tls.ca if settings.tls is not None else None
    return CredentialsFetch(url, f"{settings.task_id}.{settings.task_token}", ca, log=log)
