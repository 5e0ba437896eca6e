"""``es-framework teardown``: mark the stored state torn down, send Mesos TEARDOWN with the stored
framework id (Mesos then kills every task of the framework), keep the volumes, and with ``--purge``
delete the state. ``--purge-volumes`` removes the volumes first: :mod:`es_framework.app.teardown_volumes`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from es_framework.app.store import lead_state
from es_framework.config import Config
from es_framework.core.task_builder import local_data_dir
from es_framework.shell.framework_info import new_driver
from identity.naming import volume_names

log = logging.getLogger("es_framework.app.teardown")

_TORN_DOWN = "torn down: Mesos kills all of its tasks"


class TeardownError(Exception):
    """The teardown could not be done (or finished); the message says what to do."""


class _TeardownScheduler:
    """pymesos callbacks for the short-lived teardown driver: wait for SUBSCRIBED (or a refusal)."""

    def __init__(self) -> None:
        self.subscribed = threading.Event()
        self.refusal: str | None = None

    def registered(self, driver: Any, framework_id: Any, master_info: Any) -> None:
        self.subscribed.set()

    def reregistered(self, driver: Any, master_info: Any) -> None:
        self.subscribed.set()

    def error(self, driver: Any, message: Any) -> None:
        self.refusal = str(message)
        self.subscribed.set()

    def __getattr__(self, name: str) -> Callable[..., None]:
        # Every other callback (offers, updates, heartbeats, ...): nothing to do.
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: None


def send_teardown(config: Config, framework_id: str, driver_factory: Callable[..., Any] | None, timeout: float) -> str:
    """Subscribe as ``framework_id`` and send TEARDOWN (Mesos then kills every task of it).
    Returns what happened, in words; raises :class:`TeardownError` if the master was not reached."""
    master = config.mesos_master  # never None here: check_startable refused that, and new_driver would
    callbacks = _TeardownScheduler()
    driver = new_driver(config, callbacks, framework_id, failover=False, factory=driver_factory)
    driver.start()
    subscribed = False
    try:
        if not callbacks.subscribed.wait(timeout):
            raise TeardownError(
                f"the Mesos master {master} did not answer within {timeout:.0f}s; the state is marked torn down, "
                "run the teardown again to send TEARDOWN"
            )
        if callbacks.refusal is not None:
            if "removed" in callbacks.refusal.lower():
                return f"framework {framework_id} was already removed from Mesos ({callbacks.refusal})"
            raise TeardownError(f"the Mesos master refused framework {framework_id}: {callbacks.refusal}")
        subscribed = True
    finally:
        if not subscribed:
            driver.stop(failover=True)
    driver.stop(failover=False)  # pymesos sends TEARDOWN when a non-failover driver stops
    driver.join()
    return f"framework {framework_id} {_TORN_DOWN}"


def busy_error(config: Config) -> TeardownError:
    """What a teardown says when a scheduler holds the leader lock."""
    return TeardownError(
        f"a scheduler is running for cluster {config.cluster_name} (it holds the leader lock); stop it "
        "first (e.g. scale its Marathon app to 0), then run the teardown again"
    )


def teardown_cluster(
    config: Config,
    *,
    purge: bool = False,
    lock_timeout: float = 15.0,
    register_timeout: float = 30.0,
    driver_factory: Callable[..., Any] | None = None,
    clock: Callable[[], float] = time.time,
) -> list[str]:
    """``es-framework teardown``: mark the state torn down, send TEARDOWN with the stored framework id
    (Mesos kills the nodes), keep the volumes, and with ``purge`` delete the state. Returns the
    lines to print; raises :class:`TeardownError`."""
    with lead_state(config, lock_timeout=lock_timeout, busy=busy_error(config)) as led:
        state = led.state
        if state is None:
            raise TeardownError(f"no state for cluster {config.cluster_name} of framework {config.framework_name}")
        lines: list[str] = []
        if state.torn_down_at is None:
            state = replace(state, torn_down_at=clock())
            led.save(state)
            lines.append(f"state of cluster {config.cluster_name} marked torn down")
        else:
            lines.append(f"state of cluster {config.cluster_name} was already marked torn down; sending TEARDOWN again")
        if state.framework_id is not None:
            outcome = send_teardown(config, state.framework_id, driver_factory, register_timeout)
            lines.append(outcome)
            if state.nodes and outcome.endswith(_TORN_DOWN):
                for record in sorted(state.nodes.values(), key=lambda r: r.node_id):
                    log.info("node %d task %s: killed by TEARDOWN", record.node_id, record.task_id)
                lines.append(
                    "nodes killed: "
                    + ", ".join(f"node {r.node_id} (task {r.task_id})" for _, r in sorted(state.nodes.items()))
                )
        else:
            lines.append("no framework id stored: nothing registered with Mesos")
        ids = set(state.nodes) | set(range(1, state.desired_nodes + 1))
        if config.external_volume_driver or any(r.volumes for r in state.nodes.values()):
            kept = [name for node_id in sorted(ids) for name in volume_names(config.framework_name, node_id)]
            lines.append(f"volumes kept (not deleted): {', '.join(kept)}")
        else:
            lines.append(f"data kept on the agents under {local_data_dir(config)}")
        if purge:
            led.store.delete()
            lines.append(f"state of cluster {config.cluster_name} deleted (--purge)")
        else:
            lines.append("a scheduler started on this state refuses to start; --purge deletes the state")
        return lines
