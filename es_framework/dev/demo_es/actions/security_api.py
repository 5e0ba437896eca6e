"""The change-password API of the demo node (development tool, not Elasticsearch):
``POST|PUT /_security/user/<username>/_password`` and ``POST|PUT /_security/user/_password``.

As the Elasticsearch reference describes it ("Change passwords API", elastic.co/guide/en/elasticsearch/
reference/8.x/security-api-change-password.html; 7.x the same): the body's ``password`` is the new password,
which "must be at least 6 characters long"; one of ``password`` or ``password_hash`` is required and they
cannot be used together; a successful call answers ``{}``. Without a username the password of the user who
authenticated changes, which for the demo is always ``elastic``. The refusals use Elasticsearch's words:

- too short: ``Validation.Users.validatePassword`` (x-pack core, ``security/support/Validation.java``),
  ``passwords must be at least [6] characters long``, a 400 ``validation_exception``;
- no password at all: ``ChangePasswordRequest.validate``, ``password is missing``, a 400
  ``action_request_validation_exception``;
- a field other than the two: the request parser's 400 ``parse_exception``;
- a user other than ``elastic``: the demo has no native users; Elasticsearch's native store answers
  ``user must exist in order to change password`` (400 ``validation_exception``), so does the demo.

One deviation, said here: ``password_hash`` is refused (400) because the demo hashes with its own PBKDF2
(:func:`~es_framework.dev.demo_es.security.hash_password`), not with a configurable algorithm.

The new password's hash goes through the master into the cluster state (``elastic_password`` master action),
which every node persists: the demo's ``.security`` index. The call returns once every node has it
(acknowledged, like Elasticsearch's), so the next request to any node authenticates with the new password.
"""

from __future__ import annotations

import json
from typing import Any

from es_framework.dev.demo_es.errors import EsError
from es_framework.dev.demo_es.node_api import NodeAPI
from es_framework.dev.demo_es.security import ELASTIC_USER, hash_password

#: ``Validation.Users.MIN_PASSWD_LENGTH``.
MIN_PASSWORD_LENGTH = 6


def change_password(node: NodeAPI, username: str | None, raw: bytes) -> dict[str, Any]:
    """Validate the request, put the new password's hash into the cluster state, answer ``{}``."""
    try:
        body = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (UnicodeDecodeError, ValueError) as error:
        raise EsError(400, "parse_exception", f"failed to parse change password request: {error}") from None
    if not isinstance(body, dict):
        raise EsError(400, "parse_exception", "failed to parse change password request: expected an object")
    for key in body:
        if key not in ("password", "password_hash"):
            raise EsError(400, "parse_exception", f"failed to parse change password request. unexpected field [{key}]")
    if "password" in body and "password_hash" in body:
        raise EsError(
            400,
            "action_request_validation_exception",
            "Validation Failed: 1: only one of [password, passwordHash] can be provided;",
        )
    if "password_hash" in body:
        raise EsError(400, "illegal_argument_exception", "the demo node does not take [password_hash]; send [password]")
    password = body.get("password")
    if password is None:
        raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: password is missing;")
    if not isinstance(password, str):
        raise EsError(400, "parse_exception", "failed to parse change password request: [password] must be a string")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise EsError(
            400,
            "validation_exception",
            f"Validation Failed: 1: passwords must be at least [{MIN_PASSWORD_LENGTH}] characters long;",
        )
    if (username or ELASTIC_USER) != ELASTIC_USER:
        raise EsError(400, "validation_exception", "Validation Failed: 1: user must exist in order to change password;")
    node.master_action("elastic_password", {"hash": hash_password(password)})
    return {}
