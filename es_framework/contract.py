"""The scheduler↔executor contract: every name and message both sides use, in one place.

The scheduler (:mod:`es_framework.core.task_builder`, :mod:`es_framework.core.engine`) writes these
and the executor (:mod:`es_framework.executor`) reads them, so both import this module and a rename
fails at import or type-check time instead of at run time on a Mesos agent.

Three channels carry the contract:

- **The task's environment** (``CommandInfo.environment`` of the executor, Mesos ``Environment``
  variables): the names below; every one the scheduler may write is in :data:`SCHEDULER_ENV`.
  Unknown variables are ignored by every executor, which is what lets a newer scheduler add one
  without breaking an older executor, as long as ignoring it changes no meaning.
- **Framework messages** from the scheduler to an executor (``Call.MESSAGE``, bytes), two kinds:
  :class:`SeedHosts`, JSON ``{"version": n, "seed_hosts": ["host:port", ...]}``; and
  :class:`CredentialsSource` (``--elasticsearchSecurity auto``, sent to every running node after a
  password rotation and at every registration, since the scheduler's address changes with a
  failover), JSON ``{"kind": "credentials_source", "credentials_url": "http(s)://..."}``. The
  ``kind`` tells them apart: an executor tries :class:`CredentialsSource` first, and a seed-hosts
  message has no ``kind``. An executor from before ``auto`` (0.1.0's, contract 2's) reads every
  message as seed hosts, finds no ``version`` in a credentials message and ignores it (logged as
  unreadable).
- **``TaskStatus.data``** of ``TASK_RUNNING`` updates from the executor: :class:`NodeReport`, JSON
  ``{"cluster_uuid", "version", "node_name", "contract"}`` (base64 on the v1 JSON wire).

Versions: :data:`CONTRACT_VERSION` is what this release speaks. Release 0.1.0 spoke version 1
without naming it; its executors send no ``contract`` field and read no
:data:`ENV_CONTRACT_VERSION`. A scheduler must keep working with executors one contract version
older (they are rolled to the new one later), so nothing here may be removed or change meaning
without bumping the version and keeping the old reading; ``tests/executor/test_contract_compat.py``
launches a version-1 task definition against this release.

**Where the executor comes from, and an older one meeting ``auto``.** The scheduler does not ship
its executor: on the Docker containerizer it is the image ``--elasticsearchDockerImage`` (by default
this release's own tag, but an operator may pin another), on the Mesos containerizer the
``es-mesos-executor`` on the agent's ``PATH`` (:data:`es_framework.core.task_builder.EXECUTOR_COMMAND`).
So the scheduler cannot know an executor's contract before it launches; it learns it from the
:class:`NodeReport` once Elasticsearch answers. Contract 3 is the first whose executors run
``ELASTICSEARCH_SECURITY=auto`` (:data:`AUTO_SECURITY_CONTRACT`): the node's own certificate, CA and
key (``ELASTICSEARCH_TLS_*``) and the credentials fetch (``ES_MESOS_TASK_TOKEN``,
``ES_MESOS_CREDENTIALS_URL``). An executor that ignored those variables would start Elasticsearch
without TLS, a meaning change; it does not happen because every older executor checks
``ELASTICSEARCH_SECURITY`` against the values it knows (``enabled``, ``disabled``) and fails the
task (``TASK_FAILED``, "ELASTICSEARCH_SECURITY='auto': expected enabled or disabled") before it
prepares or starts anything. The scheduler therefore launches the same ``auto`` TaskInfo whatever
executor will run it, and such a failure backs the node id off like any other, its message in the
node's history, until the executor is this release's (``tests/executor/test_contract_compat.py``
runs 0.1.0's executor on an ``auto`` task; contract 2's executors, before ``auto``, had the same
check). Nor does the scheduler act on a :class:`NodeReport` of an ``auto`` node that says a contract
below 3: its executor got that far only by running ``auto`` with TLS (development builds between
``auto`` and this version's bump did, still saying 2). A new security mode must keep that property:
a value of ``ELASTICSEARCH_SECURITY`` an older executor does not know is refused by it, never read as
off.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass

#: The contract this release speaks. 1: release 0.1.0 (unnamed). 2: adds the version itself.
#: 3: the scheduler-made TLS material and the credentials fetch, --elasticsearchSecurity auto
#: (``ELASTICSEARCH_SECURITY=auto``, ``ELASTICSEARCH_TLS_*``, ``ES_MESOS_TASK_TOKEN``,
#: ``ES_MESOS_CREDENTIALS_URL``, :class:`CredentialsSource`); ``ELASTICSEARCH_NODE_ZONE``, written
#: since contract 2 (an older executor ignores it: no zone awareness), is listed from 3 on.
CONTRACT_VERSION = 3
#: The oldest executor contract this scheduler still drives.
OLDEST_SUPPORTED_CONTRACT = 1
#: The first contract whose executors run ``ELASTICSEARCH_SECURITY=auto``; older ones refuse such a
#: task before Elasticsearch starts (see the module's docstring).
AUTO_SECURITY_CONTRACT = 3

# --- the task's environment (scheduler -> executor) ------------------------------------------------

ENV_CONTRACT_VERSION = "ELASTICSEARCH_CONTRACT_VERSION"
ENV_NODE_ID = "ELASTICSEARCH_NODE_ID"
ENV_NODE_NAME = "ELASTICSEARCH_NODE_NAME"
ENV_CLUSTER_NAME = "ELASTICSEARCH_CLUSTER_NAME"
ENV_FRAMEWORK_NAME = "ELASTICSEARCH_FRAMEWORK_NAME"
ENV_HTTP_PORT = "ELASTICSEARCH_HTTP_PORT"
ENV_TRANSPORT_PORT = "ELASTICSEARCH_TRANSPORT_PORT"
ENV_PUBLISH_HOST = "ELASTICSEARCH_PUBLISH_HOST"
ENV_USE_IP_ADDRESS = "ELASTICSEARCH_USE_IP_ADDRESS"
ENV_SEED_HOSTS = "ELASTICSEARCH_SEED_HOSTS"
ENV_NODE_ROLES = "ELASTICSEARCH_NODE_ROLES"
ENV_USER_SETTINGS = "ELASTICSEARCH_USER_SETTINGS"
ENV_INITIAL_MASTER_NODES = "ELASTICSEARCH_INITIAL_MASTER_NODES"
ENV_SECURITY = "ELASTICSEARCH_SECURITY"
ENV_CERTIFICATES = "ELASTICSEARCH_CERTIFICATES"
ENV_DATA_PATH = "ELASTICSEARCH_DATA_PATH"
ENV_CONFIG_VOLUME_PATH = "ELASTICSEARCH_CONFIG_VOLUME_PATH"
#: Mesos containerizer only: the agent user (``--elasticsearchUser``) the executor, started as root,
#: runs Elasticsearch as; the executor resolves it on the agent (absent on Docker: the image's user).
ENV_USER = "ELASTICSEARCH_USER"
#: The agent's zone (absent when the agent has none): the node's ``node.attr.zone``, and with it
#: shard allocation awareness over zones.
ENV_NODE_ZONE = "ELASTICSEARCH_NODE_ZONE"
#: The ``elastic`` user's password; a Mesos SECRET variable, never logged, hidden from Elasticsearch's children.
ENV_ELASTIC_PASSWORD = "ELASTIC_PASSWORD"
#: The certificate bundle's password (``--elasticsearchCertificatesPasswordFile``), absent for a bundle
#: without one; a Mesos SECRET variable like the password, never logged, hidden from Elasticsearch's
#: children: it reaches Elasticsearch through the keystore (the transport ``secure_password`` settings).
ENV_CERTIFICATES_PASSWORD = "ELASTICSEARCH_CERTIFICATES_PASSWORD"
# --elasticsearchSecurity auto (contract 3; written by es_framework.core.node_tls at launch).
#: The node's certificate and the cluster CA's, PEM (plain variables: certificates are public).
ENV_TLS_CERTIFICATE = "ELASTICSEARCH_TLS_CERTIFICATE"
ENV_TLS_CA = "ELASTICSEARCH_TLS_CA"
#: The node's private key, PKCS#8 PEM: a Mesos SECRET variable, hidden from Elasticsearch's children.
ENV_TLS_KEY = "ELASTICSEARCH_TLS_KEY"
#: The task's token for the credentials fetch: a Mesos SECRET variable, never a plain one or a label,
#: hidden from Elasticsearch's children.
ENV_TASK_TOKEN = "ES_MESOS_TASK_TOKEN"
#: Where the executor fetches the current ``elastic`` password after a rotation (plain: an address is
#: no secret); later changed by :class:`CredentialsSource` messages.
ENV_CREDENTIALS_URL = "ES_MESOS_CREDENTIALS_URL"

#: ``ELASTICSEARCH_SECURITY``'s values (absent: ``disabled``). ``auto``: the scheduler's own CA, the
#: node's certificate and key in the ``ELASTICSEARCH_TLS_*`` variables (contract 3).
SECURITY_ENABLED = "enabled"
SECURITY_DISABLED = "disabled"
SECURITY_AUTO = "auto"

# Set by operators or development tools on the executor, never by the scheduler: listed so that the
# executor reads every name from here, and so nobody gives one of them a second meaning.
ENV_COMMAND = "ELASTICSEARCH_COMMAND"
ENV_VERSION = "ELASTICSEARCH_VERSION"
ENV_UID = "ELASTICSEARCH_UID"
ENV_NETWORK_HOST = "ELASTICSEARCH_NETWORK_HOST"
#: ``true``: run Elasticsearch's production-mode bootstrap checks even on a loopback address; the
#: executor then passes ``-Des.enforce.bootstrap.checks=true`` to Elasticsearch, its own switch
#: (``BootstrapChecks.ES_ENFORCE_BOOTSTRAP_CHECKS``). An agent sets it with
#: ``--executor_environment_variables``.
ENV_ENFORCE_BOOTSTRAP_CHECKS = "ES_MESOS_ENFORCE_BOOTSTRAP_CHECKS"
#: What the agent's limits are, instead of what the executor reads from ``/proc`` and ``getrlimit``:
#: tests and the development cluster simulate a short agent with them (the demo node reads them too).
ENV_AGENT_MAX_MAP_COUNT = "ES_MESOS_AGENT_VM_MAX_MAP_COUNT"
ENV_AGENT_MAX_FILE_DESCRIPTORS = "ES_MESOS_AGENT_MAX_FILE_DESCRIPTORS"
ENV_AGENT_MAX_THREADS = "ES_MESOS_AGENT_MAX_THREADS"
#: ``unlimited`` or a number of bytes (RLIMIT_MEMLOCK).
ENV_AGENT_MEMLOCK_LIMIT = "ES_MESOS_AGENT_MEMLOCK_LIMIT"
#: ``unlimited`` or a number of bytes (RLIMIT_AS, RLIMIT_FSIZE).
ENV_AGENT_MAX_VIRTUAL_MEMORY = "ES_MESOS_AGENT_MAX_VIRTUAL_MEMORY"
ENV_AGENT_MAX_FILE_SIZE = "ES_MESOS_AGENT_MAX_FILE_SIZE"

#: Every variable the scheduler may put into a task's environment.
SCHEDULER_ENV = frozenset(
    {
        ENV_CONTRACT_VERSION,
        ENV_NODE_ID,
        ENV_NODE_NAME,
        ENV_CLUSTER_NAME,
        ENV_FRAMEWORK_NAME,
        ENV_HTTP_PORT,
        ENV_TRANSPORT_PORT,
        ENV_PUBLISH_HOST,
        ENV_USE_IP_ADDRESS,
        ENV_SEED_HOSTS,
        ENV_NODE_ROLES,
        ENV_USER_SETTINGS,
        ENV_INITIAL_MASTER_NODES,
        ENV_SECURITY,
        ENV_CERTIFICATES,
        ENV_DATA_PATH,
        ENV_CONFIG_VOLUME_PATH,
        ENV_USER,
        ENV_NODE_ZONE,
        ENV_ELASTIC_PASSWORD,
        ENV_CERTIFICATES_PASSWORD,
        ENV_TLS_CERTIFICATE,
        ENV_TLS_CA,
        ENV_TLS_KEY,
        ENV_TASK_TOKEN,
        ENV_CREDENTIALS_URL,
    }
)

#: What ``GET /`` answers for ``cluster_uuid`` while a node has not joined a formed cluster
#: (Elasticsearch's ``ClusterState.UNKNOWN_UUID``).
NO_CLUSTER_UUID = "_na_"


def join_list(items: tuple[str, ...] | list[str]) -> str:
    """A list variable's value (``ELASTICSEARCH_SEED_HOSTS``, ``..._NODE_ROLES``, ...): comma-separated."""
    return ",".join(items)


