"""What the executor needs to start its node, read from the task's environment (:class:`NodeSettings`).

The variables are the scheduler's (named in :mod:`es_framework.contract`, written by
:mod:`es_framework.core.task_builder`): the TaskInfo's executor command environment (VALUE secrets
decoded), overlaid with the process environment, which wins: an agent may adapt it, as the
development cluster does for volume paths, and a real agent resolves secrets into it.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import os
import shlex
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymesos.utils import parse_duration

from es_framework import contract
from es_framework.contract import (
    ENV_CREDENTIALS_URL,
    ENV_TASK_TOKEN,
    ENV_TLS_CA,
    ENV_TLS_CERTIFICATE,
    ENV_TLS_KEY,
    SECURITY_AUTO,
)
from es_framework.core.es_settings import UserValue
from es_framework.executor import bootstrap_checks
from es_framework.executor.logs import logger

DEFAULT_GRACE_PERIOD = 120.0
#: The official image's elasticsearch user (its group is 0).
DEFAULT_ELASTICSEARCH_UID = 1000
#: Variables Elasticsearch's own process never gets (the password reaches it through the keystore, the
#: node's key and certificates through files in its config directory).
CHILD_ENV_HIDDEN = frozenset(
    {
        contract.ENV_ELASTIC_PASSWORD,
        contract.ENV_CERTIFICATES_PASSWORD,
        ENV_TLS_KEY,
        ENV_TLS_CERTIFICATE,
        ENV_TLS_CA,
        ENV_TASK_TOKEN,
        ENV_CREDENTIALS_URL,
    }
)
#: What ELASTICSEARCH_SECURITY may say.
SECURITY_MODES = (contract.SECURITY_ENABLED, contract.SECURITY_DISABLED, SECURITY_AUTO)
#: Where Elasticsearch listens on a real agent unless ELASTICSEARCH_NETWORK_HOST says otherwise.
DEFAULT_NETWORK_HOST = "0.0.0.0"
#: What a Mesos agent puts into every executor's environment (apache/mesos ``src/slave/slave.cpp``,
#: ``executorEnvironment``): its own IP when it was given one (``--ip`` or ``--ip_discovery_command``
#: set ``LIBPROCESS_IP``, ``src/slave/main.cpp``), and always its libprocess address ``ip:port``
#: (on the Docker containerizer too: ``DockerContainerizerProcess`` passes the same environment to
#: ``docker run -e``, ``src/docker/docker.cpp`` ``RunOptions::create``).
LIBPROCESS_IP = "LIBPROCESS_IP"
MESOS_AGENT_ENDPOINT = "MESOS_AGENT_ENDPOINT"

#: A name's addresses (IP texts); raises OSError or returns nothing when it does not resolve.
Resolver = Callable[[str], tuple[str, ...]]


def system_resolver(name: str) -> tuple[str, ...]:
    """What this host's resolver (``/etc/hosts``, then DNS) gives for ``name``, as Elasticsearch's
    ``InetAddress.getAllByName`` would see it in the same container."""
    infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    return tuple(dict.fromkeys(str(info[4][0]) for info in infos))


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


def merged_env(task_env: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """The TaskInfo's variables overlaid with the process environment, except that an empty process
    variable does not hide a TaskInfo value: the Docker containerizer passes a SECRET variable to
    ``docker run -e`` with its (empty) ``value`` and never resolves it (apache/mesos
    ``src/docker/docker.cpp``, ``Docker::RunOptions::create``), so there the secret is read from the
    TaskInfo (see :mod:`es_framework.core.node_tls`)."""
    merged = dict(task_env)
    merged.update({k: v for k, v in environ.items() if v or not task_env.get(k)})
    return merged


@dataclass(frozen=True)
class NodeTlsFiles:
    """``--elasticsearchSecurity auto``: the node's PEM key and certificate, and the cluster CA's."""

    certificate: str
    ca: str
    key: str = field(repr=False)


def node_tls_of(env: Mapping[str, str]) -> NodeTlsFiles:
    """The node's TLS material from the environment; :class:`ExecutorError` naming what is missing."""
    missing = [name for name in (ENV_TLS_CERTIFICATE, ENV_TLS_CA, ENV_TLS_KEY) if not env.get(name, "").strip()]
    if missing:
        raise ExecutorError(
            f"{contract.ENV_SECURITY}={SECURITY_AUTO} but the executor's environment lacks {', '.join(missing)}: the "
            "scheduler issued no certificate for this node (see its log)"
        )
    return NodeTlsFiles(env[ENV_TLS_CERTIFICATE], env[ENV_TLS_CA], env[ENV_TLS_KEY])


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
    #: The agent's own IP, from the environment its agent gave the executor (None: not given).
    agent_ip: str | None = None
    #: ES_MESOS_ENFORCE_BOOTSTRAP_CHECKS (or ES_JAVA_OPTS) forces the production-mode bootstrap checks.
    enforce_bootstrap_checks: bool = False
    #: The certificate bundle's password (ELASTICSEARCH_CERTIFICATES_PASSWORD; security enabled only).
    certificates_password: str | None = field(default=None, repr=False)
    #: ``--elasticsearchSecurity auto``: the node's own PEM files (then ``security_enabled`` too).
    tls: NodeTlsFiles | None = None
    #: Where to fetch the current elastic password after a rotation, and the task's token for it (``auto``).
    credentials_url: str | None = None
    task_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_task(
        cls, task_info: Mapping[str, Any], environ: Mapping[str, str], resolve: Resolver = system_resolver
    ) -> NodeSettings:
        env = merged_env(env_of_task(task_info), environ)
        who = f"node {env.get(contract.ENV_NODE_ID, '?')} task {(task_info.get('task_id') or {}).get('value', '?')}"
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
        if security not in SECURITY_MODES:
            raise ExecutorError(f"{contract.ENV_SECURITY}={security!r}: expected one of {', '.join(SECURITY_MODES)}")
        auto = security == SECURITY_AUTO
        tls = node_tls_of(env) if auto else None
        password = env.get(contract.ENV_ELASTIC_PASSWORD) or None
        if auto and not password:
            raise ExecutorError(
                f"security is auto but the executor's environment lacks {contract.ENV_ELASTIC_PASSWORD}"
            )
        enabled = security == contract.SECURITY_ENABLED
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
        try:
            enforce = bootstrap_checks.forced(env)
        except bootstrap_checks.BootstrapCheckError as error:
            raise ExecutorError(str(error)) from None
        if enforce:
            # Elasticsearch's own switch, so that it enforces what the executor checked (and the rest).
            child_env = bootstrap_checks.with_enforcement(child_env)
        return cls(
            task_id=str((task_info.get("task_id") or {}).get("value", "")),
            node_id=need(contract.ENV_NODE_ID),
            node_name=need(contract.ENV_NODE_NAME),
            cluster_name=need(contract.ENV_CLUSTER_NAME),
            http_port=port(contract.ENV_HTTP_PORT),
            transport_port=port(contract.ENV_TRANSPORT_PORT),
            publish_host=publish_host_of(need(contract.ENV_PUBLISH_HOST), env, resolve, who),
            network_host=network_host_of(env, who),
            seed_hosts=contract.split_list(env.get(contract.ENV_SEED_HOSTS, "")),
            initial_master_nodes=contract.split_list(env.get(contract.ENV_INITIAL_MASTER_NODES, "")),
            roles=None if roles_text is None else contract.split_list(roles_text),
            user_settings=with_zone(
                parse_user_settings(env.get(contract.ENV_USER_SETTINGS, "")),
                env.get(contract.ENV_NODE_ZONE, "").strip(),
                who,
            ),
            data_path=data_path,
            config_path=config_path,
            config_volume=config_volume,
            sandbox=sandbox,
            command=tuple(shlex.split(command_text)) if command_text else None,
            grace_period=grace_period_of(env, task_info),
            security_enabled=enabled or auto,
            certificates=path(certificates_text) if enabled else None,
            elastic_password=password,
            version_override=env.get(contract.ENV_VERSION, "").strip() or None,
            uid=int(uid_text) if uid_text else DEFAULT_ELASTICSEARCH_UID,
            uid_explicit=bool(uid_text),
            child_env=child_env,
            contract=contract.executor_contract(env),
            agent_ip=agent_ip_of(env),
            enforce_bootstrap_checks=enforce,
            certificates_password=(env.get(contract.ENV_CERTIFICATES_PASSWORD) or None) if enabled else None,
            tls=tls,
            credentials_url=(env.get(ENV_CREDENTIALS_URL, "").strip() or None) if auto else None,
            task_token=(env.get(ENV_TASK_TOKEN, "").strip() or None) if auto else None,
        )

    @property
    def local_http(self) -> str:
        """Where the executor asks the node how it is (it runs on this host): the address it binds
        (the first one of a list), 127.0.0.1 for the wildcard and ``_local_``, and the publish host
        for the other special values (``_site_``, ``_global_``, an interface), which bind no loopback."""
        first = self.network_host.split(",")[0].strip()
        if first in (DEFAULT_NETWORK_HOST, "::", "", "_local_") or first.startswith(("_local:", "_lo")):
            host = "127.0.0.1"
        elif first.startswith("_") and first.endswith("_"):
            host = self.publish_host
        else:
            host = first
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"  # an IPv6 literal in a URL
        return f"{'https' if self.tls is not None else 'http'}://{host}:{self.http_port}"


