"""The engine part of ``es-framework teardown --purge-volumes``: the scheduler's own
:class:`~es_framework.core.engine.Engine` behind the real driver shell, for as long as it takes to stop
every node and remove every volume, on a teardown view of the stored state
(:mod:`es_framework.core.teardown_purge` says what the view is and why).

Nothing here decides anything about a node or a volume: the engine kills the stopping nodes
(``pending_kills`` at registration), frees their ids from Mesos' status updates, launches the volume
tasks on offers and settles them from their updates, as it does in a running scheduler. This module
only waits, shows progress, releases the volumes once every node's task ended, and stops the shell
with failover (no TEARDOWN: the caller sends it, or does not)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from es_framework.app.store import EngineStore
from es_framework.app.teardown import TeardownError
from es_framework.config import Config
from es_framework.core.engine import Engine
from es_framework.core.engine_state import Store
from es_framework.core.mesos_calls import Call, Revive
from es_framework.core.node_state import ClusterState, NodeRecord
from es_framework.core.state_document import state_from_json, state_to_json
from es_framework.core.teardown_purge import (
    PurgeProgress,
    nodes_left,
    purge_progress,
    release_all,
    stored_form,
    teardown_view,
    volumes_to_remove,
)
from es_framework.shell.driver import SchedulerShell
from es_framework.shell.state_store import StateStore
from strategies import strategy_for

log = logging.getLogger("es_framework.app.teardown")

#: How often the waits look at the engine's published state.
POLL_S = 0.2
#: How often the kills of nodes still running are sent again (a launch that reconciliation finds
#: running after the first kills went out, a kill lost while disconnected).
KILL_RESEND_S = 15.0


class TeardownStore:
    """The engine's :class:`~es_framework.core.engine_state.Store` during the teardown: it reads the
    teardown view of the stored state and stores what the engine writes in stored form (marked torn
    down at ``torn_down_at``, wanting ``desired_nodes``)."""

    def __init__(self, inner: Store, framework_name: str, *, torn_down_at: float, desired_nodes: int) -> None:
        self._inner = inner
        self._framework_name = framework_name
        self._torn_down_at = torn_down_at
        self._desired_nodes = desired_nodes

    def load(self) -> tuple[dict[str, Any] | None, int]:
        document, version = self._inner.load()
        if document is None:
            return None, version
        return state_to_json(teardown_view(state_from_json(document, self._framework_name))), version

    def save(self, document: dict[str, Any], version: int) -> int:
        view = state_from_json(document, self._framework_name)
        stored = stored_form(view, torn_down_at=self._torn_down_at, desired_nodes=self._desired_nodes)
        return self._inner.save(state_to_json(stored), version)


@dataclass(frozen=True)
class PurgeLimits:
    """How long each step may take (seconds)."""

    stop_timeout: float = 120.0
    removal_timeout: float = 600.0
    register_timeout: float = 30.0


@dataclass(frozen=True)
class PurgeRun:
    """What the engine run did: every node's task ended (``stopped``), and how the removals stand
    (``None`` when they were not started because a node did not stop)."""

    lines: tuple[str, ...]
    stopped: bool
    progress: PurgeProgress | None

    @property
    def complete(self) -> bool:
        return self.stopped and self.progress is not None and self.progress.complete


def run_purge(
    config: Config,
    store: StateStore,
    *,
    torn_down_at: float,
    desired_nodes: int,
    limits: PurgeLimits,
    driver_factory: Callable[..., Any] | None = None,
    clock: Callable[[], float] = time.time,
) -> PurgeRun:
    """Stop every node, then release and remove every volume, through the engine and the driver
    shell on ``store`` (led by the caller for the whole run). Call it on the main thread (the shell
    runs there; the steps on a thread of their own). Raises ``TimeoutError`` when the master does not
    take the subscription within ``limits.register_timeout``, :class:`TeardownError` when interrupted."""
    engine_config = replace(config, elasticsearch_nodes=0)  # the view wants none; the engine then says nothing
    engine_store = TeardownStore(
        EngineStore(store), config.framework_name, torn_down_at=torn_down_at, desired_nodes=desired_nodes
    )
    engine = Engine(engine_config, engine_store, clock=clock, strategy=strategy_for(config))
    shell = SchedulerShell(engine_config, engine, driver_factory=driver_factory, lock=store)
    # The nodes to stop, read before subscribing: the engine kills them as soon as it is subscribed.
    first = nodes_left(engine.state)
    should_stop = threading.Event()
    outcome: list[PurgeRun | BaseException] = []

    def steps() -> None:
        try:
            outcome.append(
                _steps(
                    shell,
                    engine,
                    first=first,
                    store=engine_store,
                    framework_name=config.framework_name,
                    limits=limits,
                    clock=clock,
                    stopped=should_stop,
                )
            )
        except BaseException as exc:  # handed to the main thread
            outcome.append(exc)
        finally:
            should_stop.set()

    worker = threading.Thread(target=steps, name="es-teardown-steps", daemon=True)
    worker.start()
    # The shell runs on the main thread, as in the scheduler: pymesos sets its SIGINT handler when it is
    # first imported (only the main thread may), and a SIGINT ends the shell's loop.
    try:
        shell.run(should_stop)
    finally:
        should_stop.set()
        worker.join()
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result


def _steps(
    shell: SchedulerShell,
    engine: Engine,
    *,
    first: list[NodeRecord],
    store: TeardownStore,
    framework_name: str,
    limits: PurgeLimits,
    clock: Callable[[], float],
    stopped: threading.Event,
) -> PurgeRun:
    for record in first:
        log.info("node %d task %s: stopping it (teardown --purge-volumes)", record.node_id, record.task_id)
    _wait_subscribed(shell, stopped, engine.state.framework_id, limits.register_timeout)
    lines, all_stopped = _stop_nodes(shell, engine, first, limits.stop_timeout, stopped)
    if not all_stopped:
        return PurgeRun(tuple(lines), False, None)
    ids = shell.call(lambda: _release(engine, store, framework_name, clock()))
    progress = _await_removals(shell, ids, limits.removal_timeout, stopped)
    lines.extend(_removal_lines(shell.published.state, progress))
    return PurgeRun(tuple(lines), True, progress)


def _check(stopped: threading.Event) -> None:
    if stopped.is_set():
        raise TeardownError(
            "interrupted (or the Mesos subscription ended): the state stays marked torn down; run the teardown "
            "again to carry on"
        )


def _wait_subscribed(shell: SchedulerShell, stopped: threading.Event, framework_id: str | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not shell.subscribed:
        _check(stopped)
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the Mesos master did not take the subscription of framework {framework_id} within {timeout:.0f}s "
                "(the log says why; a framework an earlier teardown removed from Mesos cannot subscribe again, "
                "and its volume tasks cannot run)"
            )
        time.sleep(POLL_S)


def _stop_nodes(
    shell: SchedulerShell, engine: Engine, first: list[NodeRecord], timeout: float, stopped: threading.Event
) -> tuple[list[str], bool]:
    """Wait until Mesos reported every node's task ended (the engine freed every record); the engine
    killed them at registration and the kills go again every :data:`KILL_RESEND_S`."""
    deadline = time.monotonic() + timeout
    resend = time.monotonic() + KILL_RESEND_S
    shown: int | None = None
    while True:
        left = nodes_left(shell.published.state)
        if len(left) != shown:
            shown = len(left)
            log.info("nodes stopped: %d of %d", len(first) - len(left), len(first))
        if not left:
            break
        _check(stopped)
        if time.monotonic() > deadline:
            for record in left:
                log.error(
                    "node %d task %s: still %s on agent %s after %.0fs: its volumes are not removed",
                    record.node_id,
                    record.task_id,
                    record.state.value,
                    record.agent_id,
                    timeout,
                )
            held = ", ".join(f"node {r.node_id} (task {r.task_id}, {r.state.value})" for r in left)
            return [f"nodes not stopped within {timeout:.0f}s (--stop-timeout): {held}"], False
        if time.monotonic() >= resend:
            resend = time.monotonic() + KILL_RESEND_S
            shell.call(lambda: (None, engine.pending_kills()))
        time.sleep(POLL_S)
    if not first:
        return ["no node was running"], True
    return ["nodes stopped: " + ", ".join(f"node {r.node_id} (task {r.task_id})" for r in first)], True


def _release(
    engine: Engine, store: TeardownStore, framework_name: str, now: float
) -> tuple[tuple[int, ...], list[Call]]:
    """On the engine thread: release every volume set for removal, store it, have the engine read it
    back, and bring offers back for the volume tasks."""
    document, version = store.load()
    if document is None:
        raise ValueError("the state disappeared during the teardown")
    state = state_from_json(document, framework_name)
    ids = tuple(volumes_to_remove(state))
    released = release_all(state, now)
    if released is not state:
        store.save(state_to_json(released), version)
    engine.reload()
    for node_id in ids:
        log.info("node %d: volumes %s released for removal (teardown)", node_id, ", ".join(_names(state, node_id)))
    if not ids:
        return ids, []
    engine.suppressed = False  # what the Revive below tells the master
    return ids, [Revive()]


def _await_removals(
    shell: SchedulerShell, ids: tuple[int, ...], timeout: float, stopped: threading.Event
) -> PurgeProgress:
    deadline = time.monotonic() + timeout
    shown: PurgeProgress | None = None
    while True:
        progress = purge_progress(shell.published.state, ids)
        if progress != shown:
            shown = progress
            log.info(
                "volumes removed: %d of %d node id(s)%s%s",
                len(progress.removed),
                progress.total,
                f"; failed for good: {', '.join(str(i) for i, _ in progress.failed)}" if progress.failed else "",
                f"; pending: {', '.join(map(str, progress.pending))}" if progress.pending else "",
            )
        if progress.settled:
            return progress
        _check(stopped)
        if time.monotonic() > deadline:
            log.error("volume removals not settled within %.0fs (--removal-timeout): %s", timeout, progress.pending)
            return progress
        time.sleep(POLL_S)


def _names(state: ClusterState, node_id: int) -> tuple[str, ...]:
    volume_set = state.volumes.get(node_id)
    return () if volume_set is None else tuple(spec.name for spec in volume_set.specs)


def _removal_lines(state: ClusterState, progress: PurgeProgress) -> list[str]:
    lines = [f"volumes removed: {len(progress.removed)} of {progress.total} node id(s)"]
    if progress.removed:
        lines.append("removed: " + ", ".join(n for i in progress.removed for n in _names(state, i)))
    for node_id, error in progress.failed:
        lines.append(f"NOT removed: node {node_id}'s {', '.join(_names(state, node_id))}: {error}")
    for node_id in progress.pending:
        removal = state.volume_removals.get(node_id)
        status = removal.status() if removal is not None else "released"
        lines.append(f"NOT removed (unfinished, {status}): node {node_id}'s {', '.join(_names(state, node_id))}")
    return lines
