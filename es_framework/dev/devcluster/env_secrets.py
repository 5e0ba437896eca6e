"""The environment a simulated agent gives an executor from its ``CommandInfo`` variables, SECRET ones
included, as Mesos 1.12 does (development tool).

- The Mesos containerizer always runs the ``environment_secret`` isolator
  (apache/mesos ``src/slave/containerizer/mesos/containerizer.cpp``), which resolves every SECRET
  variable with the agent's secret resolver (``isolators/environment_secret.cpp``, ``prepare``); the
  default resolver returns a ``VALUE`` secret's data and fails a ``REFERENCE`` one
  (``src/secret/resolver.cpp``, ``DefaultSecretResolver``), which fails the launch.
- The Docker containerizer resolves nothing: ``Docker::RunOptions::create`` (``src/docker/docker.cpp``)
  passes each variable's ``value``, empty for a SECRET variable, to ``docker run -e``.

The master's endpoints never show a secret either (``src/common/http.cpp``, ``model(const
CommandInfo&)`` writes ``value`` only); the development master's state shows no environment at all.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any


class SecretError(ValueError):
    """A SECRET variable the default secret resolver cannot resolve (the launch fails)."""


def _resolved(variable: Mapping[str, Any]) -> str:
    secret = variable.get("secret") or {}
    if secret.get("reference") is not None or secret.get("type") == "REFERENCE":
        raise SecretError(f"{variable.get('name')}: Default secret resolver cannot resolve references")
    value = secret.get("value")
    if not isinstance(value, Mapping):
        raise SecretError(f"{variable.get('name')}: Secret has no value")
    try:
        return base64.b64decode(str(value.get("data", "")), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError) as error:
        raise SecretError(f"{variable.get('name')}: the secret's data is not base64: {error}") from None


def command_variables(executor: Mapping[str, Any]) -> dict[str, str]:
    """The ``ExecutorInfo.command`` variables as the executor's environment gets them: SECRET ones
    resolved under the Mesos containerizer, empty under the Docker containerizer."""
    command = executor.get("command") or {}
    variables = (command.get("environment") or {}).get("variables") or []
    docker = (executor.get("container") or {}).get("type") == "DOCKER"
    env: dict[str, str] = {}
    for variable in variables:
        if "name" not in variable:
            continue
        if variable.get("type") == "SECRET" and not docker:
            env[str(variable["name"])] = _resolved(variable)
        else:
            env[str(variable["name"])] = str(variable.get("value", ""))
    return env
