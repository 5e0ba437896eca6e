"""Maintenance on the development master: operator calls, inverse offers, machines down and up
(development tool, not for production).

The data and the refusals are :mod:`.maintenance` (pure); this module applies them to the master's
state, as the real Mesos 1.12 master recorded in ``shared/notes/mesos-maintenance-domains-reservations.md``
§2 does, following apache/mesos ``src/master/http.cpp`` (``_updateMaintenanceSchedule``,
``_startMaintenance``, ``_stopMaintenance``, ``_getMaintenanceStatus``), ``src/master/master.cpp``
(``Master::updateUnavailability``, ``Master::inverseOffer``, ``Master::removeSlave``) and the
allocator's ``generateInverseOffers`` (``src/master/allocator/mesos/hierarchical.cpp``):

- UPDATE_MAINTENANCE_SCHEDULE: for each agent on a machine whose window or mode changed, its
  outstanding offers are rescinded (before the operator's ``200``) and re-offered at the next
  allocation carrying ``unavailability``; inverse offers to it are rescinded too.
- Each allocation round sends an inverse offer ``{"id","url","framework_id","agent_id",
  "unavailability"}`` (no hostname, no resources) for each agent on a ``DRAINING`` machine to each
  connected framework with a live task there *or an outstanding offer from it* that holds none for
  the agent (``generateInverseOffers`` walks ``slave.getOfferedOrAllocated()``: "frameworks that have
  the potential to lose something (i.e. it has resources offered or allocated on a given agent)");
  after an answer, not before the answer's ``refuse_seconds`` (default 5 s) have passed. A framework that never answers
  keeps its first one. ACCEPT_/DECLINE_INVERSE_OFFERS record the latest answer per framework.
- START_MAINTENANCE: each agent on the machines is removed: per framework ``TASK_LOST`` (also for
  ``PARTITION_AWARE`` ones) / ``REASON_AGENT_REMOVED`` / ``SOURCE_MASTER`` /
  ``Agent <hostname> removed: Operator initiated 'Machine DOWN'`` without uuid, then RESCIND of held
  offers, RESCIND_INVERSE_OFFER, FAILURE; its executors are shut down and its tasks forgotten.
- STOP_MAINTENANCE: the machines are ``UP`` and leave the schedule; their agents re-register with
  their old ids, empty (the real agent is restarted), and are offered again without ``unavailability``.

An unreachable agent on a machine taken down is marked down without events (its tasks were already
reported unreachable; the real master refuses its re-registration). Every function expects the
master's lock held.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from es_framework.dev.devcluster import maintenance as model
from es_framework.dev.devcluster.agent import AgentState, AgentStatus
from es_framework.dev.devcluster.calls import value
from es_framework.dev.devcluster.errors import CallError
from es_framework.dev.devcluster.frameworks import Framework
from es_framework.dev.devcluster.maintenance import InverseOffer, MachineId, MaintenanceError, Mode, machine_of
from es_framework.dev.devcluster.master_state import MasterState
from es_framework.dev.devcluster.offers import refuse_seconds, rescind_offers
from es_framework.dev.devcluster.resource_bags import ResourceBag
from es_framework.dev.devcluster.status_updates import forget
from es_framework.dev.devcluster.tasks import is_terminal, status_json

logger = logging.getLogger(__name__)

#: The operator calls this module answers, with the body each carries.
OPERATOR_CALLS = {
    "UPDATE_MAINTENANCE_SCHEDULE": "update_maintenance_schedule",
    "GET_MAINTENANCE_SCHEDULE": None,
    "GET_MAINTENANCE_STATUS": None,
    "START_MAINTENANCE": "start_maintenance",
    "STOP_MAINTENANCE": "stop_maintenance",
}
_DOWN_MESSAGE = "Operator initiated 'Machine DOWN'"


def operator_call(state: MasterState, call: dict[str, Any], now: float) -> dict[str, Any] | None:
    """One maintenance operator call: the JSON answer of a GET, ``None`` for ``200`` with an empty
    body, or :class:`CallError` ``400`` with Mesos' text."""
    call_type = str(call.get("type"))
    body_name = OPERATOR_CALLS[call_type]
    body = call.get(body_name) if body_name is not None else None
    if body_name is not None and not isinstance(body, dict):
        # master/validation.cpp (validation::master::call::validate), prefixed by the v1 handler.
        raise CallError(400, f"Failed to validate master::Call: Expecting '{body_name}' to be present")
    try:
        if call_type == "GET_MAINTENANCE_SCHEDULE":
            schedule = state.maintenance.schedule.to_json()
            return {"type": call_type, "get_maintenance_schedule": {"schedule": schedule}}
        if call_type == "GET_MAINTENANCE_STATUS":
            return {"type": call_type, "get_maintenance_status": {"status": state.maintenance.status_json()}}
        assert isinstance(body, dict)
        if call_type == "UPDATE_MAINTENANCE_SCHEDULE":
            update_schedule(state, model.parse_schedule(body.get("schedule", {})), now)
        elif call_type == "START_MAINTENANCE":
            start_maintenance(state, model.parse_machines(body.get("machines", [])))
        else:
            stop_maintenance(state, model.parse_machines(body.get("machines", [])), now)
    except MaintenanceError as error:
        logger.info("operator call %s refused: %s", call_type, error)
        raise CallError(400, str(error)) from None
    return None


