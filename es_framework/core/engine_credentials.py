"""The engine's half of a credentials rotation: writing each step's record through its own fenced state
write (:mod:`es_framework.core.credentials` says which steps). Runs on the engine thread (the REST API
hands it over with the shell's ``call``), so it never races the engine's other writes.
"""

from __future__ import annotations

from dataclasses import replace

from es_framework.core.cluster_ca import StoredCa
from es_framework.core.engine_state import StatePersistence


def record_credentials(engine: StatePersistence, before: StoredCa, after: StoredCa) -> bool:
    """Store ``after``, a rotation step computed from ``before``; True once written. Refused (False,
    nothing written) unless the state holds ``before`` still (another step got there first: a step is
    never applied to a record it was not computed from) and ``after`` keeps its CA."""
    current = engine.state.certificate_authority
    if current != before or current.certificate_pem != after.certificate_pem or current.sealed != after.sealed:
        return False
    if current == after:
        return True
    return engine._persist(replace(engine.state, certificate_authority=after))
