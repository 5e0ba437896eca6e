"""Development tool: ``GET``/``PUT /v1/cluster/configuration`` for :class:`es_framework.dev.fake_api.FakeCore`.

The fake decides a change with the real pure core (:mod:`es_framework.core.config_change`: the
same 400s and 409s) over the default flags and a state without nodes, so an accepted change creates
no rollout; it reads no settings file (a change that needs one is refused with 400)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from es_framework.api.core import ApiError
from es_framework.app.configuration import overrides_view
from es_framework.config import Config, ConfigError, resolve_config
from es_framework.core.config_change import CHANGEABLE_FLAGS, decide, fingerprint, propose, requested_texts
from es_framework.core.config_overrides import NO_OVERRIDES, ConfigOverrides
from es_framework.core.node_state import ClusterState
from es_framework.core.operations import OperatorError
from es_framework.core.rollout_model import Rollout

#: The fake's fixed now (:data:`es_framework.dev.fake_api.EPOCH`).
NOW = 1_790_000_000.0


class FakeConfiguration:
    """Mixed into :class:`~es_framework.dev.fake_api.FakeCore`; its ``rollout`` blocks a change (409)."""

    rollout: Rollout | None
    _config_lock = threading.Lock()
    _flags: Config | None = None
    _current: Config | None = None
    _overrides: ConfigOverrides = NO_OVERRIDES

    def _configs(self) -> tuple[Config, Config]:
        if self._flags is None or self._current is None:
            self._flags = self._current = resolve_config({}, {})
        return self._flags, self._current

    def configuration(self) -> Mapping[str, Any]:
        with self._config_lock:
            flags, current = self._configs()
            values, given = current.public_dict(), flags.public_dict()
            return {
                "changeable": list(CHANGEABLE_FLAGS),
                "values": {name: values[name] for name in CHANGEABLE_FLAGS},
                "flags": {name: given[name] for name in CHANGEABLE_FLAGS},
                "overrides": overrides_view(self._overrides),
                "fingerprint": fingerprint(current),
            }

    def change_configuration(self, values: Mapping[str, object]) -> Mapping[str, Any]:
        with self._config_lock:
            flags, current = self._configs()
            try:
                proposal = propose(flags, current, self._overrides, requested_texts(values), now=NOW)
                if proposal.read_settings:
                    raise OperatorError(400, "the fake core reads no settings file")
                state = ClusterState(desired_nodes=3, rollout=self.rollout)
                decision = decide(state, current, proposal, now=NOW, elected_master=None)
            except ConfigError as invalid:
                raise ApiError(400, "; ".join(invalid.problems)) from None
            except OperatorError as refused:
                raise ApiError(refused.status, refused.message) from None
            if decision.changed:
                self._current, self._overrides = proposal.config, proposal.overrides
            return {
                "changed": list(decision.changed),
                "message": decision.message,
                "rollout": None,
                "overrides": overrides_view(self._overrides),
                "warnings": list(proposal.config.warnings),
            }
