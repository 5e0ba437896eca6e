"""``es-framework teardown --purge-volumes``: after the operator confirmed it, stop every node, remove
every external volume through the scheduler's volume tasks, then TEARDOWN the framework, then
(``--purge``) delete the state, in that order (issue 11, "Retention").

Policy, and why:

- The stored state is marked torn down *before* anything stops, and stays so: no scheduler starts on
  a cluster whose nodes and volumes are going; running the teardown again carries on where it stopped.
- Every node's task must have ended (Mesos said so: the engine freed its id) before any volume is
  released; a node still running, unreachable or unknown after ``--stop-timeout`` stops the teardown
  before any volume task (its task may still write to its volumes).
- A removal is tried up to :data:`~es_framework.core.teardown_purge.TEARDOWN_ATTEMPTS` times (the
  engine's back-off between tries), within ``--removal-timeout``. When one did not succeed, no
  TEARDOWN is sent (the framework is needed to run volume tasks again: run the teardown again), and
  the exit status is 1; ``--force`` sends TEARDOWN anyway, records a removal task it cut short as
  failed, and still exits 1, naming the volumes that remain.
- Every removal is logged by the engine (launch, result) and recorded in the state's
  ``volume_removals``, which ``es-framework volumes`` shows until ``--purge`` deletes the state.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from es_framework.app.startup import RefusedError
from es_framework.app.store import LedState, lead_state
from es_framework.app.teardown import TeardownError, busy_error, send_teardown
from es_framework.app.teardown_engine import PurgeLimits, run_purge
from es_framework.config import Config
from es_framework.core.node_state import ClusterState
from es_framework.core.teardown_purge import abandon_in_flight, volumes_to_remove
from identity.naming import volume_names

log = logging.getLogger("es_framework.app.teardown")


class TeardownIncompleteError(TeardownError):
    """The teardown did part of its work; ``lines`` say what (printed before the error)."""

    def __init__(self, lines: list[str], message: str) -> None:
        super().__init__(message)
        self.lines = lines


@dataclass(frozen=True)
class PurgeVolumes:
    """``--purge-volumes`` and its options. ``confirm`` is shown what will go and answers whether to
    go ahead (the CLI's prompt, or ``--yes``)."""

    confirm: Callable[[str], bool]
    limits: PurgeLimits = field(default_factory=PurgeLimits)
    force: bool = False


def confirmation_text(config: Config, state: ClusterState, *, purge: bool) -> str:
    """What the operator confirms: the nodes stopped, every volume removed by name, what follows."""
    names = [name for node_id in volumes_to_remove(state) for name in _names(state, node_id)]
    nodes = ", ".join(f"node {r.node_id} (task {r.task_id})" for _, r in sorted(state.nodes.items())) or "none"
    lines = [
        f"teardown --purge-volumes of cluster {config.cluster_name} (framework {config.framework_name}, "
        f"framework id {state.framework_id or 'none'}):",
        f"  1. stop every node: {nodes}",
        f"  2. REMOVE {len(names)} volume(s) through {config.external_volume_driver}; their data is gone for good:",
        *(f"       {name}" for name in names),
        "  3. TEARDOWN the framework in Mesos",
        f"  4. {'delete the state (--purge)' if purge else 'keep the state, marked torn down, as a record'}",
    ]
    unknown = _unknown_volumes(config, state)
    if unknown:
        lines.append(f"  kept, if they exist (not in the state's volume inventory): {', '.join(unknown)}")
    return "\n".join(lines)


def purge_volumes_and_teardown(
    config: Config,
    request: PurgeVolumes,
    *,
    purge: bool = False,
    lock_timeout: float = 15.0,
    driver_factory: Callable[..., Any] | None = None,
    clock: Callable[[], float] = time.time,
) -> list[str]:
    """``es-framework teardown --purge-volumes [--force] [--purge]`` (see the module's policy); the
    lines to print. Raises :class:`~es_framework.app.startup.RefusedError` when not confirmed or not
    the external strategy (nothing changed), :class:`TeardownIncompleteError` when volumes remain."""
    if not config.external_volume_driver:
        raise RefusedError("--purge-volumes applies to the external strategy only (--externalVolumeDriver)")
    with lead_state(config, lock_timeout=lock_timeout, busy=busy_error(config)) as led:
        state = led.state
        if state is None:
            raise TeardownError(f"no state for cluster {config.cluster_name} of framework {config.framework_name}")
        if not request.confirm(confirmation_text(config, state, purge=purge)):
            raise RefusedError("--purge-volumes not confirmed: nothing was changed")
        lines: list[str] = []
        torn_down_at = state.torn_down_at if state.torn_down_at is not None else clock()
        if state.torn_down_at is None:
            led.save(replace(state, torn_down_at=torn_down_at))
            lines.append(f"state of cluster {config.cluster_name} marked torn down")
        complete = True
        recorded = led
        if state.framework_id is not None:
            try:
                run = run_purge(
                    config,
                    led.store,
                    torn_down_at=torn_down_at,
                    desired_nodes=state.desired_nodes,
                    limits=request.limits,
                    driver_factory=driver_factory,
                    clock=clock,
                )
            except TimeoutError as exc:
                raise TeardownIncompleteError(lines, f"{exc}; nothing was stopped or removed") from None
            lines.extend(run.lines)
            complete = run.complete
            recorded = LedState(config, led.store)  # the engine wrote since
        elif state.nodes or volumes_to_remove(state):
            raise TeardownIncompleteError(lines, "no framework id stored: no volume task can run")
        else:
            lines.append("no framework id stored: nothing registered with Mesos, no node and no volume")
        if not complete and not request.force:
            raise TeardownIncompleteError(
                lines,
                "not every node stopped or volume was removed, so the framework was NOT torn down (its volume "
                "tasks need it): run 'teardown --purge-volumes' again, or add --force to tear it down anyway",
            )
        if state.framework_id is not None:
            lines.append(send_teardown(config, state.framework_id, driver_factory, request.limits.register_timeout))
        current = recorded.state
        if current is not None:
            after = abandon_in_flight(current, clock())
            if after is not current:
                recorded.save(after)
                lines.append("removal tasks cut short by TEARDOWN recorded as failed")
        unknown = _unknown_volumes(config, state)
        if unknown:
            lines.append(f"volumes kept, if they exist (not in the state's volume inventory): {', '.join(unknown)}")
        if purge:
            led.store.delete()
            lines.append(f"state of cluster {config.cluster_name} deleted (--purge)")
        else:
            lines.append("the state is kept as a record ('es-framework volumes' lists it); --purge deletes it")
        if not complete:
            raise TeardownIncompleteError(lines, "torn down with --force; the volumes listed NOT removed remain")
        return lines


def _names(state: ClusterState, node_id: int) -> tuple[str, ...]:
    volume_set = state.volumes.get(node_id)
    return () if volume_set is None else tuple(spec.name for spec in volume_set.specs)


def _unknown_volumes(config: Config, state: ClusterState) -> list[str]:
    """Volume names of node ids the state knows (held, or up to the desired count) but its volume
    inventory does not: launched before the inventory was recorded, or never. No volume task can be
    placed for them (the driver and the agent are unknown), so they are named, not removed."""
    ids = (set(state.nodes) | set(range(1, state.desired_nodes + 1))) - set(state.volumes)
    return [name for node_id in sorted(ids) for name in volume_names(config.framework_name, node_id)]
