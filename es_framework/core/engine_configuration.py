"""The engine's half of a runtime configuration change (``PUT /v1/cluster/configuration``) and of
the stored overrides at start, kept apart from the event handling in :mod:`es_framework.core.engine`.

The decision is :mod:`es_framework.core.config_change` (pure). Here: the engine keeps the flags it was
started with (:attr:`ConfigurationCommands.flags_config`) and runs with them plus the stored overrides
(:attr:`config`), re-derived whenever it reads the state (another leader may have changed them); an
accepted change is persisted (overrides, recorded configuration, rollout) *before* the engine swaps
its configuration, so that a crash in between leaves the state, which every next leader applies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from es_framework.config import Config, redact_url
from es_framework.core import operations
from es_framework.core.config_change import Decision, Proposal, at_start, decide
from es_framework.core.config_overrides import ConfigOverrides
from es_framework.core.mesos_calls import Call
from es_framework.core.node_state import ClusterState

log = logging.getLogger("es_framework.core.engine")


class ConfigurationCommands:
    """Mixed into :class:`~es_framework.core.engine.Engine`, which provides what is declared here."""

    config: Config
    #: The configuration given at start (flags, settings file read); :attr:`config` adds the overrides.
    flags_config: Config
    state: ClusterState
    _clock: Callable[[], float]
    elected_master: int | None
    #: The overrides last applied (logged once, not at every re-read of the state).
    _applied: ConfigOverrides | None = None

    def require_action(self) -> None:
        raise NotImplementedError

    def _write(self, state: ClusterState, what: str) -> None:
        raise NotImplementedError

    def _event(self, message: str, node_id: int | None = None, state: str | None = None) -> None:
        raise NotImplementedError

    def _apply_overrides(self) -> None:
        """Run with the flags plus the overrides of the state just read; drop the overrides a flag
        given at start replaced (kept in memory: written with the next state write)."""
        start = at_start(self.flags_config, self.state.config_overrides)
        for line in start.lines:
            log.warning("%s", line)
        if start.overrides != self.state.config_overrides:
            self.state = replace(self.state, config_overrides=start.overrides)
        if start.overrides.flags and start.overrides != self._applied:
            for name, override in sorted(start.overrides.flags.items()):
                log.warning(
                    "--%s: running with %r, set through the API (PUT /v1/cluster/configuration), not the flag's %r",
                    name,
                    redact_url(override.value),
                    override.over,
                )
        self._applied = start.overrides
        self.config = start.config

    def configuration_basis(self) -> tuple[tuple[Config, Config, ConfigOverrides], list[Call]]:
        """The flags, the configuration and the stored overrides a change is proposed over."""
        return (self.flags_config, self.config, self.state.config_overrides), []

    def change_configuration(self, proposal: Proposal, basis: Config) -> tuple[Decision, list[Call]]:
        """Decide ``proposal`` (made over ``basis``, the configuration then), persist it, then run
        with it. 409 when the configuration changed since ``basis`` (send the request again)."""
        self.require_action()
        if self.config is not basis:
            raise operations.OperatorError(
                409, "the configuration changed while this request was checked; nothing was changed: send it again"
            )
        decision = decide(self.state, self.config, proposal, now=self._clock(), elected_master=self.elected_master)
        if not decision.changed:
            return decision, []
        self._write(decision.state, "nothing was changed")
        self.config = proposal.config
        log.warning("%s (PUT /v1/cluster/configuration)", decision.message)
        for line in decision.lines:
            log.info("%s", line)
        self._event(decision.message)
        return decision, []
