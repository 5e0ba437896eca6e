"""Rotating the ``elastic`` password, and how running executors learn the new one (pure).

**Rotation, crash-safe.** The scheduler's generated password (``--elasticsearchSecurity auto``) is
in the state's certificate-authority record (:class:`~es_framework.core.cluster_ca.StoredCa`). A
rotation goes in three steps, each state write fenced by the leader lock:

1. :func:`begin_rotation`: the new password is recorded as ``pending_password`` (sealed like the
   current one) BEFORE Elasticsearch is asked, so a crash right after Elasticsearch took it never
   loses the only password that works;
2. the change-password API (``POST /_security/user/elastic/_password``), authenticated with the
   current password (the shell's part, :mod:`es_framework.app.credentials_rotation`);
3. :func:`finish_rotation` once Elasticsearch accepted it (the pending password becomes the
   password), or :func:`abandon_rotation` once Elasticsearch is known to have refused it.

A leader that finds a pending password (its predecessor died between 1 and 3) settles it with
:func:`settle`: whichever of the two passwords Elasticsearch accepts is kept.

**Delivery to running executors.** Every task gets at launch a token, :func:`task_token`: the
HMAC-SHA256 of its task id under a key derived from the cluster CA's private key
(:func:`token_key`: an HMAC of a fixed label under that key, so the key is secret exactly as the
CA key is, sealed in the state with it, and nothing new is stored: not per task, not per cluster).
A token is accepted while the state holds its task, i.e. for the task's life. The executor
presents it (``Authorization: Bearer <task id>.<mac>``, :func:`bearer`) to ``GET
/v1/executor/credentials`` when Elasticsearch refuses its password, and gets the cluster's current
``elastic`` password. Where to ask is in the task's environment at launch
(:data:`ENV_CREDENTIALS_URL`, not a secret), and again in a framework message
(:class:`~es_framework.contract.CredentialsSource`) after every rotation and every registration,
since the scheduler's address changes with a failover. The variables and the message are the
scheduler↔executor contract's (:mod:`es_framework.contract`, contract 3).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import replace
from enum import Enum

from es_framework import contract
from es_framework.core.cluster_ca import StoredCa

# The variables and the message are the scheduler↔executor contract's (contract 3), repeated here so
# that this module's old names keep working.
ENV_TASK_TOKEN = contract.ENV_TASK_TOKEN
ENV_CREDENTIALS_URL = contract.ENV_CREDENTIALS_URL
CredentialsSource = contract.CredentialsSource
#: The scheduler's path for it.
EXECUTOR_CREDENTIALS_PATH = "/v1/executor/credentials"
#: What the tasks' token key is derived for (a new label makes every token new).
TOKEN_KEY_LABEL = b"es-mesos task credentials token v1"


class RotationError(ValueError):
    """A rotation step that does not fit the stored record (the message says why)."""


def begin_rotation(stored: StoredCa, sealed_new: str) -> StoredCa:
    """``stored`` with ``sealed_new`` recorded as the pending password; refused while another
    rotation is pending (settle it first) or while there is no password to rotate."""
    if stored.elastic_password is None:
        raise RotationError("the cluster has no generated elastic password to rotate")
    if stored.pending_password is not None:
        raise RotationError("another rotation is pending; it must be settled first")
    return replace(stored, pending_password=sealed_new)


def finish_rotation(stored: StoredCa) -> StoredCa:
    """Elasticsearch accepted the pending password: it is the password now."""
    if stored.pending_password is None:
        raise RotationError("no rotation is pending")
    return replace(stored, elastic_password=stored.pending_password, pending_password=None)


def abandon_rotation(stored: StoredCa) -> StoredCa:
    """Elasticsearch keeps the current password: the pending one is dropped."""
    return replace(stored, pending_password=None)


class Accepted(Enum):
    """Which password Elasticsearch accepts, as far as the scheduler could find out."""

    CURRENT = "current"
    PENDING = "pending"
    UNKNOWN = "unknown"  # no node answered either way


def settle(stored: StoredCa, accepted: Accepted) -> StoredCa | None:
    """The record after a pending rotation is settled by what Elasticsearch accepts; None when it
    cannot be settled yet (nothing is known: both are kept, and the executors are offered both)."""
    if stored.pending_password is None:
        return stored
    if accepted is Accepted.PENDING:
        return finish_rotation(stored)
    if accepted is Accepted.CURRENT:
        return abandon_rotation(stored)
    return None


def token_key(ca_key_pem: str) -> str:
    """The tasks' token key, derived from the CA's private key (PEM) for this use only."""
    return hmac.new(ca_key_pem.encode("utf-8"), TOKEN_KEY_LABEL, hashlib.sha256).hexdigest()


def task_token(key: str, task_id: str) -> str:
    """The task's token: HMAC-SHA256 of its id under ``key`` (URL-safe base64, no padding)."""
    mac = hmac.new(key.encode("utf-8"), task_id.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")


def bearer(key: str, task_id: str) -> str:
    """What the executor sends after ``Bearer``: ``<task id>.<token>`` (a token has no ``.``)."""
    return f"{task_id}.{task_token(key, task_id)}"


def task_of_bearer(key: str, authorization: str | None) -> str | None:
    """The task id an ``Authorization: Bearer <task id>.<token>`` header proves, None when it proves
    nothing (compared in constant time)."""
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    task_id, dot, token = credentials.strip().rpartition(".")
    if scheme.lower() != "bearer" or not dot or not task_id or not token:
        return None
    expected = task_token(key, task_id)
    return task_id if hmac.compare_digest(token.encode("ascii", "replace"), expected.encode("ascii")) else None
