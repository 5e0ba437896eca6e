"""What the cluster monitor does to Elasticsearch for restarts (rollout steps and the operator's
restarts), decided from the stored state and what Elasticsearch last said (pure).

A started restart is *prepared* before its node is stopped, and the node is reported **ready** to
the engine only once the preparation shows in Elasticsearch's answer:

- on a version with node shutdown (:func:`~es_framework.core.engine_rollouts.uses_shutdown_api`):
  ``PUT _nodes/<id>/shutdown {"type": "restart"}`` and ready when ``GET _nodes/shutdown`` says
  ``COMPLETE`` (Elasticsearch's reference, "Node shutdown APIs", put-shutdown.html and
  get-shutdown.html; the status is computed by ``TransportGetShutdownStatusAction`` in
  x-pack/plugin/shutdown). A ``remove`` registered for the node is never turned into a restart:
  the step waits (and fails when stuck);
- else, for a rollout step: ``cluster.routing.allocation.enable: primaries`` and ``POST _flush``
  (the "Rolling upgrades"/"Full-cluster restart" procedure of the reference), ready when the setting
  shows; its previous value was recorded in the rollout before (``record_setting``);
- else (an operator's restart on such a version): ready at once, the node is stopped gracefully.

A ``restart`` shutdown record of one of our nodes that no started restart or rollout step holds is
cleared once that node runs and is back in the cluster (after its step finished, an abort, or a
failover). Nothing is done on an ``Unknown`` answer: fail closed.
"""

from __future__ import annotations

from dataclasses import dataclass

from es_framework.core.disruption_ledger import Kind
from es_framework.core.disruption_seen import Observation, Seen
from es_framework.core.engine_rollouts import RESTART_KINDS, preparing, uses_shutdown_api
from es_framework.core.node_state import ClusterState, TaskState
from identity.naming import node_name

PRIMARIES = "primaries"


@dataclass(frozen=True)
class Prep:
    #: Prepared: the engine may stop them now.
    ready: frozenset[int] = frozenset()
    #: Register node shutdown ``restart`` for these.
    register: tuple[int, ...] = ()
    #: Set allocation ``primaries`` and flush for these (a version without node shutdown).
    primaries: tuple[int, ...] = ()
    #: Delete the node-shutdown record of these (their restart is over).
    clear: tuple[int, ...] = ()
    #: Put these cluster settings back (None: remove the setting).
    restore: tuple[tuple[str, str | None], ...] = ()


def _node_id(name: str, framework_name: str) -> int | None:
    tail = name[len(framework_name) :] if name.startswith(framework_name) else ""
    return int(tail) if tail.isdigit() and not tail.startswith("0") else None


def prepare(state: ClusterState, seen: Observation, framework_name: str) -> Prep:
    """What to do now for the restarts of ``state`` (see the module docstring)."""
    if not isinstance(seen, Seen):
        return Prep()
    ready: set[int] = set()
    register: list[int] = []
    primaries: list[int] = []
    for entry in preparing(state):
        record = state.nodes.get(entry.node_id)
        registered = seen.shutdowns.get(node_name(framework_name, entry.node_id))
        if uses_shutdown_api(record):
            if registered is None:
                register.append(entry.node_id)
            elif registered == ("restart", "complete"):
                ready.add(entry.node_id)
        elif entry.kind is Kind.ROLLOUT:
            if seen.allocation_enable == PRIMARIES:
                ready.add(entry.node_id)
            else:
                primaries.append(entry.node_id)
        else:
            ready.add(entry.node_id)
    holding = {i for i, e in state.disruptions.items() if e.kind in RESTART_KINDS and e.started_at is not None}
    if state.rollout is not None:
        holding |= set(state.rollout.in_progress)
    clear = []
    for name, (kind, _status) in sorted(seen.shutdowns.items()):
        node_id = _node_id(name, framework_name)
        record = state.nodes.get(node_id) if node_id is not None else None
        if (
            node_id is not None
            and kind == "restart"
            and node_id not in holding
            and record is not None
            and record.state is TaskState.RUNNING
            and record.stopping is None
            and name in seen.joined
        ):
            clear.append(node_id)
    return Prep(
        frozenset(ready), tuple(register), tuple(primaries), tuple(clear), tuple(sorted(state.rollout_restore.items()))
    )
