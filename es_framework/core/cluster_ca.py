"""The cluster's certificate authority as the framework state keeps it (pure).

One top-level field of the state (``certificate_authority``, not per node): the CA certificate (public)
and its private key, sealed with ``--secretKeyFile``'s key (a Fernet token, sealed and opened at the
edge: :mod:`es_framework.shell.secret_box`) or, without a key, as PEM text: then anyone who can read
the state (the framework's ZooKeeper credentials, or the state file) can read the key, which the
scheduler says at start. The certificate itself is what ``GET /v1/cluster/ca.pem`` serves.

The same record keeps the ``elastic`` user's generated password (``elastic_password``), sealed or not
exactly like the CA key (one ``sealed`` flag for both): it is made once, at leadership, with the CA
(or, for a CA stored by an earlier release, at the first leadership that has none), and every node
is bootstrapped with it. ``GET /v1/cluster/credentials`` returns it behind the API token.

A rotation (:mod:`es_framework.core.credentials`) first records the new password as
``pending_password`` (sealed the same way), then changes it in Elasticsearch, then makes it the
``elastic_password``: a crash in between leaves both in the state, and the next leader finds out
which one Elasticsearch accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StoredCa:
    """The cluster's CA in the state. ``key``: a Fernet token when ``sealed``, else PKCS#8 PEM text."""

    certificate_pem: str
    key: str
    sealed: bool
    created_at: float
    #: The ``elastic`` user's password: a Fernet token when ``sealed``, else the text; None until made.
    elastic_password: str | None = None
    #: A rotation's new password, recorded before Elasticsearch is asked to take it (sealed like the rest).
    pending_password: str | None = None

    def __repr__(self) -> str:
        # The key and the password never show in a log line or a traceback, sealed or not.
        return f"StoredCa(sealed={self.sealed}, created_at={self.created_at})"


def ca_to_json(ca: StoredCa | None) -> dict[str, Any] | None:
    if ca is None:
        return None
    out: dict[str, Any] = {
        "certificate": ca.certificate_pem,
        "key": ca.key,
        "sealed": ca.sealed,
        "created_at": ca.created_at,
    }
    for name in ("elastic_password", "pending_password"):
        if getattr(ca, name) is not None:
            out[name] = getattr(ca, name)
    return out


def ca_from_json(raw: object) -> StoredCa | None:
    """The stored CA, None when the state has none (before ``auto``, or from an earlier release);
    ``ValueError`` for a malformed entry (the caller names the state)."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ValueError("certificate_authority must be an object")
    certificate, key, sealed, created = (raw.get(k) for k in ("certificate", "key", "sealed", "created_at"))
    if not isinstance(certificate, str) or not certificate.startswith("-----BEGIN CERTIFICATE-----"):
        raise ValueError("certificate_authority.certificate must be a PEM certificate")
    if not isinstance(key, str) or not key or not isinstance(sealed, bool):
        raise ValueError("certificate_authority needs its key (text) and sealed (true or false)")
    if not isinstance(created, (int, float)) or isinstance(created, bool):
        raise ValueError("certificate_authority.created_at must be a number")
    texts = {}
    for name in ("elastic_password", "pending_password"):
        value = raw.get(name)
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError(f"certificate_authority.{name} must be text")
        texts[name] = value
    return StoredCa(certificate, key, sealed, float(created), **texts)


def ca_certificate_pem(stored: StoredCa | None) -> str | None:
    """The CA certificate ``GET /v1/cluster/ca.pem`` serves (never the key); None without a CA."""
    return stored.certificate_pem if stored is not None else None