def split_list(text: str) -> tuple[str, ...]:
    """The inverse of :func:`join_list`; blanks and empty items are dropped."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


def encode_user_settings(settings: Mapping[str, str | list[str]]) -> str:
    """``ELASTICSEARCH_USER_SETTINGS``: the operator's flattened settings as one JSON object, keys
    sorted so that the same settings always give the same text (it is part of the configuration
    fingerprint, so a reordering must not mark nodes outdated)."""
    return json.dumps(dict(settings), sort_keys=True)


def executor_contract(env: Mapping[str, str]) -> int:
    """The contract version a task's environment was written for (1 when it does not say)."""
    text = env.get(ENV_CONTRACT_VERSION, "").strip()
    return int(text) if text.isdigit() else 1


# --- framework messages (scheduler -> executor) ----------------------------------------------------


class ContractError(ValueError):
    """A message that does not follow the contract; the receiver ignores it and changes nothing."""


@dataclass(frozen=True)
class SeedHosts:
    """The master-eligible nodes' transport addresses. ``version`` only grows: an executor applies a
    message only when its version is newer than the last it applied, so a late resend is harmless."""

    version: int
    seed_hosts: tuple[str, ...]

    def encode(self) -> bytes:
        return json.dumps({"version": self.version, "seed_hosts": list(self.seed_hosts)}).encode("utf-8")

    @classmethod
    def decode(cls, data: bytes) -> SeedHosts:
        try:
            message = json.loads(data.decode("utf-8"))
            version = message["version"]
            hosts = message["seed_hosts"]
        except (ValueError, UnicodeDecodeError, KeyError, TypeError, RecursionError) as error:
            # RecursionError: JSON nested deeper than the parser's recursion limit.
            raise ContractError(f"not a seed-hosts message: {type(error).__name__}: {error}") from None
        if not isinstance(version, int) or isinstance(version, bool) or not isinstance(hosts, list):
            raise ContractError("not a seed-hosts message: version must be an integer and seed_hosts a list")
        for host in hosts:
            # Each becomes one line of unicast_hosts.txt: a non-text item or one with blanks or line
            # breaks would write something the scheduler never sent.
            if not isinstance(host, str) or not host or any(c.isspace() or not c.isprintable() for c in host):
                raise ContractError(f"not a seed-hosts message: seed host {host!r} is not a host:port text")
        return cls(version, tuple(hosts))


