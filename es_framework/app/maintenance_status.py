"""Asking the Mesos master which machines are DOWN for maintenance, for a task it no longer knows.

START_MAINTENANCE's ``TASK_LOST`` reaches only the frameworks subscribed at that moment and is never
re-sent; a scheduler that took over later hears ``TASK_UNKNOWN`` on reconciliation and would keep the
node id reserved for an operator (see :mod:`es_framework.core.engine_maintenance`). So, from the cluster
monitor's thread and only while a task of ours is UNKNOWN, this asks the master's operator API
(``POST /api/v1`` ``{"type": "GET_MAINTENANCE_STATUS"}``, ``include/mesos/v1/master/master.proto``;
answered by ``Master::Http::getMaintenanceStatus``, ``src/master/http.cpp``) and hands its
``down_machines`` to the engine thread (:meth:`~es_framework.core.engine_maintenance.MaintenanceAnswers.machines_down`),
which frees the ids of the UNKNOWN tasks on those machines. The HTTP call never runs on the engine thread.

Logs: a node freed is the engine's WARNING; a master that does not answer is a WARNING when what it
says changes, else DEBUG (the question comes back every monitor round while the task is UNKNOWN).
"""

from __future__ import annotations

import logging

from es_framework.app.operator_api import OperatorApiError, operator_call, operator_url
from es_framework.config import Config
from es_framework.core.maintenance import Machine, MaintenanceError, parse_down_machines
from es_framework.shell.driver import SchedulerShell

log = logging.getLogger("es_framework.app.maintenance_status")


class _Said:
    """The last problem logged, so a master that keeps failing is not a WARNING every round."""

    last = ""


def down_machines(config: Config, shell: SchedulerShell) -> tuple[Machine, ...]:
    """The machines the leading master reports DOWN; :class:`MaintenanceError` when it cannot say."""
    url = operator_url(shell)
    if url is None:
        raise MaintenanceError("the Mesos master's address is not known")
    body = {"type": "GET_MAINTENANCE_STATUS"}
    try:
        response = operator_call(config, url, body, headers={"Accept": "application/json"})
    except OperatorApiError as error:
        raise MaintenanceError(str(error)) from None
    if response.status_code != 200:
        raise MaintenanceError(f"the operator API answered HTTP {response.status_code}: {response.text[:200]}")
    try:
        document = response.json()
    except ValueError:
        raise MaintenanceError("the operator API's answer is not JSON") from None
    return parse_down_machines(document)


def free_on_down_machines(config: Config, shell: SchedulerShell) -> None:
    """One round: while a task of ours is UNKNOWN to Mesos, free those on machines DOWN for maintenance.
    Never raises (the monitor's other rounds go on)."""
    try:
        if not shell.leading or not shell.call(shell.engine.down_machines_wanted):
            return
        try:
            machines = down_machines(config, shell)
        except MaintenanceError as error:
            problem = f"the master's maintenance status is not known ({error}); UNKNOWN tasks stay reserved"
            log.log(logging.DEBUG if problem == _Said.last else logging.WARNING, "%s", problem)
            _Said.last = problem
            return
        _Said.last = ""
        log.debug("machines DOWN for maintenance: %s", ", ".join(m.hostname or m.ip for m in machines) or "none")
        if machines and shell.leading:
            shell.call(lambda: shell.engine.machines_down(machines))
    except Exception:
        log.exception("asking the master for machines DOWN for maintenance failed; trying again next round")
