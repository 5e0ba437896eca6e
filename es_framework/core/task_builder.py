"""From (offer, node id, configuration, cluster view) to the TaskInfo JSON the Mesos v1 API takes.

The node runs in a custom executor. The node id reaches it three ways: ``ELASTICSEARCH_NODE_ID``
in the executor's environment (the executor needs it), the task id, and a task label (status
updates and reconciliation answers carry only the task id). Every variable the executor reads is
named in :mod:`es_framework.contract`, and ``ELASTICSEARCH_CONTRACT_VERSION`` says which contract
the environment was written for.

Volumes, by containerizer and strategy:

=================  ============================================  ====================================
                   external (``--externalVolumeDriver``)          normal (local disk)
=================  ============================================  ====================================
Docker             docker parameters: ``volume-driver`` +        ``host_path`` volume
                   ``volume`` per volume, or one ``mount`` per   ``<dataDir>/<framework>/<cluster>``
                   volume whenever driver options are given      at the image's data path
Mesos, dockerVol.  ``DOCKER_VOLUME`` sources (docker/volume       no volume: ``ELASTICSEARCH_DATA_PATH``
                   isolator + dvdcli)                            is ``<dataDir>/<framework>/<cluster>``
Mesos, dvdi        ``DVDI_VOLUME_*`` executor environment         the same
                   (mesos-module-dvdi)
=================  ============================================  ====================================

Only one form is ever used for a path: an agent given two would mount the volume twice.

What each external volume is created with comes from its storage profile
(:func:`es_framework.core.volume_profiles.volume_specs`: the profile's options for the volume's role,
then the explicit ``--externalVolumeOptions``/``--externalVolumeConfigOptions``), the same options in
all three forms. A driver whose profile table reads the profile from the volume name receives
``<name>@<profile>`` (:func:`~es_framework.core.volume_profiles.received_name`); only the name the
driver receives changes, never the node's identity, the inventory or a mount point of ours.

The Mesos containerizer puts ``ContainerInfo`` volumes only where an agent's isolation takes them.
Mesos' default isolation (``posix/cpu,posix/mem``, filesystem isolator ``filesystem/posix``) fails the
launch of a container with any volume, ``host_path`` included: "Volumes in ContainerInfo is not
supported" (``src/slave/containerizer/mesos/isolators/filesystem/posix.cpp``, ``prepare``). Mounting
them takes ``filesystem/linux`` (which brings ``volume/host_path``: ``isolators/volume/host_path.cpp``
refuses to exist without it, and ``containerizer.cpp`` enables it with ``filesystem/linux``), and
``DOCKER_VOLUME`` sources take ``docker/volume`` (``isolators/docker/volume/isolator.cpp``; every other
isolator skips them). Without a container image, though, the executor sees the agent's own filesystem
under every filesystem isolator, so normal mode needs no volume there: the executor is given the
absolute agent directory and creates it. External volumes on the Mesos containerizer need an agent
with ``--isolation=filesystem/linux,docker/volume`` (or mesos-module-dvdi for ``dvdi``).

Limits and user (see :func:`rlimit_info`, :func:`memory_lock_requested`): the Docker container gets
``ulimit nofile=N:N`` (``--elasticsearchNofile``), and ``ulimit memlock=-1:-1`` when the user's settings
turn ``bootstrap.memory_lock`` on; the Mesos container gets the same limits as
``ContainerInfo.rlimit_info``, which only an agent running the ``posix/rlimits`` isolator applies. On both
containerizers the executor runs as root (Docker: ``FrameworkInfo.user``, the image's ``USER root``;
Mesos: ``CommandInfo.user``) and starts Elasticsearch as its own user (:mod:`es_framework.executor.process`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from es_framework import contract
from es_framework.config import Config
from es_framework.core.bootstrap import initial_master_nodes_for, node_roles
from es_framework.core.cluster_view import ClusterView
from es_framework.core.node_tls import SECURITY_AUTO, secret_variable
from es_framework.core.offers import Offer, agent_zone
from es_framework.core.resources import Requirements, available, carve, choose_ports
from es_framework.core.volume_profiles import received_name, volume_specs
from identity.naming import node_name
from identity.task_ids import NODE_ID_LABEL, task_id_for

#: The executor's command inside its image / on the agent's PATH (see docker/).
EXECUTOR_COMMAND = "es-mesos-executor"
CLUSTER_LABEL = "es-mesos.cluster"

# Where the volumes appear in the Docker executor container. The config volume is *not* mounted
# over the image's config directory: that directory holds the defaults of the image's
# Elasticsearch version, which the executor regenerates the node's config from on every start.
DOCKER_DATA_PATH = "/usr/share/elasticsearch/data"
DOCKER_CONFIG_VOLUME_PATH = "/var/lib/es-mesos/config"
# Under the Mesos containerizer without an image, relative paths land in the sandbox.
SANDBOX_DATA_PATH = "data"
SANDBOX_CONFIG_VOLUME_PATH = "config-volume"
# mesos-module-dvdi mounts at an absolute host path of our choosing.
DVDI_MOUNT_ROOT = "/var/lib/es-mesos/volumes"

#: How long Elasticsearch gets to stop cleanly (flush, leave the cluster) before it is killed.
GRACE_PERIOD_NS = 120 * 10**9
#: Who the executor runs as under the Mesos containerizer: it prepares the node's directories as root and
#: starts Elasticsearch as ``--elasticsearchUser`` (``ELASTICSEARCH_USER``).
EXECUTOR_USER = "root"
#: Elasticsearch's switch for locking its heap in RAM (``BootstrapSettings.MEMORY_LOCK_SETTING``).
MEMORY_LOCK_SETTING = "bootstrap.memory_lock"


@dataclass(frozen=True)
class NodePaths:
    data: str
    config_volume: str | None


def requirements_for(offer: Offer, config: Config, *, uses_local_disk: bool) -> Requirements:
    """What the node takes from this offer (ports chosen from its ranges)."""
    ports = choose_ports(available(offer, config.role).ports, config.ports)
    return Requirements(
        cpus_milli=round(config.cpus * 1000),
        mem_milli=round(config.mem_mb * 1000),
        disk_milli=round(config.disk_mb * 1000) if uses_local_disk else 0,
        ports=ports,
    )


def executor_id_for(config: Config, node_id: int, launch_id: str) -> str:
    """The executor id of a node's launch (unique per launch, like the task id)."""
    return f"{config.executor_name}-node{node_id}-{launch_id}"