def _agents_on(state: MasterState, machines: set[MachineId]) -> list[AgentState]:
    return [a for a in state.agents.values() if machine_of(a.spec) in machines]


def _known_machines(state: MasterState) -> set[MachineId]:
    """Machines with a registered agent (``Master::machines`` holds them even when ``UP``)."""
    return {machine_of(a.spec) for a in state.agents.values() if a.status in (AgentStatus.REACHABLE, AgentStatus.DOWN)}


def update_schedule(state: MasterState, schedule: model.Schedule, now: float) -> None:
    before = state.maintenance
    model.validate_schedule(schedule, before)
    after = model.update_schedule(before, schedule)
    state.maintenance = after
    changed = model.changed_machines(before, after)
    for agent in _agents_on(state, changed):
        # Master::updateUnavailability: what was offered goes back and comes again with the window.
        rescind_offers(state, None, notify=True, agent_id=agent.id)
        _rescind_inverse_offers(state, agent.id)
        for key in [k for k in state.inverse_offer_filters if k[1] == agent.id]:
            del state.inverse_offer_filters[key]
    state.next_allocation = now
    logger.info("maintenance schedule updated: %d window(s)", len(schedule.windows))


def _rescind_inverse_offers(state: MasterState, agent_id: str) -> None:
    for inverse in [i for i in state.inverse_offers.values() if i.agent_id == agent_id]:
        del state.inverse_offers[inverse.id]
        framework = state.frameworks.get(inverse.framework_id)
        if framework is not None:
            state.send(
                framework,
                {"type": "RESCIND_INVERSE_OFFER", "rescind_inverse_offer": {"inverse_offer_id": {"value": inverse.id}}},
            )


def allocate_inverse_offers(state: MasterState, now: float) -> None:
    """Inverse offers for agents on ``DRAINING`` machines (run after each allocation round)."""
    for inverse in list(state.inverse_offers.values()):
        framework = state.frameworks.get(inverse.framework_id)
        if framework is None or not framework.connected:
            del state.inverse_offers[inverse.id]  # a framework that leaves drops its inverse offers
    for agent in state.agents.values():
        machine = machine_of(agent.spec)
        unavailability = state.maintenance.unavailability(machine)
        if not agent.reachable or unavailability is None or state.maintenance.mode(machine) is not Mode.DRAINING:
            continue
        holders = {i.framework_id for i in state.inverse_offers.values() if i.agent_id == agent.id}
        users = {t.framework_id for t in state.agent_tasks(agent.id) if not is_terminal(t.state)}
        users |= {o.framework_id for o in state.offers.values() if o.agent_id == agent.id}
        for framework_id in sorted(users - holders):
            framework = state.frameworks.get(framework_id)
            if framework is None or not framework.connected:
                continue
            if state.inverse_offer_filters.get((framework_id, agent.id), 0.0) > now:
                continue
            inverse = InverseOffer(f"{state.master_id}-O{next(state.offer_seq)}", framework_id, agent.id, machine)
            state.inverse_offers[inverse.id] = inverse
            body = {
                "id": {"value": inverse.id},
                "url": agent.spec.url_json(),
                "framework_id": {"value": framework_id},
                "agent_id": {"value": agent.id},
                "unavailability": unavailability.to_json(),
            }
            logger.info("inverse offer %s to framework %s for agent %s", inverse.id, framework_id, agent.id)
            state.send(framework, {"type": "INVERSE_OFFERS", "inverse_offers": {"inverse_offers": [body]}})