def agent_ip_of(env: Mapping[str, str]) -> str | None:
    """The agent's own IP: ``LIBPROCESS_IP`` (the agent's ``--ip``), else the host part of
    ``MESOS_AGENT_ENDPOINT`` (the agent's libprocess address, ``ip:port``). None when neither holds
    an IP address."""
    candidates = [env.get(LIBPROCESS_IP, "").strip()]
    endpoint = env.get(MESOS_AGENT_ENDPOINT, "").strip()
    if endpoint:
        candidates.append(endpoint.rpartition(":")[0].strip("[]"))
    for candidate in candidates:
        try:
            address = ipaddress.ip_address(candidate)
        except ValueError:
            continue
        if not address.is_unspecified:
            return str(address)
    return None


def network_host_of(env: Mapping[str, str], who: str = "node") -> str:
    """Where Elasticsearch binds: ``ELASTICSEARCH_NETWORK_HOST`` if set; else the agent's own IP when
    it is a loopback address (local mode and the development cluster run their agents on 127.0.0.n:
    bound there, Elasticsearch stays in development mode, as it should on one machine, see
    :mod:`~es_framework.executor.bootstrap_checks`); else ``0.0.0.0`` (a real agent: every interface,
    production mode)."""
    explicit = env.get(contract.ENV_NETWORK_HOST, "").strip()
    if explicit:
        return explicit
    ip = agent_ip_of(env)
    if ip is not None and bootstrap_checks.is_loopback_address(ip):
        logger.info("%s: binding the agent's loopback IP %s (development mode)", who, ip)
        return ip
    return DEFAULT_NETWORK_HOST