def task_ports(task_info: dict[str, Any]) -> tuple[int, int]:
    """The (http, transport) ports of a TaskInfo built here."""
    ports = {p["name"]: p["number"] for p in task_info["discovery"]["ports"]["ports"]}
    return ports["http"], ports["transport"]


def local_data_dir(config: Config) -> str:
    """The agent directory for a node's data in normal mode, ``<dataDir>/<framework>/<cluster>`` (absolute:
    ``--dataDir`` must be), the same under both containerizers.

    No agent id in it: an agent that comes back with a new id still finds its data. The framework and
    cluster names keep two clusters apart on an agent, and within one cluster one node per agent
    (the ``agent_has_node`` rule, by agent id and by hostname, which counts unreachable nodes too)
    keeps two live nodes from ever sharing it. The directory belongs to the agent, not to a node id:
    a node replaced on another agent (same node id, the identity rules are unchanged) starts there with
    an empty directory and recovers its shards from replicas, while its old data stays on the old
    agent, where the next node of this cluster launched on that agent (whatever its id) finds it and
    Elasticsearch reuses what is still valid. ``--dataDir`` must therefore be local to each agent: two
    agents sharing one filesystem there would share the directory (Elasticsearch's ``node.lock``
    then keeps the second node from starting)."""
    return f"{config.data_dir.rstrip('/')}/{config.framework_name}/{config.cluster_name}"


def _options(pairs: tuple[tuple[str, str], ...]) -> str:
    return ",".join(f"{k}={v}" for k, v in pairs)


def _env(variables: dict[str, str], secrets: dict[str, str] | None = None) -> dict[str, Any]:
    plain: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in variables.items()]
    # Secret variables (Mesos >= 1.4): the agent resolves them into the executor's environment, and
    # the master does not show their values in its state endpoints as it does plain ones.
    hidden = [secret_variable(k, v) for k, v in (secrets or {}).items()]
    return {"variables": plain + hidden}


