"""What the executor asks its node over HTTP: ``GET /`` (does it answer, and in which cluster) and
``GET /_cluster/health``.

``GET /`` answers ``cluster_uuid`` ``_na_`` (:data:`es_framework.contract.NO_CLUSTER_UUID`) while the
node has not joined a formed cluster; :func:`node_identity` turns that into a
:class:`~es_framework.contract.NodeReport` without a uuid, the form the scheduler reads.

A ``401`` or ``403`` answer is :class:`CredentialsRefused`: Elasticsearch is up and refuses the
executor's credentials. The executor authenticates as ``elastic`` with the password the task was
launched with, which Elasticsearch keeps as ``bootstrap.password`` and uses only until the ``elastic``
user gets a password of its own ("Built-in users", "The Elastic bootstrap password", Elasticsearch
reference; ``elasticsearch-setup-passwords``: "After you set a password for the elastic user, the
bootstrap password is no longer active"). So a password changed outside es-mesos, through the
change-password API or ``elasticsearch-reset-password``, makes every probe of a running task answer
401. :class:`CredentialsWatch` turns those answers into one message per change, which
:mod:`es_framework.executor.node_executor` logs and reports; delivering changed credentials to
running tasks is the scheduler's part (the operator issue), not the probe's.

With ``--elasticsearchSecurity auto`` the node serves HTTPS: the probes verify its certificate
against the cluster CA (:func:`probe_context`). They do not check the host name: a probe asks its own
node on this host, often through ``127.0.0.1``, which the node's certificate does not name (it names
the node, the agent host and the agent IP); the CA is the cluster's own, so a certificate it signed is
one of the cluster's nodes.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from es_framework.contract import NO_CLUSTER_UUID, NodeReport

HTTP_TIMEOUT = 2.0


def probe_context(ca_pem: str) -> ssl.SSLContext:
    """TLS for the probes: the node's certificate must be signed by the cluster CA ``ca_pem``."""
    context = ssl.create_default_context(cadata=ca_pem)
    context.check_hostname = False  # see the module docstring; the chain is still verified
    return context


def http_get(
    url: str, authorization: str | None = None, context: ssl.SSLContext | None = None
) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) of ``GET url``; an HTTP error status is an answer, not an exception."""
    headers = {"Accept": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT, context=context) as response:
            return int(response.status), json.loads(response.read().decode("utf-8") or "{}")
    except urllib.error.HTTPError as error:
        try:
            body = json.loads(error.read().decode("utf-8") or "{}")
        except ValueError:
            body = {}
        return int(error.code), body if isinstance(body, dict) else {}


def basic_authorization(password: str | None) -> str | None:
    """The ``elastic`` user's Authorization header (security enabled), else None."""
    if not password:
        return None
    return "Basic " + base64.b64encode(f"elastic:{password}".encode()).decode("ascii")


@dataclass(frozen=True)
class CredentialsRefused:
    """``GET /`` answered 401 or 403: Elasticsearch is up and refuses the executor's credentials."""

    status: int
    #: Elasticsearch's ``error.reason`` (e.g. "unable to authenticate user [elastic] for REST request [/]").
    reason: str | None = None
    #: Whether the executor sent credentials at all (security enabled in the task).
    authenticated: bool = True


#: What one ``GET /`` gives: the node's report, a refusal of the credentials, or no answer.
Answer = NodeReport | CredentialsRefused | None


def _error_reason(body: dict[str, Any]) -> str | None:
    error = body.get("error")
    reason = error.get("reason") if isinstance(error, dict) else error
    return str(reason)[:200] if reason else None


def node_identity(base_url: str, authorization: str | None = None, context: ssl.SSLContext | None = None) -> Answer:
    """``GET /``: None while the node does not answer (or answers neither 200 nor 401/403);
    :class:`CredentialsRefused` for 401/403; else what it says about itself (no ``cluster_uuid``
    while it has not joined a formed cluster)."""
    try:
        status, body = http_get(base_url + "/", authorization, context)
    except (OSError, ValueError):
        return None
    if status in (401, 403):
        return CredentialsRefused(status, _error_reason(body), authenticated=authorization is not None)
    if status != 200:
        return None
    version = body.get("version")
    number = version.get("number") if isinstance(version, dict) else None
    uuid = body.get("cluster_uuid")
    name = body.get("name")
    return NodeReport(
        cluster_uuid=str(uuid) if uuid and uuid != NO_CLUSTER_UUID else None,
        version=str(number) if number else None,
        node_name=str(name) if name else None,
    )


def node_healthy(base_url: str, authorization: str | None = None, context: ssl.SSLContext | None = None) -> bool:
    """Whether ``GET /_cluster/health`` answers 200 with status green or yellow."""
    try:
        status, body = http_get(base_url + "/_cluster/health?timeout=1s", authorization, context)
    except (OSError, ValueError):
        return False
    return status == 200 and body.get("status") in ("green", "yellow")


def refusal_message(refused: CredentialsRefused, endpoint: str) -> str:
    """Why the task's health is unknown, and what the operator does about it (no secret in it)."""
    said = f"HTTP {refused.status}" + (f": {refused.reason}" if refused.reason else "")
    if not refused.authenticated:
        return (
            f"Elasticsearch answers on {endpoint} but asks for credentials ({said}), and es-mesos runs this node "
            "without security (no --elasticsearchPasswordFile): security was turned on outside es-mesos. The "
            "node's health is unknown (reported unhealthy) until the executor can read it; give "
            "--elasticsearchPasswordFile and --elasticsearchCertificatesUrl and restart the node"
        )
    what = (
        "refuses the executor's credentials"
        if refused.status == 401
        else "forbids the executor's requests as the elastic user"
    )
    return (
        f"Elasticsearch answers on {endpoint} but {what} ({said}). The elastic user's password was most likely "
        "changed outside es-mesos (change-password API, elasticsearch-reset-password, Kibana): this task "
        "authenticates with the password it was launched with (--elasticsearchPasswordFile), which "
        "Elasticsearch stops accepting once elastic has a password of its own. The node may well be fine; its "
        "health is unknown (reported unhealthy) while the executor cannot read it, and normal reports resume "
        "once the credentials work again. Fix: put the current elastic password into --elasticsearchPasswordFile, "
        "restart the scheduler, then restart this node (a relaunched task gets the new password); or set the "
        "elastic password back to the one in that file"
    )


class CredentialsWatch:
    """Whether Elasticsearch refuses the executor's credentials, told once per change (not every probe)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.refused: CredentialsRefused | None = None

    def observe(self, answer: Answer) -> str | None:
        """The news in ``answer``: :func:`refusal_message` when Elasticsearch starts refusing (or refuses
        with another status), a note when it accepts the credentials again, else None. No answer at
        all (a restart, a timeout) changes nothing."""
        if isinstance(answer, CredentialsRefused):
            if self.refused is not None and self.refused.status == answer.status:
                return None
            self.refused = answer
            return refusal_message(answer, self.endpoint)
        if isinstance(answer, NodeReport) and self.refused is not None:
            self.refused = None
            return f"Elasticsearch on {self.endpoint} accepts the executor's credentials again"
        return None
