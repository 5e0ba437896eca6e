"""The :class:`Config` record: every setting of one framework instance, and its public view."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from es_framework.config.constraints import Constraint
from es_framework.config.flags import FLAGS
from es_framework.config.urls import redact_url
from es_framework.config.values import SECURITY_OFF_WARNING, MesosMaster, Ports, Secret, VolumeMethod


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
    api_token: Secret | None = None
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
    def security_warning(self) -> str | None:
        """What the scheduler logs at start and the API shows while security is off (a deliberate
        default that must never be silent)."""
        return None if self.security_enabled else SECURITY_OFF_WARNING

    @property
    def heap_mb(self) -> int:
        """Elasticsearch's heap: half the container's memory (the rest is for Lucene's page cache)."""
        return max(1, int(self.mem_mb // 2))

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
    if isinstance(value, Ports):
        return {"http": value.http, "transport": value.transport}
    if isinstance(value, tuple):
        if all(isinstance(v, tuple) and len(v) == 2 for v in value):
            return dict(value)
        return [_to_public(v) for v in value]
    if isinstance(value, str):
        return redact_url(value)
    return value
