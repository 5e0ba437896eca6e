"""What a scheduler checks of the stored state every time it leads, not only when it starts (pure).

The nodes' running Elasticsearch versions are kept in the state (each node record's ``version``, as
its executor reported ``GET /``'s ``version.number``), so a new leader knows them before any node
reports again. ``es_framework/app/run.py`` checks them against this scheduler's target version when
the process first leads (:func:`es_framework.app.startup.check_state_startable`). A scheduler that
lost the leader lock and takes it back later re-reads the state (``Engine.reload``), which another
leader may have changed meanwhile: that leader may have upgraded the nodes past this scheduler's
target. Acting on it would roll the nodes back, a downgrade Elasticsearch does not support
(:mod:`es_framework.core.version_change`). So the same check runs on every re-read, and a refused
state is not acted on: :class:`StateRefusedError` leaves the engine unable to act, and the shell
(:mod:`es_framework.shell.subscription`) does not subscribe and stops the scheduler, saying why, so
that the lock goes to a scheduler whose flags fit.
"""

from __future__ import annotations

from es_framework.config import Config
from es_framework.core.config_record import config_values
from es_framework.core.node_state import ClusterState
from es_framework.core.version_change import distribution_changed, start_refusal


class StateRefusedError(Exception):
    """The stored state refuses this scheduler's flags (e.g. a version downgrade); nothing was written."""


def state_refusal(config: Config, state: ClusterState) -> str | None:
    """Why this scheduler (``config``: its flags with the state's overrides) must not act on ``state``,
    or None: a target Elasticsearch version the running nodes cannot be upgraded to, or an unknown
    one with another image or distribution (:func:`~es_framework.core.version_change.start_refusal`)."""
    changed = distribution_changed(state, config_values(config))
    return start_refusal(state, config.target_version, distribution_changed=changed)


def check_state(config: Config, state: ClusterState) -> None:
    """Raise :class:`StateRefusedError` when :func:`state_refusal` refuses ``state``."""
    refusal = state_refusal(config, state)
    if refusal is not None:
        raise StateRefusedError(refusal)
