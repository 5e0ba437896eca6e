"""``GET`` and ``PUT /v1/cluster/configuration`` for the running scheduler (the REST API's core half).

A change goes: the flags and values asked for (:func:`es_framework.core.config_change.requested_texts`,
400) → a proposal over the flags the engine started with and the overrides it holds, taken on the
engine thread (:func:`es_framework.core.config_change.propose`, the command line's parsers: 400) → the
operator's ``elasticsearch.yml`` read and checked here, on the request's thread, when its location or
the version it is checked against changes (the same :func:`es_framework.shell.user_settings.load` as
at start: 400) → the engine decides, persists and swaps its configuration on its own thread
(:meth:`es_framework.core.engine_configuration.ConfigurationCommands.change_configuration`: 409 while
a rollout is under way, or when the configuration changed meanwhile).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from es_framework.api.core import ApiError
from es_framework.api.views import iso_time
from es_framework.config import Config, ConfigError, redact_url
from es_framework.core.config_change import CHANGEABLE_FLAGS, Proposal, propose, requested_texts
from es_framework.core.config_overrides import ConfigOverrides
from es_framework.core.engine import Engine
from es_framework.core.mesos_calls import Call
from es_framework.core.operations import OperatorError
from es_framework.shell import user_settings

log = logging.getLogger("es_framework.app.configuration")
T = TypeVar("T")
#: Runs a body on the engine thread, an :class:`OperatorError` or a timeout as :class:`ApiError`.
Run = Callable[[Callable[[], tuple[T, list[Call]]]], T]


def _public(config: Config) -> dict[str, Any]:
    values = config.public_dict()
    return {name: values[name] for name in CHANGEABLE_FLAGS}


def overrides_view(overrides: ConfigOverrides) -> dict[str, Any]:
    return {
        name: {
            "value": redact_url(o.value),
            "over": redact_url(o.over) if isinstance(o.over, str) else o.over,
            "at": iso_time(o.at),
        }
        for name, o in sorted(overrides.flags.items())
    }


def configuration_view(engine: Engine, overrides: ConfigOverrides, fingerprint: str | None) -> dict[str, Any]:
    """``GET /v1/cluster/configuration``: the changeable flags, their values now and at start, the overrides."""
    return {
        "changeable": list(CHANGEABLE_FLAGS),
        "values": _public(engine.config),
        "flags": _public(engine.flags_config),
        "overrides": overrides_view(overrides),
        "fingerprint": fingerprint,
    }


def change_configuration(
    run: Run[Any], engine: Engine, body: Mapping[str, object], *, load: Callable[[Config], Config] = user_settings.load
) -> dict[str, Any]:
    """``PUT /v1/cluster/configuration``: the change applied (persisted, rollout created) and what it
    did, or :class:`ApiError` (400, 409, 503) and nothing changed."""
    try:
        texts = requested_texts(body)
    except OperatorError as refused:
        raise ApiError(refused.status, refused.message) from None
    flags, current, stored = run(engine.configuration_basis)
    try:
        proposal: Proposal = propose(flags, current, stored, texts, now=time.time())
    except ConfigError as invalid:
        raise ApiError(400, "; ".join(invalid.problems)) from None
    if proposal.read_settings:
        try:
            proposal = proposal.with_settings(load(proposal.config))
        except user_settings.UserSettingsError as invalid:
            raise ApiError(400, str(invalid)) from None
    for warning in proposal.config.warnings:
        log.warning("PUT /v1/cluster/configuration: %s", warning)
    decision = run(lambda: engine.change_configuration(proposal, current))
    rollout = decision.rollout
    return {
        "changed": list(decision.changed),
        "message": decision.message,
        "rollout": {"id": rollout.id, "order": list(rollout.order)} if rollout is not None else None,
        "overrides": overrides_view(decision.state.config_overrides),
        "warnings": list(proposal.config.warnings),
    }