@dataclass(frozen=True)
class CredentialsSource:
    """Where the executor fetches the current credentials from now on (``--elasticsearchSecurity
    auto``; :mod:`es_framework.core.credentials` says how the fetch is authenticated). Never a secret:
    the executor proves itself with its token (:data:`ENV_TASK_TOKEN`), over the scheduler's API."""

    credentials_url: str

    KIND = "credentials_source"

    def encode(self) -> bytes:
        return json.dumps({"kind": self.KIND, "credentials_url": self.credentials_url}).encode("utf-8")

    @classmethod
    def decode(cls, data: bytes) -> CredentialsSource | None:
        """The message in ``data``, None when ``data`` is another message (e.g. seed hosts)."""
        try:
            message = json.loads(data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None
        if not isinstance(message, dict) or message.get("kind") != cls.KIND:
            return None
        url = message.get("credentials_url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")) or any(c.isspace() for c in url):
            return None
        return cls(url)


# --- TaskStatus.data (executor -> scheduler) -------------------------------------------------------

#: Longer texts in a report are dropped: they are names and versions, and the data is untrusted.
MAX_REPORT_TEXT = 200


def wire_bytes(data: object) -> bytes | None:
    """``TaskStatus.data`` as the v1 JSON API carries bytes (base64 text), decoded; None when absent or not base64."""
    if not isinstance(data, str) or not data:
        return None
    try:
        return base64.b64decode(data, validate=True)
    except (ValueError, binascii.Error):
        return None


