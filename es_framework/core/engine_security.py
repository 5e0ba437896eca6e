"""The engine's half of the cluster's security: the mode and the certificate authority in the state.

The mode (:mod:`es_framework.core.security_mode`) is decided and recorded once the state is read at
leadership, before the scheduler registers with Mesos (so before any launch that depends on it), and
the engine runs with it (:func:`settle_security_mode`).

The CA is made at the edge (keys from the system's randomness, :mod:`es_framework.app.security`) and
written here through the engine's own state write, fenced by the leader lock like every write, once
per cluster: a CA already stored is never replaced (a new CA is a rotation, which must roll every
node to trust both first).
"""

from __future__ import annotations

from dataclasses import replace

from es_framework.core.cluster_ca import StoredCa
from es_framework.core.engine_configuration import ConfigurationCommands
from es_framework.core.engine_security_switch import start_switch
from es_framework.core.engine_state import StatePersistence
from es_framework.core.security_mode import SecurityDecision, decide_for


def record_certificate_authority(engine: StatePersistence, stored: StoredCa, *, reseal: bool = False) -> bool:
    """Store ``stored`` as the cluster's CA; True once written. Refused (False, nothing written) when
    a CA is stored already, unless ``reseal``: the same certificate, with its key now sealed or with
    the ``elastic`` password it lacked (a password once stored is never replaced here: that is a
    rotation)."""
    current = engine.state.certificate_authority
    if current is not None and (
        not reseal
        or current.certificate_pem != stored.certificate_pem
        or (current.sealed and not stored.sealed)
        or stored.elastic_password is None
        or (current.elastic_password is not None and current.sealed == stored.sealed)
    ):
        return False
    # The engine's own write (a mixin of the engine would add lines to core/engine.py, at its limit).
    return engine._persist(replace(engine.state, certificate_authority=stored))


def settle_security_mode(engine: StatePersistence) -> SecurityDecision:
    """Decide the cluster's ``--elasticsearchSecurity`` mode over the state just read
    (:func:`~es_framework.core.security_mode.decide_for`), record it when the state records none yet,
    and run the engine with it (its configuration, and the flags it re-applies the overrides to).

    The record is written at once, through the engine's fenced write. Should that write fail (it
    re-read the state), the mode is decided again over what was read and kept in the engine's state,
    so that the next write, which precedes any launch (a launch is written before its ACCEPT), records
    it. What the decision tells the operator is for the caller to log.

    A switch from ``off`` to ``auto`` (``--elasticsearchSecuritySwitch fullRestart``) is recorded with
    every node marked stopping in that one write (:func:`~es_framework.core.engine_security_switch.start_switch`);
    the kills go out after the registration (``pending_kills``). Should the write fail, nothing is
    switched: the cluster runs ``off`` for now and a warning says to start again."""
    decision = decide_for(engine.config, engine.state)
    if decision.switch:
        decision = _start_switch(engine, decision)
    elif decision.record is not None and not engine._persist(replace(engine.state, security_mode=decision.record)):
        decision = decide_for(engine.config, engine.state)
        if decision.switch:  # another leader's write came between: the state may have changed in any way
            decision = _not_switched(decision, "its state changed while it was being recorded")
        elif decision.record is not None:
            engine.state = replace(engine.state, security_mode=decision.record)
    engine.config = replace(engine.config, elasticsearch_security=decision.mode)
    if isinstance(engine, ConfigurationCommands):
        # Every re-read of the state applies the overrides to these again (engine_configuration.py).
        engine.flags_config = replace(engine.flags_config, elasticsearch_security=decision.mode)
    return decision


def _start_switch(engine: StatePersistence, decision: SecurityDecision) -> SecurityDecision:
    """Record the switch to ``auto`` (the mode, the switch, every node stopping) in one fenced write."""
    now = engine._clock() if isinstance(engine, ConfigurationCommands) else 0.0
    if engine._persist(start_switch(engine.state, now)):
        return decision
    return _not_switched(decide_for(engine.config, engine.state), "the state could not be written")


def _not_switched(decision: SecurityDecision, why: str) -> SecurityDecision:
    """``decision`` (a switch) not carried out: the cluster runs ``off`` as recorded, and says so."""
    if not decision.switch:
        return decision
    said = f"--elasticsearchSecuritySwitch fullRestart was not started ({why}): the cluster runs off; start the "
    return SecurityDecision("off", None, (said + "scheduler again with the same flags to switch",))
