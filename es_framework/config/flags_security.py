"""The security flags, a part of the flag table (:data:`es_framework.config.flags.FLAGS`):
``--elasticsearchSecurity`` and ``--secretKeyFile``, and the rules between them and the other
flags (:func:`check_security_flags`, run by :func:`es_framework.config.resolve.check_between_flags`).

``--elasticsearchSecurity`` defaults to ``off`` in this release. ``auto`` secures the nodes (a CA
created once, every node a certificate at launch, a generated ``elastic`` password: mutual TLS on the
transport, HTTPS and authentication on HTTP), but the default stays ``off`` until renewal, rotation
and the switch of an existing cluster from ``off`` (which needs a full cluster restart) are done: an
existing cluster is to keep the mode its state records.
"""

from __future__ import annotations

from typing import Any

from es_framework.config.flag_spec import FlagSpec
from es_framework.config.secret_key import SECRET_KEY_HINT, secret_key_problem
from es_framework.config.values import Secret

SECURITY_MODES = ("auto", "off")


def parse_security_mode(text: str) -> str:
    value = text.strip().lower()
    if value not in SECURITY_MODES:
        raise ValueError(f"must be one of {', '.join(SECURITY_MODES)}")
    return value


SECURITY_FLAGS: tuple[FlagSpec, ...] = (
    FlagSpec(
        "elasticsearchSecurity",
        "elasticsearch_security",
        "off",
        parse_security_mode,
        "auto: the scheduler creates the cluster's certificate authority and the elastic user's password once "
        "(stored in the framework state, sealed with --secretKeyFile when given), issues every node a certificate "
        "at launch (mutual TLS on the transport, HTTPS and authentication on HTTP) and serves the CA certificate at "
        "GET /v1/cluster/ca.pem, the password at GET /v1/cluster/credentials. off (the default in this release): "
        "no CA; Elasticsearch security is on only with --elasticsearchPasswordFile and "
        "--elasticsearchCertificatesUrl, a warning says so otherwise.",
        "auto|off",
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
    absent), appending to ``problems`` and ``warnings`` like the other rules between flags."""
    key = values.get("secretKeyFile")
    if isinstance(key, Secret):
        problem = secret_key_problem(key.reveal())
        if problem is not None:
            problems.append(f"--secretKeyFile: the file {problem}")
    mode = values.get("elasticsearchSecurity")
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
        warnings.append(
            "--elasticsearchSecurity auto without --secretKeyFile: the CA's private key and the elastic password are "
            "stored unsealed in the "
            "framework state (--frameworkStateUrl), readable by anyone with the framework's ZooKeeper credentials "
            f"(or the state file's readers); give --secretKeyFile to seal it ({SECRET_KEY_HINT})"
        )
