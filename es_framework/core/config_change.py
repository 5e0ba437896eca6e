"""A configuration change of a running scheduler (``PUT /v1/cluster/configuration``), decided (pure).

The request body is a JSON object of flag names, spelt as on the command line, and their values
(``{"elasticsearchRam": 4096, "elasticsearchCpu": 1.5}``). Each value becomes the text the flag's
parser reads (a number as written, ``true``/``false``, ``null`` as the empty text) and goes through
the very parser and cross-flag rules of the command line (:data:`es_framework.config.FLAGS`,
:mod:`es_framework.config.resolve`); there is no second validator. Refusals, and nothing changes:

- **400** an unknown flag (with the closest names), a flag that is not in :data:`CHANGEABLE_FLAGS`
  (it needs a scheduler restart), a value of another JSON type, a value the flag's parser refuses
  (its message, as at start);
- **409** a rollout in progress (``rollout <id> … in progress; abort it first``: the simplest safe
  rule, so two targets never mix in one cluster), a target Elasticsearch version the running nodes
  cannot reach (:func:`es_framework.core.version_change.refuse_version_change`).

Only flags that change the task definition of a node and that a rolling restart can carry are
changeable: resources, the image or distribution and its version, the ``elasticsearch.yml``, the
open-file limit. Everything else (names, Mesos and ZooKeeper addresses, the API's port and token,
roles, the strategy and volumes, ports, security, the master-eligible count, placement) shapes the
framework, its storage or the cluster's topology and needs a restart of the scheduler.

A change is kept as overrides of the flags the scheduler started with
(:mod:`es_framework.core.config_overrides`); a value equal to the flag's drops its override (so
``PUT`` with the start value undoes a change). The new configuration is recorded exactly as a
scheduler restarted with other flags records it (:func:`es_framework.core.config_record.record_configuration`)
and its rollout is the same (:func:`es_framework.core.engine_rollouts.configuration_rollout`).

At every start (and re-read of the state) :func:`at_start` applies the stored overrides to the flags
given. When a flag given differs from the value its override was made over, the operator's later act
is the flag: it wins, and the override is dropped (logged at WARNING).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from es_framework.config import FLAGS, FLAGS_BY_NAME, Config, ConfigError, Ports, redact_url
from es_framework.config.resolve import check_between_flags
from es_framework.config.urls import redact_credentials
from es_framework.config.versions import EsVersion
from es_framework.core.config_overrides import NO_OVERRIDES, ConfigOverrides, Override
from es_framework.core.config_record import config_fingerprint, config_values, record_configuration
from es_framework.core.engine_rollouts import configuration_rollout
from es_framework.core.node_state import ClusterState
from es_framework.core.operations import OperatorError
from es_framework.core.rollout_model import Rollout
from es_framework.core.version_change import refuse_version_change

#: The flags ``PUT /v1/cluster/configuration`` may change: each one shapes the node's task (see
#: :func:`es_framework.core.config_record.config_values` and :mod:`es_framework.core.task_builder`)
#: and a rolling restart carries it, node by node, with the node's id, agent and volumes.
CHANGEABLE_FLAGS: tuple[str, ...] = (
    "elasticsearchCpu",
    "elasticsearchRam",
    "elasticsearchDisk",
    "elasticsearchDockerImage",
    "elasticsearchBinaryUrl",
    "elasticsearchVersion",
    "elasticsearchSettingsLocation",
    "elasticsearchNofile",
)
SETTINGS_FLAG = "elasticsearchSettingsLocation"
#: The changeable flags whose value is a number (given as a JSON number or as text); the others take
#: text or null (the empty text: unset).
NUMBER_FLAGS = frozenset({"elasticsearchCpu", "elasticsearchRam", "elasticsearchDisk", "elasticsearchNofile"})
#: What the body is, for the 400 answers.
BODY = 'a JSON object of flag names and values, e.g. {"elasticsearchRam": 4096}'


def flag_value(config: Config, name: str) -> Any:
    """``config``'s value of flag ``name`` in a JSON form (compared with a stored ``over``)."""
    value = getattr(config, FLAGS_BY_NAME[name].attr)
    if isinstance(value, EsVersion):
        return str(value)
    if isinstance(value, Ports):
        return f"{value.http},{value.transport}"
    return value


def shown(config: Config, name: str) -> str:
    """The flag's value for a message or the log (credentials in a URL masked)."""
    value = flag_value(config, name)
    return repr(redact_url(value) if isinstance(value, str) else value)


def flag_text(name: str, value: object) -> str:
    """The command-line text of a JSON value: a number as written, ``null`` as the empty text. 400
    for a type the flag does not take (a number flag takes a number or text, the others text or null)."""
    if isinstance(value, str):
        return value
    if name in NUMBER_FLAGS and isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    if name not in NUMBER_FLAGS and value is None:
        return ""
    kind = "a number (or its text)" if name in NUMBER_FLAGS else "a text, or null to unset it"
    raise OperatorError(400, f"{name}: the value must be {kind}, as on the command line, not {_json_type(value)}")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "an object" if isinstance(value, Mapping) else "a list"