def certificates_file_name(url: str) -> str:
    """Where the Mesos fetcher leaves the certificate bundle in the sandbox (the URL's last part)."""
    name = url.rstrip("/").rsplit("/", 1)[-1]
    return name or "elastic-certificates.p12"


def _labels(config: Config, node_id: int) -> dict[str, Any]:
    pairs = [*config.executor_labels, (NODE_ID_LABEL, str(node_id)), (CLUSTER_LABEL, config.cluster_name)]
    return {"labels": [{"key": k, "value": v} for k, v in pairs]}


def memory_lock_requested(user_settings: Mapping[str, str | list[str]]) -> bool:
    """Whether the operator's settings turn ``bootstrap.memory_lock`` on. Elasticsearch reads the value
    with ``Booleans.parseBoolean`` (elastic/elasticsearch ``libs/core``): exactly ``true`` is true,
    ``false`` false, anything else is refused at start. So only ``true`` asks the agent for the limit."""
    return user_settings.get(MEMORY_LOCK_SETTING) == "true"


def rlimit_info(config: Config) -> dict[str, Any]:
    """The Mesos container's ``RLimitInfo``: ``RLMT_NOFILE`` soft = hard = ``--elasticsearchNofile``, and
    ``RLMT_MEMLOCK`` unlimited when :func:`memory_lock_requested` (in apache/mesos
    ``include/mesos/v1/mesos.proto``, ``RLimitInfo.RLimit``, a limit with neither ``soft`` nor ``hard``
    is unlimited; ``src/posix/rlimits.cpp``, ``rlimits::set``, turns it into ``RLIM_INFINITY``).

    Only the agent's ``posix/rlimits`` isolator reads the field
    (``src/slave/containerizer/mesos/isolators/posix/rlimits.cpp``, ``prepare``, hands it to the
    launcher, which sets the limits before it execs the executor: ``installResourceLimits`` in
    ``src/slave/containerizer/mesos/launch.cpp``). Without that isolator the field is ignored without a
    word, and no other isolator refuses it (``filesystem/posix`` refuses images and volumes only:
    ``isolators/filesystem/posix.cpp``, ``prepare``), so a task that carries it launches on every agent;
    the executor's own limit check then tells the operator."""
    limits: list[dict[str, Any]] = [{"type": "RLMT_NOFILE", "soft": config.nofile, "hard": config.nofile}]
    if memory_lock_requested(config.user_settings):
        limits.append({"type": "RLMT_MEMLOCK"})
    return {"rlimits": limits}


def _docker_container(config: Config, node_id: int) -> tuple[dict[str, Any], NodePaths]:
    parameters: list[dict[str, str]] = [{"key": "ulimit", "value": f"nofile={config.nofile}:{config.nofile}"}]
    if memory_lock_requested(config.user_settings):
        # -1 is Docker's "unlimited" for a ulimit (docker run --ulimit, both soft and hard).
        parameters.append({"key": "ulimit", "value": "memlock=-1:-1"})
    volumes: list[dict[str, Any]] = []
    driver = config.external_volume_driver
    if driver:
        config_spec, data_spec = volume_specs(config, node_id)
        mounts = (
            (received_name(config, config_spec), DOCKER_CONFIG_VOLUME_PATH, config_spec.options),
            (received_name(config, data_spec), DOCKER_DATA_PATH, data_spec.options),
        )
        if any(options for _, _, options in mounts):
            # Per-volume options reach the driver only through --mount; --volume-driver/-v drop them.
            for name, target, options in mounts:
                value = f"type=volume,source={name},target={target},volume-driver={driver}"
                value += "".join(f",volume-opt={k}={v}" for k, v in options)
                parameters.append({"key": "mount", "value": value})
        else:
            parameters.append({"key": "volume-driver", "value": driver})
            parameters.extend({"key": "volume", "value": f"{name}:{target}"} for name, target, _ in mounts)
        paths = NodePaths(DOCKER_DATA_PATH, DOCKER_CONFIG_VOLUME_PATH)
    else:
        volumes.append({"container_path": DOCKER_DATA_PATH, "host_path": local_data_dir(config), "mode": "RW"})
        paths = NodePaths(DOCKER_DATA_PATH, None)
    container: dict[str, Any] = {
        "type": "DOCKER",
        "docker": {
            "image": config.docker_image,
            "network": "HOST",
            "force_pull_image": config.force_pull_image,
            "parameters": parameters,
        },
    }
    if volumes:
        container["volumes"] = volumes
    return container, paths


