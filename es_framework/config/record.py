"""The :class:`Config` record: every setting of one framework instance, and its public view."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from es_framework.config.constraints import Constraint
from es_framework.config.flags import FLAGS
from es_framework.config.urls import redact_url
from es_framework.config.values import SECURITY_OFF_WARNING, MesosMaster, Ports, Secret, VolumeMethod
from es_framework.config.versions import EsVersion, TargetVersion, target_version

#: The largest heap es-mesos gives Elasticsearch: 31 GB, below the JVM's compressed-oops threshold
#: (near 32 GB; above it every object reference doubles in size). Elasticsearch caps its own
#: automatic heap at the same figure (``MachineDependentHeap.MAX_HEAP_SIZE`` in elastic/elasticsearch
#: ``distribution/tools/server-cli``), and its guide says to stay below the threshold ("Set the JVM
#: heap size": ``Xmx`` no more than 50% of the memory and below the compressed-oops threshold).
HEAP_CAP_MB = 31 * 1024
#: The executor's own memory inside the node's container: a Python process (pymesos, about 30 MB
#: resident once loaded), rounded up for its threads and HTTP clients.
EXECUTOR_MEMORY_MB = 64
#: Elasticsearch 8's launcher: its command-line JVM stays beside the server for the node's life.
#: Elasticsearch reserves this much for it when it sizes its own heap
#: (``OverheadSystemMemoryInfo.SERVER_CLI_OVERHEAD``); 7.x has no such process, and the 100 MB go to
#: the page cache.
LAUNCHER_MEMORY_MB = 100
#: What the node's container holds besides Elasticsearch's server JVM and the page cache.
NODE_MEMORY_OVERHEAD_MB = EXECUTOR_MEMORY_MB + LAUNCHER_MEMORY_MB


def heap_mb_for(mem_mb: float) -> int:
    """Elasticsearch's heap (``-Xms`` = ``-Xmx``, MB) in a node container of ``mem_mb``.

    Half of what is left once :data:`NODE_MEMORY_OVERHEAD_MB` is set aside, at most
    :data:`HEAP_CAP_MB`; never below 1 (a uselessly small heap is a warning at start, see
    :mod:`es_framework.config.resolve`). The other half is for what Elasticsearch uses beside its heap
    (direct buffers, which default to half the heap: ``JvmErgonomics``; metaspace, thread stacks) and
    for Lucene's page cache; above the cap all the rest goes to the page cache.

    The executor's memory is subtracted rather than declared as the ExecutorInfo's own resources:
    both containerizers limit the one container the executor and Elasticsearch share to the sum of
    the two anyway (the agent sizes it by ``Executor::allocatedResources``, the executor's resources
    plus its tasks', in apache/mesos ``src/slave/slave.cpp``), so declaring it would move no memory,
    only make every offer need more than ``--elasticsearchRam`` and every placement rule count two
    amounts. The master only warns about an executor without resources on LAUNCH; it refuses one for
    LAUNCH_GROUP, which es-mesos does not use (``src/master/validation.cpp``, ``MIN_CPUS``/``MIN_MEM``).
    ``--elasticsearchRam`` stays what an operator sizes: the node container's whole memory.
    """
    return max(1, min(HEAP_CAP_MB, int((mem_mb - NODE_MEMORY_OVERHEAD_MB) // 2)))


@dataclass(frozen=True)
class Config:
    """Every setting of one framework instance. Build it with
    :func:`es_framework.config.resolve.resolve_config`; the defaults live in
    :data:`es_framework.config.flags.FLAGS`, once."""

    framework_name: str
    cluster_name: str
    elasticsearch_nodes: int
    mesos_master: MesosMaster | None
    zookeeper_mesos_timeout_ms: int
    settings_location: str | None
    cpus: float
    mem_mb: float
    disk_mb: float
    ports: Ports
    docker_image: str
    binary_url: str | None
    force_pull_image: bool
    executor_name: str
    executor_labels: tuple[tuple[str, str], ...]
    data_dir: str
    failover_timeout_s: float
    #: May hold ZooKeeper credentials, so it is kept as a :class:`Secret`.
    state_url: Secret | None
    role: str
    principal: str | None
    secret: Secret | None
    use_docker: bool
    use_ip_address: bool
    web_ui_port: int
    external_volume_driver: str | None
    external_volume_options: tuple[tuple[str, str], ...]
    external_volume_config_options: tuple[tuple[str, str], ...]
    external_volume_method: VolumeMethod
    nofile: int
    elasticsearch_user: str
    allow_gpu_agents: bool
    master_nodes: int = 3
    #: Both set: Elasticsearch security on (see :attr:`security_enabled`).
    elastic_password: Secret | None = None
    certificates_url: str | None = None
    #: The password of a password-protected certificate bundle (a Mesos SECRET variable, the keystore).
    certificates_password: Secret | None = None
    #: ``--elasticsearchVersion``; see :attr:`target_version` for the version the nodes are checked against.
    elasticsearch_version: EsVersion | None = None
    api_token: Secret | None = None
    #: ``--insecureApi``: the operator chose an API without a token (outside local mode, the scheduler
    #: refuses to start with neither; :func:`es_framework.app.startup.check_startable`).
    insecure_api: bool = False
    #: ``--elasticsearchSecurity``: ``auto`` has the scheduler create the cluster's CA
    #: (:mod:`es_framework.config.flags_security`); ``--secretKeyFile``'s key seals what the state keeps.
    #: None: not given, decided at leadership from the state (:mod:`es_framework.core.security_mode`),
    #: which then runs with the decided mode. ``off`` here for a Config built without the flag table.
    elasticsearch_security: Literal["auto", "off"] | None = "off"
    #: ``--elasticsearchSecuritySwitch fullRestart`` (with an explicit ``auto``): switch a cluster recorded
    #: ``off`` with a full cluster restart (:mod:`es_framework.core.engine_security_switch`); None: not asked.
    elasticsearch_security_switch: Literal["fullRestart"] | None = None
    secret_key: Secret | None = None
    #: The settings of --elasticsearchSettingsLocation, once read (:mod:`es_framework.shell.user_settings`).
    user_settings: Mapping[str, str | list[str]] = field(default_factory=dict, compare=False)
    #: Placement (see :mod:`es_framework.config.constraints`): the operator's constraints, the
    #: attribute an agent needs to attach external volumes, nodes per agent, the zone's attribute.
    constraints: tuple[Constraint, ...] = ()
    external_volume_attribute: Constraint | None = None
    max_nodes_per_agent: int = 1
    zone_attribute: str | None = None
    #: The disruption planner's budget (:mod:`es_framework.core.disruption`): nodes unavailable at once.
    max_unavailable: int = 1
    #: Seconds one rollout step may take before it fails and pauses its rollout (``--rolloutStepTimeout``).
    rollout_step_timeout_s: float = 1800.0
    #: Seconds an agent that failed an agent check gets no node (:mod:`es_framework.core.blocked_agents`).
    agent_failure_backoff_s: float = 600.0
    #: Automatic replacement (:mod:`es_framework.core.permanent_failures`): 0 = off; whether the scheduler
    #: may mark an agent gone itself; the least seconds between two automatic replacements.
    permanent_failure_timeout_s: float = 0.0
    mark_agent_gone_after_timeout: bool = False
    replacement_interval_s: float = 300.0
    #: Storage profiles: role ("config"/"data") -> profile name, the operator's profile file, and
    #: the profiles it defines once read (:mod:`es_framework.shell.user_settings`, like the settings file).
    volume_profile: tuple[tuple[str, str], ...] = ()
    volume_profile_file: str | None = None
    volume_profiles: Mapping[str, Any] = field(default_factory=dict, compare=False)
    volume_retention: Literal["keep", "delete"] = "keep"
    #: Local mode only: number of simulated agents and the development cluster's work directory.
    local_agents: int = 4
    local_work_dir: str = "./.es-mesos-local"
    #: ``--mesosMaster local``: a development cluster on this machine (see :mod:`es_framework.dev.local`).
    #: A field of its own, not read from :attr:`mesos_master`: local mode points the scheduler at the
    #: development master it started (an HTTP master) and stays local mode, which the scheduler's
    #: logs, API and web UI say.
    local_mode: bool = False
    #: What the operator should know about accepted but questionable values.
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def strategy_name(self) -> Literal["normal", "external"]:
        return "external" if self.external_volume_driver else "normal"

    @property
    def security_enabled(self) -> bool:
        return self.elastic_password is not None and self.certificates_url is not None

    @property
    def creates_ca(self) -> bool:
        """The scheduler keeps a CA of its own in the state (``--elasticsearchSecurity auto``)."""
        return self.elasticsearch_security == "auto"

    @property
    def target_version(self) -> TargetVersion:
        """The Elasticsearch version the operator means to run (:func:`es_framework.config.versions.target_version`)."""
        return target_version(
            self.elasticsearch_version,
            use_docker=self.use_docker,
            docker_image=self.docker_image,
            binary_url=self.binary_url,
        )

    @property
    def security_warning(self) -> str | None:
        """What the scheduler logs at start and the API shows while security is off (a deliberate
        choice that must never be silent). None while the mode is undecided (the flag not given): the
        leadership's decision says it then (:mod:`es_framework.core.security_mode`)."""
        undecided = self.elasticsearch_security is None
        return None if self.security_enabled or self.creates_ca or undecided else SECURITY_OFF_WARNING

    @property
    def heap_mb(self) -> int:
        """Elasticsearch's heap in the node's container of ``--elasticsearchRam``: :func:`heap_mb_for`."""
        return heap_mb_for(self.mem_mb)

    def public_dict(self) -> dict[str, Any]:
        """The configuration as flag names and JSON values, with secrets masked."""
        out: dict[str, Any] = {}
        for spec in FLAGS:
            if spec.name == "constraints":
                out[spec.name] = [c.public() for c in self.constraints]
            elif spec.name != "zookeeperMesosUrl":  # an alias of mesosMaster
                out[spec.name] = _to_public(getattr(self, spec.attr), url=spec.metavar == "URL")
        return out


def _to_public(value: Any, *, url: bool = False) -> Any:
    if isinstance(value, Secret):
        return redact_url(value.reveal()) if url else "****"
    if isinstance(value, MesosMaster):
        return value.url
    if isinstance(value, Constraint):
        return value.public()
    if isinstance(value, EsVersion):
        return str(value)
    if isinstance(value, Ports):
        return {"http": value.http, "transport": value.transport}
    if isinstance(value, tuple):
        if all(isinstance(v, tuple) and len(v) == 2 for v in value):
            return dict(value)
        return [_to_public(v) for v in value]
    if isinstance(value, str):
        return redact_url(value)
    return value
