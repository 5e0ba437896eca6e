"""What the executor needs to start its node, read from the task's environment (:class:`NodeSettings`).

The variables are the scheduler's (named in :mod:`es_framework.contract`, written by
:mod:`es_framework.core.task_builder`): the TaskInfo's executor command environment (VALUE secrets
decoded), overlaid with the process environment, which wins: an agent may adapt it, as the
development cluster does for volume paths, and a real agent resolves secrets into it.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shlex
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymesos.utils import parse_duration

from es_framework import contract
from es_framework.core.es_settings import UserValue
from es_framework.executor.logs import logger

DEFAULT_GRACE_PERIOD = 120.0
#: The official image's elasticsearch user (its group is 0).
DEFAULT_ELASTICSEARCH_UID = 1000
#: Variables Elasticsearch's own process never gets (the password reaches it through the keystore).
CHILD_ENV_HIDDEN = frozenset({contract.ENV_ELASTIC_PASSWORD})
#: Where Elasticsearch listens unless ELASTICSEARCH_NETWORK_HOST says otherwise.
DEFAULT_NETWORK_HOST = "0.0.0.0"


class ExecutorError(Exception):
    """The node cannot be started (the message goes into TASK_FAILED)."""


def env_of_task(task_info: Mapping[str, Any]) -> dict[str, str]:
    """The variables of the TaskInfo's executor command (or task command); VALUE secrets decoded."""
    executor = task_info.get("executor") or {}
    command = executor.get("command") or task_info.get("command") or {}
    variables = (command.get("environment") or {}).get("variables") or []
    env: dict[str, str] = {}
    for variable in variables:
        if "name" not in variable:
            continue
        if variable.get("type") == "SECRET":
            # A real agent resolves secrets into the process environment (which wins in
            # NodeSettings.from_task); a VALUE secret can also be read here. A REFERENCE secret only
            # the agent can resolve.
            data = (((variable.get("secret") or {}).get("value") or {}).get("data")) or ""
            try:
                env[str(variable["name"])] = base64.b64decode(str(data), validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                logger.warning("secret variable %s is unreadable in the TaskInfo", variable["name"])
            continue
        env[str(variable["name"])] = str(variable.get("value", ""))
    return env


def grace_period_of(env: Mapping[str, str], task_info: Mapping[str, Any]) -> float:
    """``MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD``, else the task's kill policy, else the default."""
    raw = env.get("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "").strip()
    if raw:
        try:
            return float(parse_duration(raw))
        except (AssertionError, ValueError, TypeError):
            try:
                return float(raw)
            except ValueError:
                logger.warning("unreadable MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD %r; using the default", raw)
    nanoseconds = ((task_info.get("kill_policy") or {}).get("grace_period") or {}).get("nanoseconds")
    if isinstance(nanoseconds, int | float) and nanoseconds > 0:
        return float(nanoseconds) / 1e9
    return DEFAULT_GRACE_PERIOD


@dataclass(frozen=True)
class NodeSettings:
    """Everything the executor needs to start one node, from the environment."""

    task_id: str
    node_id: str
    node_name: str
    cluster_name: str
    http_port: int
    transport_port: int
    publish_host: str
    network_host: str
    seed_hosts: tuple[str, ...]
    initial_master_nodes: tuple[str, ...]
    #: None when the scheduler sends no ELASTICSEARCH_NODE_ROLES: node.roles stays unset.
    roles: tuple[str, ...] | None
    user_settings: Mapping[str, UserValue]
    data_path: Path
    config_path: Path
    #: The config volume's mount point (None without a config volume: the config is in the sandbox).
    config_volume: Path | None
    sandbox: Path
    command: tuple[str, ...] | None
    grace_period: float
    security_enabled: bool
    #: The certificate bundle in the sandbox (security enabled only).
    certificates: Path | None
    elastic_password: str | None = field(repr=False)
    #: ELASTICSEARCH_VERSION: overrides the version found in the distribution.
    version_override: str | None
    #: Who runs Elasticsearch when the executor is root (ELASTICSEARCH_UID; gid 0 as in the official image).
    uid: int
    #: ELASTICSEARCH_UID was given: drop privileges even for ELASTICSEARCH_COMMAND (tests).
    uid_explicit: bool
    child_env: Mapping[str, str] = field(repr=False)
    #: The contract the scheduler wrote the environment for (1: release 0.1.0, which does not say).
    contract: int

    @classmethod
    def from_task(cls, task_info: Mapping[str, Any], environ: Mapping[str, str]) -> NodeSettings:
        env = {**env_of_task(task_info), **environ}
        sandbox = Path(env.get("MESOS_SANDBOX") or env.get("MESOS_DIRECTORY") or os.getcwd())

        def need(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise ExecutorError(f"the executor's environment lacks {name}")
            return value

        def port(name: str) -> int:
            raw = need(name)
            if not raw.isdigit() or not 0 < int(raw) < 65536:
                raise ExecutorError(f"{name}={raw!r} is not a port number")
            return int(raw)

        def path(raw: str) -> Path:
            candidate = Path(raw)
            return candidate if candidate.is_absolute() else sandbox / candidate

        data_path = path(env.get(contract.ENV_DATA_PATH) or "data")
        volume = env.get(contract.ENV_CONFIG_VOLUME_PATH, "").strip()
        config_volume = path(volume) if volume else None
        config_path = config_volume / "config" if config_volume is not None else sandbox / "config"
        command_text = env.get(contract.ENV_COMMAND, "").strip()
        roles_text = env.get(contract.ENV_NODE_ROLES)
        security = env.get(contract.ENV_SECURITY, "").strip().lower() or contract.SECURITY_DISABLED
        if security not in (contract.SECURITY_ENABLED, contract.SECURITY_DISABLED):
            raise ExecutorError(
                f"{contract.ENV_SECURITY}={security!r}: expected {contract.SECURITY_ENABLED} "
                f"or {contract.SECURITY_DISABLED}"
            )
        enabled = security == contract.SECURITY_ENABLED
        password = env.get(contract.ENV_ELASTIC_PASSWORD) or None
        certificates_text = env.get(contract.ENV_CERTIFICATES, "").strip()
        if enabled:
            if not password:
                raise ExecutorError(
                    f"security is enabled but the executor's environment lacks {contract.ENV_ELASTIC_PASSWORD}"
                )
            if not certificates_text:
                raise ExecutorError(
                    f"security is enabled but the executor's environment lacks {contract.ENV_CERTIFICATES} "
                    "(the elasticsearch-certutil PKCS#12 bundle)"
                )
        uid_text = env.get(contract.ENV_UID, "").strip()
        if uid_text and not uid_text.isdigit():
            raise ExecutorError(f"{contract.ENV_UID}={uid_text!r} is not a user id")
        child_env = {k: v for k, v in env.items() if k not in CHILD_ENV_HIDDEN}
        return cls(
            task_id=str((task_info.get("task_id") or {}).get("value", "")),
            node_id=need(contract.ENV_NODE_ID),
            node_name=need(contract.ENV_NODE_NAME),
            cluster_name=need(contract.ENV_CLUSTER_NAME),
            http_port=port(contract.ENV_HTTP_PORT),
            transport_port=port(contract.ENV_TRANSPORT_PORT),
            publish_host=publish_host_of(need(contract.ENV_PUBLISH_HOST), env),
            network_host=env.get(contract.ENV_NETWORK_HOST, DEFAULT_NETWORK_HOST).strip() or DEFAULT_NETWORK_HOST,
            seed_hosts=contract.split_list(env.get(contract.ENV_SEED_HOSTS, "")),
            initial_master_nodes=contract.split_list(env.get(contract.ENV_INITIAL_MASTER_NODES, "")),
            roles=None if roles_text is None else contract.split_list(roles_text),
            user_settings=with_zone(
                parse_user_settings(env.get(contract.ENV_USER_SETTINGS, "")),
                env.get(contract.ENV_NODE_ZONE, "").strip(),
                f"node {env.get(contract.ENV_NODE_ID, '?')} task {(task_info.get('task_id') or {}).get('value', '?')}",
            ),
            data_path=data_path,
            config_path=config_path,
            config_volume=config_volume,
            sandbox=sandbox,
            command=tuple(shlex.split(command_text)) if command_text else None,
            grace_period=grace_period_of(env, task_info),
            security_enabled=enabled,
            certificates=path(certificates_text) if enabled else None,
            elastic_password=password,
            version_override=env.get(contract.ENV_VERSION, "").strip() or None,
            uid=int(uid_text) if uid_text else DEFAULT_ELASTICSEARCH_UID,
            uid_explicit=bool(uid_text),
            child_env=child_env,
            contract=contract.executor_contract(env),
        )

    @property
    def local_http(self) -> str:
        """Where the executor asks the node how it is (it runs on this host)."""
        host = (
            "127.0.0.1" if self.network_host in (DEFAULT_NETWORK_HOST, "_site_", "_local_", "") else self.network_host
        )
        return f"http://{host}:{self.http_port}"


def publish_host_of(host: str, env: Mapping[str, str]) -> str:
    """The agent's hostname, or its IP address with ``ELASTICSEARCH_USE_IP_ADDRESS=true`` (--useIpAddress)."""
    if env.get(contract.ENV_USE_IP_ADDRESS, "").strip().lower() != "true":
        return host
    try:
        return socket.gethostbyname(host)
    except OSError as error:
        logger.warning("cannot resolve %s to an IP address (%s); publishing the hostname", host, error)
        return host


#: The node attribute that carries the agent's zone, and the awareness setting that spreads shard
#: copies over its values.
ZONE_ATTRIBUTE = "zone"
ZONE_SETTING = f"node.attr.{ZONE_ATTRIBUTE}"
AWARENESS_SETTING = "cluster.routing.allocation.awareness.attributes"


def with_zone(settings: Mapping[str, UserValue], zone: str, who: str = "node") -> dict[str, UserValue]:
    """The node's settings with its agent's zone (``ELASTICSEARCH_NODE_ZONE``): ``node.attr.zone`` and
    shard allocation awareness over ``zone``, so that Elasticsearch keeps a shard's copies in
    different zones where it can (Elasticsearch reference, "Shard allocation awareness",
    https://www.elastic.co/guide/en/elasticsearch/reference/8.18/shard-allocation-awareness.html;
    ``AwarenessAllocationDecider`` in elastic/elasticsearch). Awareness attributes the user set are
    kept and ``zone`` is added to them. Without a zone nothing is added: with awareness on, "shards
    are only allocated to nodes that have values set for the specified awareness attributes".

    The zone wins over a ``node.attr.zone`` of the user's settings: placement counted nodes by it."""
    out = dict(settings)
    if not zone:
        return out
    mine = out.get(ZONE_SETTING)
    if mine is not None and mine != zone:
        logger.warning("%s: replacing node.attr.zone %r of the user's settings by the agent's zone %r", who, mine, zone)
    out[ZONE_SETTING] = zone
    current = out.get(AWARENESS_SETTING)
    if current is None:
        out[AWARENESS_SETTING] = ZONE_ATTRIBUTE
        return out
    items = [i.strip() for i in (current if isinstance(current, list) else current.split(",")) if i.strip()]
    if ZONE_ATTRIBUTE not in items:
        items.append(ZONE_ATTRIBUTE)
    out[AWARENESS_SETTING] = items
    return out


def parse_user_settings(text: str) -> dict[str, UserValue]:
    """ELASTICSEARCH_USER_SETTINGS: a JSON object of flattened settings (strings or lists of strings)."""
    if not text.strip():
        return {}
    try:
        document = json.loads(text)
    except ValueError as error:
        raise ExecutorError(f"{contract.ENV_USER_SETTINGS} is not JSON: {error}") from error
    if not isinstance(document, dict):
        raise ExecutorError(f"{contract.ENV_USER_SETTINGS} must be a JSON object of settings")
    settings: dict[str, UserValue] = {}
    for key, value in document.items():
        if isinstance(value, str):
            settings[str(key)] = value
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            settings[str(key)] = [str(item) for item in value]
        else:
            raise ExecutorError(
                f"{contract.ENV_USER_SETTINGS}: [{key}] must be a string or a list of strings, not {value!r}"
            )
    return settings