@dataclass(frozen=True)
class NodeReport:
    """What the executor learnt from ``GET /`` of its node. Every field is optional; ``cluster_uuid``
    is None while the node has not joined a formed cluster (it never carries :data:`NO_CLUSTER_UUID`)."""

    cluster_uuid: str | None = None
    version: str | None = None
    node_name: str | None = None
    #: The executor's contract version (None: an executor of release 0.1.0, contract 1).
    contract: int | None = None

    def encode(self) -> bytes:
        document: dict[str, object] = {
            "cluster_uuid": self.cluster_uuid or NO_CLUSTER_UUID,
            "contract": CONTRACT_VERSION if self.contract is None else self.contract,
        }
        if self.version is not None:
            document["version"] = self.version
        if self.node_name is not None:
            document["node_name"] = self.node_name
        return json.dumps(document, sort_keys=True).encode("utf-8")

    @classmethod
    def decode_wire(cls, data: object) -> NodeReport | None:
        """``TaskStatus.data`` as the v1 JSON API carries it (base64 text); None when absent or unreadable."""
        raw = wire_bytes(data)
        return None if raw is None else cls.decode(raw)

    @classmethod
    def decode(cls, raw: bytes) -> NodeReport | None:
        try:
            document = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
            return None
        if not isinstance(document, Mapping) or "agent_checks" in document:
            return None

        def text(key: str) -> str | None:
            value = document.get(key)
            return value if isinstance(value, str) and value and len(value) <= MAX_REPORT_TEXT else None

        contract = document.get("contract")
        uuid = text("cluster_uuid")
        report = cls(
            cluster_uuid=None if uuid == NO_CLUSTER_UUID else uuid,
            version=text("version"),
            node_name=text("node_name"),
            contract=contract if isinstance(contract, int) and not isinstance(contract, bool) else None,
        )
        return report if report != cls() else None


