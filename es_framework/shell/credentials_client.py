"""The two Elasticsearch calls of a password rotation (``--elasticsearchSecurity auto``), over HTTPS
with the cluster CA (:class:`~es_framework.core.node_tls.NodeTrust`):

- :func:`change_password`: ``POST /_security/user/elastic/_password`` with ``{"password": …}``,
  authenticated as ``elastic`` with the current password ("Change passwords API", Elasticsearch
  reference, security-api-change-password.html: every user can change their own password; the new
  one must be at least 6 characters; success answers ``{}``). Elasticsearch keeps it in the
  replicated ``.security`` index, so every node takes it at once and the bootstrap password stops
  counting;
- :func:`accepts`: ``GET /`` with a password, to find out which password a node takes (200: this
  one, 401: not this one, anything else: unknown).

Never a password in a message: errors name the node and Elasticsearch's own reason only.
"""

from __future__ import annotations

import requests

from es_framework.core.node_tls import ELASTIC_USER, NodeTrust
from es_framework.shell.es_client import ElasticsearchError

TIMEOUT_S = 10.0


class PasswordRefusedError(ElasticsearchError):
    """Elasticsearch answered the change-password call with an error: the password did not change."""


def _reason(response: requests.Response) -> str:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return response.text[:200]
    reason = error.get("reason") if isinstance(error, dict) else error
    return str(reason)[:300]


def change_password(address: str, trust: NodeTrust, new: str, *, timeout: float = TIMEOUT_S) -> None:
    """Change the ``elastic`` password through node ``address``. Raises :class:`PasswordRefusedError` for an
    answer that refuses the change (a 4xx but 401: nothing changed), :class:`ElasticsearchError` for no
    answer, a 401 or a 5xx (whether it changed is unknown: the caller asks which password works)."""
    url = f"https://{address}/_security/user/{ELASTIC_USER}/_password"
    try:
        response = requests.post(url, json={"password": new}, auth=trust.auth, verify=trust.ca_file, timeout=timeout)
    except requests.RequestException as error:
        raise ElasticsearchError(f"POST {url}: no answer: {type(error).__name__}") from None
    said = f"POST {url}: HTTP {response.status_code}: {_reason(response)}"
    if response.status_code == 401 or response.status_code >= 500:
        # 401: the current password is refused, perhaps because an earlier attempt whose answer was
        # lost changed it already; 5xx: perhaps done. Neither says the password did not change.
        raise ElasticsearchError(said)
    if response.status_code != 200:
        raise PasswordRefusedError(said)


def accepts(address: str, ca_file: str, password: str, *, timeout: float = TIMEOUT_S) -> bool | None:
    """Whether node ``address`` accepts ``password`` for ``elastic``: True (200), False (401), None
    (no answer, or another answer)."""
    try:
        response = requests.get(f"https://{address}/", auth=(ELASTIC_USER, password), verify=ca_file, timeout=timeout)
    except requests.RequestException:
        return None
    if response.status_code == 200:
        return True
    if response.status_code == 401:
        return False
    return None
