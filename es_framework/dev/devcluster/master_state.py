"""What the development master knows (development tool, not for production).

:class:`MasterState` holds the agents, frameworks, tasks, outstanding offers and messages, and puts
events on the frameworks' streams (keeping a log of them). The behaviour lives in the modules that
take it: :mod:`.subscriptions`, :mod:`.offers`, :mod:`.launching`, :mod:`.status_updates`,
:mod:`.reconciliation`, :mod:`.messages` and :mod:`.agent_lifecycle`; :class:`~.master.DevMaster`
calls them holding its lock, and every function there expects that lock held.
"""

from __future__ import annotations

import collections
import copy
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from es_framework.dev.devcluster.agent import AgentSpec, AgentState, OutstandingOffer
from es_framework.dev.devcluster.attachments import VolumeAttachments
from es_framework.dev.devcluster.executors import ExecutorBackend
from es_framework.dev.devcluster.frameworks import Framework
from es_framework.dev.devcluster.maintenance import InverseOffer, Maintenance
from es_framework.dev.devcluster.tasks import Task

MESOS_VERSION = "1.12.0"


@dataclass(frozen=True)
class MasterOptions:
    host: str = "127.0.0.1"
    #: 0: a free port chosen by the OS.
    port: int = 0
    heartbeat_interval: float = 15.0
    #: How often free resources are offered (Mesos' --allocation_interval, default 1 s).
    allocation_interval: float = 1.0
    #: refuse_seconds when a DECLINE or ACCEPT has no filters (Mesos: 5 s).
    default_refuse_seconds: float = 5.0
    #: When an agent first re-sends an unacknowledged status update (Mesos: 10 s); later re-sends
    #: wait twice as long each time, at most 10 minutes (:mod:`.status_updates`).
    status_update_resend_interval: float = 10.0
    #: Resolution of the master's clock thread.
    tick: float = 0.05
    version: str = MESOS_VERSION
    #: Events kept for :meth:`DevMaster.events`.
    event_log_size: int = 10000


class MasterState:
    """The master's bookkeeping; no lock of its own (the master's lock guards it)."""

    def __init__(
        self, master_id: str, options: MasterOptions, agents: Sequence[AgentSpec], backend: ExecutorBackend
    ) -> None:
        self.master_id = master_id
        self.options = options
        self.backend = backend
        self.agents: dict[str, AgentState] = {}
        for spec in agents:
            if spec.id in self.agents:
                raise ValueError(f"duplicate agent id {spec.id}")
            self.agents[spec.id] = AgentState(spec=spec, free=spec.total_resources())
        self.frameworks: dict[str, Framework] = {}
        self.removed_frameworks: set[str] = set()
        #: ``(framework id, task id)`` → task.
        self.tasks: dict[tuple[str, str], Task] = {}
        self.offers: dict[str, OutstandingOffer] = {}
        #: The maintenance schedule and machine modes (see :mod:`.maintenance_ops`).
        self.maintenance = Maintenance()
        self.inverse_offers: dict[str, InverseOffer] = {}
        #: ``(framework id, agent id)`` → when an answered inverse offer may be sent again.
        self.inverse_offer_filters: dict[tuple[str, str], float] = {}
        #: Framework ↔ executor messages, ``data`` in base64 (what ``GET /devcluster/state`` shows).
        self.messages: list[dict[str, Any]] = []
        #: Which task holds which named volume, since when (every launch since the start).
        self.attachments = VolumeAttachments()
        self.event_log: collections.deque[tuple[float, str, dict[str, Any]]] = collections.deque(
            maxlen=options.event_log_size
        )
        self.framework_seq = itertools.count()
        self.offer_seq = itertools.count()
        self.next_allocation = 0.0

    # ------------------------------------------------------------------ events

    def send(self, framework: Framework, event: dict[str, Any]) -> None:
        if framework.subscription is None:
            return
        framework.subscription.send(event)
        self.event_log.append((time.time(), framework.id, copy.deepcopy(event)))

    def send_update(self, framework: Framework, status: dict[str, Any]) -> None:
        self.send(framework, {"type": "UPDATE", "update": {"status": status}})

    def events(self, framework_id: str | None = None, event_type: str | None = None) -> list[dict[str, Any]]:
        """Copies of the events sent on framework streams, oldest first."""
        return [
            copy.deepcopy(e)
            for _, fid, e in self.event_log
            if (framework_id is None or fid == framework_id) and (event_type is None or e.get("type") == event_type)
        ]

    # ------------------------------------------------------------------ lookups

    def agent(self, agent_id: str) -> AgentState:
        agent = self.agents.get(agent_id)
        if agent is None:
            raise LookupError(f"no agent {agent_id}")
        return agent

    def framework(self, framework_id: str) -> Framework:
        framework = self.frameworks.get(framework_id)
        if framework is None:
            raise LookupError(f"no framework {framework_id}")
        return framework

    def agent_reachable(self, agent_id: str | None) -> bool:
        agent = self.agents.get(agent_id) if agent_id is not None else None
        return agent is not None and agent.reachable

    def agent_tasks(self, agent_id: str) -> list[Task]:
        return [t for t in self.tasks.values() if t.agent_id == agent_id]

    def find_task(self, task_id: str, framework_id: str | None) -> Task:
        matches = [t for (fid, tid), t in self.tasks.items() if tid == task_id and framework_id in (None, fid)]
        if not matches:
            raise LookupError(f"no task {task_id}")
        if len(matches) > 1:
            raise ValueError(f"task id {task_id} is used by several frameworks: give the framework id")
        return matches[0]
