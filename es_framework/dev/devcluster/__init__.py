"""A single-machine Mesos development cluster: a master with simulated agents and fake executors.

**Development tool, never used in production.** It speaks the Mesos v1 scheduler HTTP API
(``POST /api/v1/scheduler``, RecordIO event stream, ``Mesos-Stream-Id``) closely enough that an
unmodified pymesos ``MesosSchedulerDriver`` runs against it, so the scheduler can be developed and
tested on a machine without Mesos. It has no persistence, no authentication, no leader election
and no containers of its own (only Docker's, with :class:`DockerExecutorBackend`).

``DevMaster(agents=[AgentSpec(...)]).start()`` runs it in-process; see :mod:`.master` for the
behaviour (and the modules it names, one per concept) and :mod:`.http_api` for the control
endpoints under ``/devcluster/``. Executors are simulated in memory (:class:`FakeExecutorBackend`,
the default) or run as real local processes (``DevMaster(..., backend=ProcessExecutorBackend(workdir))``,
see :mod:`.processes` and :mod:`.executor_api`); executors whose container type is ``DOCKER`` can
run in real containers of a given ``dockerd`` (:class:`DockerExecutorBackend`, see
:mod:`.docker_backend` and :mod:`.docker_run`), and :class:`RoutingExecutorBackend` combines the
two: ``RoutingExecutorBackend(docker=DockerExecutorBackend(host, workdir),
default=ProcessExecutorBackend(workdir))``.
"""

from __future__ import annotations

from es_framework.dev.devcluster.agent import AgentSpec, Reservation
from es_framework.dev.devcluster.docker_backend import DockerExecutorBackend
from es_framework.dev.devcluster.executors import FakeExecutorBackend
from es_framework.dev.devcluster.master import DevMaster
from es_framework.dev.devcluster.master_state import MasterOptions
from es_framework.dev.devcluster.processes import ProcessExecutorBackend
from es_framework.dev.devcluster.routing_backend import RoutingExecutorBackend

__all__ = [
    "AgentSpec",
    "DevMaster",
    "DockerExecutorBackend",
    "FakeExecutorBackend",
    "MasterOptions",
    "ProcessExecutorBackend",
    "Reservation",
    "RoutingExecutorBackend",
]