def requested_texts(body: Mapping[str, object]) -> dict[str, str]:
    """The flags asked for, as command-line texts. Raises :class:`OperatorError` 400 for no flag, an
    unknown one (naming the closest), one that needs a restart, or a value of another type."""
    if not body:
        raise OperatorError(400, f"no flag to change; the body is {BODY}")
    problems: list[str] = []
    texts: dict[str, str] = {}
    for name, value in body.items():
        if name not in FLAGS_BY_NAME:
            close = difflib.get_close_matches(name, list(FLAGS_BY_NAME), n=3, cutoff=0.6)
            problems.append(f"unknown flag {name[:80]!r}" + (f"; did you mean {', '.join(close)}?" if close else ""))
        elif name not in CHANGEABLE_FLAGS:
            problems.append(
                f"{name} cannot be changed at runtime: it needs a scheduler restart with --{name}; changeable are "
                f"{', '.join(CHANGEABLE_FLAGS)}"
            )
        else:
            try:
                texts[name] = flag_text(name, value)
            except OperatorError as refused:
                problems.append(refused.message)
    if problems:
        raise OperatorError(400, "; ".join(problems))
    return texts


def apply_texts(base: Config, texts: Mapping[str, str]) -> Config:
    """``base`` with the flags of ``texts`` parsed by their own parsers and checked by the command
    line's cross-flag rules (only their messages about these flags count). Raises
    :class:`ConfigError` with the command line's messages."""
    values: dict[str, Any] = {spec.name: getattr(base, spec.attr) for spec in FLAGS}
    values["zookeeperMesosUrl"] = None  # folded into mesosMaster at start
    problems: list[str] = []
    warnings: list[str] = []
    for name, text in sorted(texts.items()):
        try:
            values[name] = FLAGS_BY_NAME[name].parse(text)
        except ValueError as exc:
            del values[name]  # the rules between flags skip what did not parse, as at start
            problems.append(redact_credentials(f"--{name}: {redact_url(text)!r} {exc}", text))
    given = set(texts)
    check_between_flags(values, given, problems, warnings)
    # Problems and warnings of flags not changed here were there at start already (and accepted).
    mine = tuple(f"--{name}" for name in given)
    problems = [p for p in problems if any(flag in p for flag in mine)]
    if problems:
        raise ConfigError(problems)
    changed = {FLAGS_BY_NAME[name].attr: values[name] for name in texts}
    return replace(base, **changed, warnings=tuple(w for w in warnings if any(flag in w for flag in mine)))


def effective(flags: Config, overrides: ConfigOverrides) -> Config:
    """The configuration the scheduler runs with: ``flags`` with ``overrides`` applied. Raises
    :class:`ConfigError`."""
    config = apply_texts(flags, {name: o.value for name, o in overrides.flags.items()})
    if SETTINGS_FLAG in overrides.flags:
        config = replace(config, user_settings=MappingProxyType(dict(overrides.user_settings or {})))
    return config


def fingerprint(config: Config) -> str:
    return config_fingerprint(config_values(config))


@dataclass(frozen=True)
class Proposal:
    """A ``PUT``'s new configuration and overrides, before the engine decides."""

    config: Config
    overrides: ConfigOverrides
    #: The changeable flags whose value differs from the current configuration's.
    changed: tuple[str, ...]
    #: The settings file must be read (and checked) before the change is decided: its location or the
    #: target version it is checked against changed.
    read_settings: bool

    def with_settings(self, loaded: Config) -> Proposal:
        """The proposal with the settings file read into ``loaded`` (``config`` with its settings)."""
        snapshot = loaded.user_settings if SETTINGS_FLAG in self.overrides.flags else None
        return replace(self, config=loaded, overrides=replace(self.overrides, user_settings=snapshot))


def propose(
    flags: Config, current: Config, stored: ConfigOverrides, texts: Mapping[str, str], *, now: float
) -> Proposal:
    """``texts`` (from :func:`requested_texts`) over the ``stored`` overrides of ``flags``, the
    configuration the scheduler started with; ``current`` is the one it runs with. Raises
    :class:`ConfigError` (a 400) when a value is invalid."""
    merged = {**{name: o.value for name, o in stored.flags.items()}, **texts}
    config = apply_texts(flags, merged)
    kept: dict[str, Override] = {}
    for name, text in sorted(merged.items()):
        if flag_value(config, name) == flag_value(flags, name):
            continue  # back to the flag given at start: no override
        old = stored.flags.get(name)
        kept[name] = old if old is not None and old.value == text else Override(text, flag_value(flags, name), now)
    snapshot = stored.user_settings if SETTINGS_FLAG in kept and SETTINGS_FLAG in stored.flags else None
    overrides = ConfigOverrides(MappingProxyType(kept), snapshot)
    if SETTINGS_FLAG in kept:
        config = replace(config, user_settings=MappingProxyType(dict(snapshot or {})))
    else:
        config = replace(config, user_settings=flags.user_settings)
    read = config.settings_location is not None and (
        config.settings_location != current.settings_location
        or config.target_version.version != current.target_version.version
    )
    changed = tuple(name for name in CHANGEABLE_FLAGS if flag_value(config, name) != flag_value(current, name))
    return Proposal(config, overrides, changed, read)


