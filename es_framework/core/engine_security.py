"""The engine's half of the cluster's certificate authority: keeping it in the state.

The CA is made at the edge (keys from the system's randomness, :mod:`es_framework.app.security`) and
written here through the engine's own state write, fenced by the leader lock like every write, once
per cluster: a CA already stored is never replaced (a new CA is a rotation, which must roll every
node to trust both first).
"""

from __future__ import annotations

from dataclasses import replace

from es_framework.core.cluster_ca import StoredCa
from es_framework.core.engine_state import StatePersistence


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