@dataclass(frozen=True)
class AgentCheck:
    """One agent limit Elasticsearch's production-mode bootstrap checks refuse: what was found on the
    agent, what Elasticsearch needs, and the operator's fix."""

    name: str
    found: str
    needed: str
    fix: str

    def sentence(self) -> str:
        return f"{self.name} is {self.found}, Elasticsearch needs {self.needed} (fix: {self.fix})"


#: The most checks a report carries (Elasticsearch has about a dozen; the data is untrusted).
MAX_AGENT_CHECKS = 16


@dataclass(frozen=True)
class AgentCheckReport:
    """``TaskStatus.data`` of a ``TASK_FAILED`` that the executor sent because the agent failed a
    bootstrap check before Elasticsearch was started (or Elasticsearch exited 78 naming such a check):
    JSON ``{"agent_checks": [{"name", "found", "needed", "fix"}, ...], "agent": hostname, "contract"}``.

    The scheduler reads it as "this agent is not configured for Elasticsearch": the node avoids the
    agent for a while instead of crash-looping on it. The ``agent_checks`` key is what tells it apart
    from a :class:`NodeReport` (which ``TASK_FAILED`` never carries)."""

    agent: str
    checks: tuple[AgentCheck, ...]
    contract: int | None = None

    def encode(self) -> bytes:
        document = {
            "agent": self.agent,
            "agent_checks": [{"name": c.name, "found": c.found, "needed": c.needed, "fix": c.fix} for c in self.checks],
            "contract": CONTRACT_VERSION if self.contract is None else self.contract,
        }
        return json.dumps(document, sort_keys=True).encode("utf-8")

    def summary(self) -> str:
        """One line for logs and the status: the agent, then each check."""
        return f"agent {self.agent}: " + "; ".join(check.sentence() for check in self.checks)

    @classmethod
    def decode_wire(cls, data: object) -> AgentCheckReport | None:
        """``TaskStatus.data`` as the v1 JSON API carries it (base64 text); None when absent or not such a report."""
        raw = wire_bytes(data)
        return None if raw is None else cls.decode(raw)

    @classmethod
    def decode(cls, raw: bytes) -> AgentCheckReport | None:
        try:
            document = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None
        if not isinstance(document, Mapping):
            return None
        items = document.get("agent_checks")
        if not isinstance(items, list) or not items or len(items) > MAX_AGENT_CHECKS:
            return None
        checks: list[AgentCheck] = []
        for item in items:
            if not isinstance(item, Mapping):
                return None
            fields = [item.get(key) for key in ("name", "found", "needed", "fix")]
            if not all(isinstance(f, str) and f and len(f) <= MAX_REPORT_TEXT for f in fields):
                return None
            checks.append(AgentCheck(*fields))  # type: ignore[arg-type]
        agent = document.get("agent")
        contract = document.get("contract")
        return cls(
            agent=agent if isinstance(agent, str) and agent and len(agent) <= MAX_REPORT_TEXT else "?",
            checks=tuple(checks),
            contract=contract if isinstance(contract, int) and not isinstance(contract, bool) else None,
        )