def answer_inverse_offers(
    state: MasterState, framework: Framework, body: dict[str, Any], status: str, now: float
) -> None:
    """ACCEPT_INVERSE_OFFERS / DECLINE_INVERSE_OFFERS: the answer is recorded for the machine, and
    no inverse offer for that agent goes to the framework for ``refuse_seconds``. An id that is
    not an outstanding inverse offer of the framework is dropped (the real master only logs it)."""
    ids = body.get("inverse_offer_ids")
    seconds = refuse_seconds(state, body.get("filters"))
    for raw in ids if isinstance(ids, list) else []:
        inverse = state.inverse_offers.get(str(value(raw)))
        if inverse is None or inverse.framework_id != framework.id:
            logger.info("framework %s: %s of unknown inverse offer %s dropped", framework.id, status, value(raw))
            continue
        del state.inverse_offers[inverse.id]
        state.maintenance = model.record_response(
            state.maintenance, inverse.machine, framework.id, status, time.time_ns()
        )
        state.inverse_offer_filters[(framework.id, inverse.agent_id)] = now + seconds


def start_maintenance(state: MasterState, machines: tuple[MachineId, ...]) -> None:
    state.maintenance = model.start_maintenance(state.maintenance, machines, _known_machines(state))
    for agent in _agents_on(state, set(machines)):
        _take_down(state, agent)
    logger.info("machines down for maintenance: %s", ", ".join(m.text() for m in machines))


def _take_down(state: MasterState, agent: AgentState) -> None:
    """``Master::removeSlave`` with ``Operator initiated 'Machine DOWN'``, in the recorded order."""
    was_reachable = agent.reachable
    agent.status = AgentStatus.DOWN
    tasks = state.agent_tasks(agent.id)
    for task in tasks:
        if is_terminal(task.state):
            continue
        task.state = "TASK_LOST"  # what the volume attachments record as the end
        framework = state.frameworks.get(task.framework_id)
        if was_reachable and framework is not None:
            state.send_update(
                framework,
                status_json(
                    task.task_id,
                    "TASK_LOST",
                    source="SOURCE_MASTER",
                    message=f"Agent {agent.spec.hostname} removed: {_DOWN_MESSAGE}",
                    reason="REASON_AGENT_REMOVED",
                    agent_id=agent.id,
                ),
            )
    for task in tasks:
        forget(state, task)
    rescind_offers(state, None, notify=was_reachable, agent_id=agent.id)
    _rescind_inverse_offers(state, agent.id)
    agent.free = ResourceBag()
    agent.filters.clear()
    if was_reachable:
        for framework in state.frameworks.values():
            state.send(framework, {"type": "FAILURE", "failure": {"agent_id": {"value": agent.id}}})
    logger.info("agent %s removed: %s", agent.id, _DOWN_MESSAGE)


def stop_maintenance(state: MasterState, machines: tuple[MachineId, ...], now: float) -> None:
    state.maintenance = model.stop_maintenance(state.maintenance, machines, _known_machines(state))
    for agent in _agents_on(state, set(machines)):
        if agent.status is AgentStatus.DOWN:
            # The restarted agent re-registers with its old id and no tasks ("Allowing UNKNOWN agent
            # to reregister"); the frameworks hear nothing but new offers.
            agent.status = AgentStatus.REACHABLE
            agent.unreachable_time_ns = None
            agent.free = agent.spec.total_resources()
            logger.info("agent %s re-registered after maintenance", agent.id)
    state.next_allocation = now