def _mesos_container(config: Config, node_id: int, env: dict[str, str]) -> tuple[dict[str, Any], NodePaths]:
    driver = config.external_volume_driver
    container: dict[str, Any] = {"type": "MESOS", "rlimit_info": rlimit_info(config)}
    if not driver:
        # No image: the executor shares the agent's filesystem, and a volume would fail the launch on
        # Mesos' default isolation (see the module docstring).
        return container, NodePaths(local_data_dir(config), None)
    config_spec, data_spec = volume_specs(config, node_id)
    config_name, data_name = received_name(config, config_spec), received_name(config, data_spec)
    if config.external_volume_method == "dvdi":
        # The mount point carries the bare name: it is ours, not the driver's.
        config_path = f"{DVDI_MOUNT_ROOT}/{config_spec.name}"
        data_path = f"{DVDI_MOUNT_ROOT}/{data_spec.name}"
        # mesos-module-dvdi reads unsuffixed variables for the first volume and 1-9 for more;
        # every variable of one volume must carry the same suffix.
        for suffix, name, path, options in (
            ("", config_name, config_path, config_spec.options),
            ("1", data_name, data_path, data_spec.options),
        ):
            env[f"DVDI_VOLUME_NAME{suffix}"] = name
            env[f"DVDI_VOLUME_DRIVER{suffix}"] = driver
            env[f"DVDI_VOLUME_CONTAINERPATH{suffix}"] = path
            if options:
                env[f"DVDI_VOLUME_OPTS{suffix}"] = _options(options)
        return container, NodePaths(data_path, config_path)
    volumes = []
    for name, path, options in (
        (config_name, SANDBOX_CONFIG_VOLUME_PATH, config_spec.options),
        (data_name, SANDBOX_DATA_PATH, data_spec.options),
    ):
        docker_volume: dict[str, Any] = {"driver": driver, "name": name}
        if options:
            docker_volume["driver_options"] = {"parameter": [{"key": k, "value": v} for k, v in options]}
        volumes.append(
            {"container_path": path, "mode": "RW", "source": {"type": "DOCKER_VOLUME", "docker_volume": docker_volume}}
        )
    container["volumes"] = volumes
    return container, NodePaths(SANDBOX_DATA_PATH, SANDBOX_CONFIG_VOLUME_PATH)


