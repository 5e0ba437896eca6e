"""The scheduler process (what ``es-framework`` runs without a command): lead the cluster's state,
recover it, register with Mesos through the driver shell, serve the REST API until told to stop.

A scheduler that loses the leader lock stays up: it lets its Mesos subscription go (with failover)
and waits for the lock to lead again (es_framework/shell/subscription.py says why)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace

from es_framework.app.scheduler_api import start_api
from es_framework.app.startup import RefusedError, api_host, check_state_startable
from es_framework.app.store import EngineStore, open_store
from es_framework.config import Config
from es_framework.core.engine import Engine
from es_framework.core.engine_security import settle_security_mode
from es_framework.core.node_state import ClusterState
from es_framework.shell.driver import SchedulerShell
from es_framework.shell.hooks import NO_HOOKS, Hooks
from es_framework.shell.memory import paused_gc, settle_after_load
from es_framework.shell.state_store import StateStore
from strategies import strategy_for

__all__ = ["RefusedError", "TornDownError", "run_scheduler", "torn_down_message"]

log = logging.getLogger("es_framework.app.run")


class TornDownError(RefusedError):
    """The stored state belongs to a framework that ``es-framework teardown`` removed."""


def torn_down_message(config: Config, state: ClusterState) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(state.torn_down_at or 0))
    return (
        f"cluster {config.cluster_name} (framework {config.framework_name}) was torn down at {when} "
        f"(framework id {state.framework_id or 'none'}); its state is kept only as a record and no scheduler "
        "starts on it. To start the cluster again (reusing its volumes), delete the state with "
        "'es-framework teardown --purge' and the same flags, or choose another --elasticsearchClusterName"
    )


def load_engine(config: Config, store: StateStore) -> Engine:
    """The engine over the stored state, as a new leader builds it: the collector paused meanwhile,
    then the loaded objects kept out of its later rounds and the decoded document's pages given
    back (es_framework/shell/memory.py says why)."""
    with paused_gc():
        engine = Engine(config, EngineStore(store), clock=time.time, strategy=strategy_for(config))
    settle_after_load()
    return engine


def run_scheduler(config: Config, should_stop: threading.Event, hooks: Hooks = NO_HOOKS) -> None:
    """The scheduler process: lead, recover state, register, serve until ``should_stop``.
    ``hooks`` are for development tools (``es_framework.dev.scheduler``); production has none.

    Raises :class:`TornDownError` (before registering anything) when the state was torn down."""
    store = open_store(config)
    store.start()
    try:
        log.info("waiting to lead cluster %s (only one scheduler acts at a time)", config.cluster_name)
        while not store.acquire_leadership(timeout=1.0):
            if should_stop.is_set():
                return
        log.info("leading cluster %s", config.cluster_name)
        engine = load_engine(config, store)
        if engine.state.torn_down_at is not None:
            raise TornDownError(torn_down_message(config, engine.state))
        check_state_startable(engine.config, engine.state)  # e.g. a version downgrade: refused, nothing written
        # The cluster's security mode: what its state records, else decided now and recorded before
        # anything registers or launches (core/security_mode.py); the shell and the API run with it.
        security = settle_security_mode(engine)
        for line in security.warnings:
            log.warning("%s", line)
        for line in security.notes:
            log.info("%s", line)
        config = replace(config, elasticsearch_security=security.mode)
        if engine.config.creates_ca or engine.state.certificate_authority is not None:
            # --elasticsearchSecurity auto: the CA, created once (a stored one checked against
            # --secretKeyFile). Imported only then: cryptography adds about 20 MB to the process.
            from es_framework.app.security import ensure_certificate_authority  # noqa: PLC0415

            ensure_certificate_authority(engine.config, engine, clock=time.time)

        # The shell holds a Mesos subscription only while the store's leader lock is held: it lets
        # the subscription go when the lock is lost and takes the lock back itself
        # (es_framework/shell/subscription.py).
        shell = SchedulerShell(config, engine, lock=store, hooks=hooks)
        api = start_api(config, shell, host=api_host(config))
        try:
            shell.run(should_stop)
        finally:
            api.stop()
    finally:
        store.close()
