"""The security flags, a part of the flag table (:data:`es_framework.config.flags.FLAGS`):
``--elasticsearchSecurity`` and ``--secretKeyFile``, and the rules between them and the other
flags (:func:`check_security_flags`, run by :func:`es_framework.config.resolve.check_between_flags`).

``--elasticsearchSecurity`` defaults to ``auto`` for a new cluster outside local mode: the scheduler
secures the nodes (a CA created once, every node a certificate at launch, a generated ``elastic``
password: mutual TLS on the transport, HTTPS and authentication on HTTP). The flag's value is not the
whole answer: a cluster keeps the mode its framework state records (transport TLS cannot be rolled
into a running cluster), so when the flag is not given the configuration holds ``None`` and the mode
is decided at leadership, once the state is read (:mod:`es_framework.core.security_mode`). Local mode
keeps the behaviour of the release before: ``off`` unless ``auto`` is given.
"""

from __future__ import annotations

from typing import Any

from es_framework.config.flag_spec import FlagSpec
from es_framework.config.secret_key import SECRET_KEY_HINT, secret_key_problem
from es_framework.config.values import Secret

SECURITY_MODES = ("auto", "off")
#: ``--elasticsearchSecuritySwitch``'s one value: switch a cluster recorded ``off`` to ``auto`` by
#: stopping every node, then launching them all again with TLS (:mod:`es_framework.core.engine_security_switch`).
FULL_RESTART = "fullRestart"

#: Said at start when ``auto`` keeps the secrets unsealed: with the other flags for a given ``auto``,
#: at leadership for the default (:func:`es_framework.core.security_mode.decide_for`).
UNSEALED_WARNING = (
    "--elasticsearchSecurity auto without --secretKeyFile: the CA's private key and the elastic password are "
    "stored unsealed in the framework state (--frameworkStateUrl), readable by anyone with the framework's "
    f"ZooKeeper credentials (or the state file's readers); give --secretKeyFile to seal it ({SECRET_KEY_HINT})"
)


def parse_security_mode(text: str) -> str:
    value = text.strip().lower()
    if value not in SECURITY_MODES:
        raise ValueError(f"must be one of {', '.join(SECURITY_MODES)}")
    return value


def parse_security_switch(text: str) -> str | None:
    value = text.strip()
    if not value:
        return None
    if value.lower() != FULL_RESTART.lower():
        raise ValueError(f"must be {FULL_RESTART} (or empty)")
    return FULL_RESTART


SECURITY_FLAGS: tuple[FlagSpec, ...] = (
    FlagSpec(
        "elasticsearchSecurity",
        "elasticsearch_security",
        "auto",
        parse_security_mode,
        "auto (the default for a new cluster outside local mode): the scheduler creates the cluster's certificate "
        "authority and the elastic user's password once (stored in the framework state, sealed with --secretKeyFile "
        "when given), issues every node a certificate at launch (mutual TLS on the transport, HTTPS and "
        "authentication on HTTP) and serves the CA certificate at GET /v1/cluster/ca.pem, the password at GET "
        "/v1/cluster/credentials. off: no CA; Elasticsearch security is on only with --elasticsearchPasswordFile and "
        "--elasticsearchCertificatesUrl, a warning says so otherwise. The mode is recorded in the framework state: "
        "an existing cluster keeps it (switching off to auto needs a full cluster restart); local mode is off "
        "unless auto is given.",
        "auto|off",
    ),
    FlagSpec(
        "elasticsearchSecuritySwitch",
        "elasticsearch_security_switch",
        "",
        parse_security_switch,
        "fullRestart, only together with an explicit --elasticsearchSecurity auto: switch a cluster whose framework "
        "state records security off to auto with a full cluster restart (transport TLS cannot be rolled in). The "
        "scheduler records auto, stops every node, launches none while a node from before the switch still runs (an "
        "unreachable one holds it until it is marked gone), then launches them all again with TLS, each id on its "
        "agent and volumes. Every node is down meanwhile. Refused while a rollout is under way; a no-op once the "
        "state records auto.",
        "fullRestart",
    ),
    FlagSpec(
        "secretKeyFile",
        "secret_key",
        "",
        lambda t: t or None,
        "File holding the key that seals the secrets the scheduler stores in its state (the CA's private key): 32 "
        "random bytes in base64, one line (e.g. a Marathon secret). Without it, --elasticsearchSecurity auto "
        "stores them unsealed, readable by anyone with the framework's ZooKeeper credentials (a warning says so).",
        "PATH",
        secret=True,
    ),
)


def check_security_flags(values: dict[str, Any], explicit: set[str], problems: list[str], warnings: list[str]) -> None:
    """The security flags' rules (``values``: flag name -> parsed value, a flag that did not parse is
    absent), appending to ``problems`` and ``warnings`` like the other rules between flags. An
    ``--elasticsearchSecurity`` that was not given becomes None in ``values`` (``off`` in local mode):
    the configuration then leaves the mode to the leadership's decision."""
    key = values.get("secretKeyFile")
    if isinstance(key, Secret):
        problem = secret_key_problem(key.reveal())
        if problem is not None:
            problems.append(f"--secretKeyFile: the file {problem}")
    if "elasticsearchSecurity" in values and "elasticsearchSecurity" not in explicit:
        # Not given: decided at leadership from the state (core/security_mode.py), except in local mode,
        # which keeps the release before's off. The rules below then speak of a given mode only.
        master = values.get("mesosMaster")
        values["elasticsearchSecurity"] = "off" if master is not None and master.is_local else None
    mode = values.get("elasticsearchSecurity")
    if values.get("elasticsearchSecuritySwitch") is not None and mode != "auto":
        # The switch stops every node: it must never follow from a default or a forgotten variable alone.
        problems.append(
            f"--elasticsearchSecuritySwitch {FULL_RESTART} needs --elasticsearchSecurity auto given explicitly: "
            "it switches a cluster recorded off to auto with a full cluster restart"
        )
    if mode == "off" and key is not None and "secretKeyFile" in explicit:
        warnings.append(
            "--secretKeyFile is ignored with --elasticsearchSecurity off: the state holds no secret to seal"
        )
    if mode != "auto":
        return
    if values.get("elasticsearchCertificatesUrl") is not None:
        warnings.append(
            "--elasticsearchSecurity auto with --elasticsearchCertificatesUrl: the nodes keep using the certificates "
            "of that bundle; the scheduler's CA is created and served but signs nothing"
        )
    if "secretKeyFile" in values and key is None:
        warnings.append(UNSEALED_WARNING)
