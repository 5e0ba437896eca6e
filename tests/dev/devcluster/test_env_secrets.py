"""The development agents give an executor its SECRET variables as Mesos 1.12 does
(es_framework/dev/devcluster/env_secrets.py): resolved under the Mesos containerizer (a VALUE secret's
data; a REFERENCE fails the launch), empty under the Docker containerizer."""

from __future__ import annotations

from typing import Any

import pytest

from es_framework.core.node_tls import secret_variable
from es_framework.dev.devcluster.env_secrets import SecretError, command_variables


def executor(container: str, *variables: dict[str, Any]) -> dict[str, Any]:
    return {"container": {"type": container}, "command": {"environment": {"variables": list(variables)}}}


def test_the_mesos_containerizer_resolves_value_secrets_and_docker_leaves_them_empty() -> None:
    plain = {"name": "PLAIN", "value": "p"}
    hidden = secret_variable("HIDDEN", "s3cr3t ü")
    assert command_variables(executor("MESOS", plain, hidden)) == {"PLAIN": "p", "HIDDEN": "s3cr3t ü"}
    assert command_variables(executor("DOCKER", plain, hidden)) == {"PLAIN": "p", "HIDDEN": ""}


def test_a_reference_secret_fails_the_launch_under_the_mesos_containerizer() -> None:
    reference = {"name": "REF", "type": "SECRET", "secret": {"type": "REFERENCE", "reference": {"name": "/x"}}}
    with pytest.raises(SecretError, match="cannot resolve references"):
        command_variables(executor("MESOS", reference))