def publish_host_of(host: str, env: Mapping[str, str], resolve: Resolver = system_resolver, who: str = "node") -> str:
    """What the node publishes (``network.publish_host``): the agent's hostname, or with
    ``ELASTICSEARCH_USE_IP_ADDRESS=true`` (--useIpAddress) the address it resolves to.

    The hostname is checked first, with this container's resolver (the one Elasticsearch uses): when
    it resolves to loopback addresses only (Debian and Ubuntu put the hostname on 127.0.1.1 in
    ``/etc/hosts``) while the agent's own IP is not loopback, or when it does not resolve at all, the
    other nodes could never reach this one by it: the agent's IP is published instead, and the log
    says why. Agents on a loopback IP (local mode, 127.0.0.n) keep a name that resolves to loopback."""
    use_ip = env.get(contract.ENV_USE_IP_ADDRESS, "").strip().lower() == "true"
    agent_ip = agent_ip_of(env)
    try:
        addresses = tuple(resolve(host))
    except OSError as error:
        addresses, problem = (), f"does not resolve ({error})"
    else:
        problem = "" if addresses else "does not resolve"
    loopback_only = bool(addresses) and all(bootstrap_checks.is_loopback_address(a) for a in addresses)
    if loopback_only and agent_ip is not None and not bootstrap_checks.is_loopback_address(agent_ip):
        problem = f"resolves to the loopback address {addresses[0]} only (is it on 127.0.1.1 in /etc/hosts?)"
    if problem:
        if agent_ip is None:
            logger.warning(
                "%s: the agent's hostname %s %s and the agent gave no IP; publishing the hostname", who, host, problem
            )
            return host
        logger.warning(
            "%s: the agent's hostname %s %s: other nodes could not reach this one by it; publishing the agent's IP %s",
            who,
            host,
            problem,
            agent_ip,
        )
        return agent_ip
    if not use_ip:
        return host
    # --useIpAddress: the name's address, IPv4 first (as socket.gethostbyname chose before).
    ipv4 = [a for a in addresses if ":" not in a]
    return (ipv4 or list(addresses))[0]


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
