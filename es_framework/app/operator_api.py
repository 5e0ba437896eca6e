"""One call to the leading Mesos master's v1 operator API (``POST /api/v1``;
``include/mesos/v1/master/master.proto``), as the framework: its principal and secret when given
(``--frameworkPrincipal``/``--frameworkSecretPath``). Used for ``MARK_AGENT_GONE`` (the ``gone``
command and automatic replacement, :mod:`es_framework.app.scheduler_api`) and
``GET_MAINTENANCE_STATUS`` (:mod:`es_framework.app.maintenance_status`)."""

from __future__ import annotations

from typing import Any

import requests

from es_framework.config import Config
from es_framework.shell.driver import SchedulerShell

#: Seconds to wait for the master's answer.
TIMEOUT_S = 10.0


class OperatorApiError(Exception):
    """The master did not answer (the message says why)."""


def operator_url(shell: SchedulerShell) -> str | None:
    """``http://<master>/api/v1`` of the master the driver talks to now; None when it is not known."""
    master = shell.master_address()
    if master is None:
        return None
    return f"{master if master.startswith('http') else f'http://{master}'}/api/v1"


def operator_call(
    config: Config, url: str, body: dict[str, Any], *, headers: dict[str, str] | None = None
) -> requests.Response:
    """``body`` posted to ``url`` (:func:`operator_url`) as the framework; the answer, whatever its status.
    Raises :class:`OperatorApiError` when the master does not answer."""
    auth: Any = None
    if config.principal and config.secret is not None:
        auth = (config.principal, config.secret.reveal())
    try:
        return requests.post(url, json=body, headers=headers, auth=auth, timeout=TIMEOUT_S)
    except requests.RequestException as error:
        raise OperatorApiError(f"the operator API did not answer: {error}") from None