def build_task_info(
    offer: Offer,
    node_id: int,
    config: Config,
    view: ClusterView,
    *,
    launch_id: str,
) -> dict[str, Any]:
    """The TaskInfo (v1 JSON) that launches node ``node_id`` on ``offer``'s agent.

    ``launch_id`` (a uuid4 hex, see :func:`identity.task_ids.new_launch_id`) makes the task and
    executor ids unique per launch and keeps this function deterministic.
    Raises :class:`es_framework.core.resources.PortsUnavailableError` or
    :class:`es_framework.core.resources.CarveError` if the offer cannot hold the node.
    """
    requirements = requirements_for(offer, config, uses_local_disk=config.strategy_name == "normal")
    http_port, transport_port = requirements.ports
    name = node_name(config.framework_name, node_id)
    task_id = task_id_for(config.framework_name, node_id, launch_id)

    env: dict[str, str] = {
        contract.ENV_CONTRACT_VERSION: str(contract.CONTRACT_VERSION),
        contract.ENV_NODE_ID: str(node_id),
        contract.ENV_NODE_NAME: name,
        contract.ENV_CLUSTER_NAME: config.cluster_name,
        contract.ENV_FRAMEWORK_NAME: config.framework_name,
        contract.ENV_HTTP_PORT: str(http_port),
        contract.ENV_TRANSPORT_PORT: str(transport_port),
        contract.ENV_PUBLISH_HOST: offer.hostname,
        contract.ENV_USE_IP_ADDRESS: "true" if config.use_ip_address else "false",
        contract.ENV_SEED_HOSTS: contract.join_list(view.seed_hosts),
        "ES_JAVA_OPTS": f"-Xms{config.heap_mb}m -Xmx{config.heap_mb}m",
        contract.ENV_NODE_ROLES: contract.join_list(node_roles(node_id, view.master_nodes)),
    }
    zone = agent_zone(offer, config.zone_attribute)
    if zone:
        env[contract.ENV_NODE_ZONE] = zone
    if config.user_settings:
        env[contract.ENV_USER_SETTINGS] = contract.encode_user_settings(config.user_settings)
    initial_masters = initial_master_nodes_for(node_id, view.initial_master_nodes, view.master_nodes)
    if initial_masters:
        env[contract.ENV_INITIAL_MASTER_NODES] = contract.join_list(initial_masters)
    secrets: dict[str, str] = {}
    uris: list[dict[str, Any]] = []
    if config.security_enabled and config.elastic_password is not None and config.certificates_url:
        env[contract.ENV_SECURITY] = contract.SECURITY_ENABLED
        env[contract.ENV_CERTIFICATES] = certificates_file_name(config.certificates_url)
        secrets[contract.ENV_ELASTIC_PASSWORD] = config.elastic_password.reveal()
        if config.certificates_password is not None:
            # Like the password: a SECRET variable, never a plain one, a label or a command line.
            secrets[contract.ENV_CERTIFICATES_PASSWORD] = config.certificates_password.reveal()
        uris.append({"value": config.certificates_url, "extract": False, "cache": False})
    elif config.creates_ca:
        # The node's certificate, key and password are added at launch by the shell (core/node_tls.py).
        env[contract.ENV_SECURITY] = SECURITY_AUTO
    else:
        env[contract.ENV_SECURITY] = contract.SECURITY_DISABLED
    command: dict[str, Any]
    if config.use_docker:
        container, paths = _docker_container(config, node_id)
        # shell=false: Docker runs the image's entrypoint (tini) with this as its command.
        command = {"shell": False, "value": EXECUTOR_COMMAND}
    else:
        container, paths = _mesos_container(config, node_id, env)
        # The executor runs as root to prepare the node's directories and drops to --elasticsearchUser for
        # Elasticsearch. CommandInfo.user, not FrameworkInfo.user: the agent (with --switch_user, its
        # default) takes the command's user over the framework's (Framework::addExecutor in apache/mesos
        # src/slave/slave.cpp), and a running framework's FrameworkInfo.user never changes
        # (preserveImmutableFields in src/master/validation.cpp), nor must it be root on a master started
        # with --root_submissions=false.
        command = {
            "shell": False,
            "value": EXECUTOR_COMMAND,
            "arguments": [EXECUTOR_COMMAND],
            "user": EXECUTOR_USER,
        }
        env[contract.ENV_USER] = config.elasticsearch_user
        if config.binary_url:
            uris.insert(0, {"value": config.binary_url, "extract": True, "cache": False})
    if uris:
        command["uris"] = uris
    env[contract.ENV_DATA_PATH] = paths.data
    if paths.config_volume is not None:
        env[contract.ENV_CONFIG_VOLUME_PATH] = paths.config_volume
    command["environment"] = _env(env, secrets)

    labels = _labels(config, node_id)
    executor = {
        "executor_id": {"value": executor_id_for(config, node_id, launch_id)},
        "name": f"{config.executor_name} {name}",
        "type": "CUSTOM",
        "command": command,
        "container": container,
        "labels": labels,
        "shutdown_grace_period": {"nanoseconds": GRACE_PERIOD_NS},
    }
    return {
        "name": name,
        "task_id": {"value": task_id},
        "agent_id": {"value": offer.agent_id},
        "resources": carve(offer, config.role, requirements),
        "executor": executor,
        "labels": labels,
        "kill_policy": {"grace_period": {"nanoseconds": GRACE_PERIOD_NS}},
        "discovery": {
            "visibility": "EXTERNAL",
            "name": name,
            "ports": {
                "ports": [
                    {"number": http_port, "name": "http", "protocol": "tcp"},
                    {"number": transport_port, "name": "transport", "protocol": "tcp"},
                ]
            },
        },
    }
