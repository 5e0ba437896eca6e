"""How a node's own TLS material and the ``elastic`` password travel with its TaskInfo
(``--elasticsearchSecurity auto``; pure).

The scheduler issues each node a certificate at launch (:class:`es_framework.app.node_certificates.NodeIssuer`)
and adds it to the executor's environment here (the names are :mod:`es_framework.contract`'s, contract 3):

- ``ELASTICSEARCH_SECURITY=auto`` (plain; written by :mod:`es_framework.core.task_builder`),
- ``ELASTICSEARCH_TLS_CERTIFICATE`` and ``ELASTICSEARCH_TLS_CA``: the node's certificate and the
  cluster CA's, PEM (plain: certificates are public),
- ``ES_MESOS_CREDENTIALS_URL`` (plain): where the executor fetches the current password when its
  probe is refused after a rotation (:mod:`es_framework.core.credentials`),
- ``ELASTICSEARCH_TLS_KEY`` (the node's private key, PKCS#8 PEM), ``ELASTIC_PASSWORD`` and
  ``ES_MESOS_TASK_TOKEN`` (the task's token for that fetch): Mesos ``SECRET`` variables of type
  ``VALUE`` (``Environment.Variable.type`` and ``Secret.Value`` in
  apache/mesos ``include/mesos/v1/mesos.proto``), never plain variables, labels or the command line.

Where a ``SECRET`` value shows and where it does not, in Mesos 1.12 (apache/mesos):

- The master's ``/state`` (v0) endpoints render a command's variables with ``variable.value()`` only
  (``src/common/http.cpp``, ``model(const CommandInfo&)``): a secret variable shows with an empty
  value, its ``secret`` not at all. The v1 operator API is different: ``GET_EXECUTORS`` and
  ``GET_STATE`` write the whole ``ExecutorInfo`` protobuf (``asV1Protobuf(executorInfo)`` in
  ``src/master/readonly_handler.cpp``; the agent's ``src/slave/http.cpp`` likewise), a ``VALUE``
  secret's data included, to every principal the ``VIEW_EXECUTOR`` ACL lets see the executor
  (everyone on a master without ACLs). Operators restrict ``view_executors`` to the framework's
  principal; a ``REFERENCE`` secret through a secret-resolver module, or a one-time fetch from the
  scheduler, would close that (not done yet).
- The Mesos containerizer always loads the ``environment_secret`` isolator
  (``src/slave/containerizer/mesos/containerizer.cpp``), which resolves each secret with the agent's
  secret resolver into the executor's environment
  (``isolators/environment_secret.cpp``, ``prepare``); the default resolver returns a ``VALUE``
  secret's data (``src/secret/resolver.cpp``, ``DefaultSecretResolver``).
- The Docker containerizer does not resolve secrets: ``Docker::RunOptions::create``
  (``src/docker/docker.cpp``) passes ``variable.value()`` to ``docker run -e``, an empty string for a
  secret variable. Its executor still receives the TaskInfo itself, as the framework sent it, in the
  executor API's ``LAUNCH`` event (the agent queues the TaskInfo, ``Executor::enqueueTask``, and sends
  it in a ``RunTaskMessage`` from ``Slave::___run``, ``src/slave/slave.cpp``), and reads a ``VALUE``
  secret from there
  (:func:`es_framework.executor.settings.env_of_task`), over the agent's local connection to its
  executor; the agent's empty variable does not hide it (:func:`es_framework.executor.settings.merged_env`).
"""

from __future__ import annotations

import base64
import copy
from dataclasses import dataclass, field
from typing import Any

from es_framework import contract

# The names are the contract's (contract 3), repeated here so that this module's old names keep working.
SECURITY_AUTO = contract.SECURITY_AUTO
ENV_TLS_CERTIFICATE = contract.ENV_TLS_CERTIFICATE
ENV_TLS_CA = contract.ENV_TLS_CA
ENV_TLS_KEY = contract.ENV_TLS_KEY
ENV_TASK_TOKEN = contract.ENV_TASK_TOKEN
ENV_CREDENTIALS_URL = contract.ENV_CREDENTIALS_URL

#: Elasticsearch's built-in superuser, whose password the nodes are bootstrapped with.
ELASTIC_USER = "elastic"
#: Every variable this module adds (the secret ones: :data:`SECRET_ENV`).
TLS_ENV = frozenset(
    {ENV_TLS_CERTIFICATE, ENV_TLS_CA, ENV_TLS_KEY, contract.ENV_ELASTIC_PASSWORD, ENV_TASK_TOKEN, ENV_CREDENTIALS_URL}
)
SECRET_ENV = frozenset({ENV_TLS_KEY, contract.ENV_ELASTIC_PASSWORD, ENV_TASK_TOKEN})


def secret_variable(name: str, value: str) -> dict[str, Any]:
    """A Mesos ``Environment.Variable`` of type ``SECRET`` holding ``value`` as a ``VALUE`` secret."""
    data = base64.b64encode(value.encode("utf-8")).decode("ascii")
    return {"name": name, "type": "SECRET", "secret": {"type": "VALUE", "value": {"data": data}}}


def is_auto(task_info: dict[str, Any]) -> bool:
    """Whether the TaskInfo is a node's launched with ``--elasticsearchSecurity auto``."""
    return any(
        v.get("name") == contract.ENV_SECURITY and v.get("value") == SECURITY_AUTO for v in _variables(task_info)
    )


def _variables(task_info: dict[str, Any]) -> list[dict[str, Any]]:
    executor = task_info.get("executor") or {}
    variables = ((executor.get("command") or {}).get("environment") or {}).get("variables")
    return variables if isinstance(variables, list) else []


def with_node_tls(
    task_info: dict[str, Any],
    *,
    certificate_pem: str,
    ca_pem: str,
    key_pem: str,
    password: str,
    task_token: str | None = None,
    credentials_url: str | None = None,
) -> dict[str, Any]:
    """A copy of ``task_info`` whose executor environment carries the node's certificate, the CA, and
    (as SECRET variables) the node's key and the ``elastic`` password; with ``task_token`` also the
    task's token (SECRET) and ``credentials_url`` (plain). ``task_info`` is unchanged."""
    finished = copy.deepcopy(task_info)
    environment = finished["executor"]["command"].setdefault("environment", {})
    kept = [v for v in environment.get("variables") or [] if v.get("name") not in TLS_ENV]
    environment["variables"] = [
        *kept,
        {"name": ENV_TLS_CERTIFICATE, "value": certificate_pem},
        {"name": ENV_TLS_CA, "value": ca_pem},
        secret_variable(ENV_TLS_KEY, key_pem),
        secret_variable(contract.ENV_ELASTIC_PASSWORD, password),
    ]
    if task_token is not None and credentials_url is not None:
        environment["variables"] += [
            {"name": ENV_CREDENTIALS_URL, "value": credentials_url},
            secret_variable(ENV_TASK_TOKEN, task_token),
        ]
    return finished


@dataclass(frozen=True)
class NodeTrust:
    """How the scheduler's clients reach the nodes with ``auto``: HTTPS, the nodes' certificates
    verified against the cluster CA (``ca_file``: its PEM file, what ``requests``' ``verify`` takes),
    and basic authentication as the ``elastic`` user."""

    ca_file: str
    password: str = field(repr=False)
    user: str = ELASTIC_USER

    @property
    def auth(self) -> tuple[str, str]:
        return (self.user, self.password)