@dataclass(frozen=True)
class Decision:
    """What the engine persists and answers for an accepted change."""

    state: ClusterState
    changed: tuple[str, ...]
    #: The rollout the change created (None: no change, or no running node to restart).
    rollout: Rollout | None
    message: str
    #: What to log (the rollout's lines).
    lines: tuple[str, ...] = ()


def running_versions(state: ClusterState) -> dict[int, str | None]:
    return {node_id: record.version for node_id, record in sorted(state.nodes.items())}


def decide(
    state: ClusterState, current: Config, proposal: Proposal, *, now: float, elected_master: int | None
) -> Decision:
    """The change of ``current`` to ``proposal`` over ``state``: the state to persist (overrides, the
    recorded configuration, the ``configuration`` rollout) or :class:`OperatorError` 409."""
    new = proposal.config
    if not proposal.changed and fingerprint(new) == fingerprint(current):
        return Decision(state, (), None, "no change: the scheduler runs with this configuration already")
    if state.rollout is not None:
        busy = state.rollout
        raise OperatorError(
            409,
            f"rollout {busy.id} ({busy.reason.value}) in progress; abort it first "
            f"(POST /v1/rollouts/{busy.id}/abort), then send the change again; nothing was changed",
        )
    target = new.target_version.version
    if target != current.target_version.version:
        reason = refuse_version_change(
            running_versions(state),
            str(target) if target is not None else None,
            new_cluster=state.cluster_uuid is None and not any(r.seen_running for r in state.nodes.values()),
        )
        if reason is not None:
            raise OperatorError(409, f"{reason}; nothing was changed")
    before = replace(state, config_overrides=proposal.overrides)
    after = record_configuration(before, new, now=now)
    final, lines = configuration_rollout(
        before,
        after,
        now=now,
        elected_master=elected_master,
        master_nodes=new.master_nodes,
        target_version=new.target_version,
    )
    what = ", ".join(f"{name} {shown(current, name)} -> {shown(new, name)}" for name in proposal.changed)
    rollout = final.rollout
    if rollout is not None and rollout is not state.rollout:
        order = ", ".join(map(str, rollout.order))
        message = f"configuration changed ({what}): rollout {rollout.id} restarts nodes {order} one at a time"
    elif fingerprint(new) == fingerprint(current):
        rollout, message = None, f"configuration changed ({what}); the nodes' tasks stay as they are: no restart"
    else:
        rollout, message = None, f"configuration changed ({what}); no running node to restart: new nodes use it"
    return Decision(final, proposal.changed, rollout, message, lines)


@dataclass(frozen=True)
class StartConfig:
    """The configuration a leader runs with, the overrides it keeps, and what to log at WARNING."""

    config: Config
    overrides: ConfigOverrides
    lines: tuple[str, ...]


def at_start(flags: Config, stored: ConfigOverrides) -> StartConfig:
    """``flags`` (given at start) with the ``stored`` overrides applied. An override whose flag is
    given with another value than the one it was made over is dropped: the operator's later act wins.
    Overrides that no longer apply to these flags are all dropped (said why)."""
    kept: dict[str, Override] = {}
    lines: list[str] = []
    for name, override in sorted(stored.flags.items()):
        shown = redact_url(override.value)
        if name not in CHANGEABLE_FLAGS:
            lines.append(f"the stored override --{name} {shown!r} is dropped: {name} is not changeable at runtime")
            continue
        given = flag_value(flags, name)
        if given != override.over:
            lines.append(
                f"--{name} {redact_url(str(given))!r} given at start differs from {redact_url(str(override.over))!r}, "
                f"the value the API's override {shown!r} was made over: the flag, the later act, wins and the "
                "override is dropped"
            )
            continue
        kept[name] = override
    overrides = ConfigOverrides(MappingProxyType(kept), stored.user_settings if SETTINGS_FLAG in kept else None)
    if overrides.empty:
        return StartConfig(flags, NO_OVERRIDES, tuple(lines))
    try:
        config = effective(flags, overrides)
    except ConfigError as error:
        lines.append(
            f"the stored overrides ({', '.join(sorted(kept))}) do not apply to the flags given at start "
            f"({'; '.join(error.problems)}): all are dropped and the flags win"
        )
        return StartConfig(flags, NO_OVERRIDES, tuple(lines))
    return StartConfig(config, overrides, tuple(lines))
