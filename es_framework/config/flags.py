"""Every flag, once: its name (the Java framework's), :class:`Config` attribute, default, parser
and help. The environment variable of ``--someFlag`` is ``ES_MESOS_SOME_FLAG``."""

from __future__ import annotations

from es_framework.config.constraints import parse_attribute_requirement, parse_constraints
from es_framework.config.flag_spec import FlagSpec
from es_framework.config.flags_day2 import DAY2_FLAGS
from es_framework.config.flags_security import SECURITY_FLAGS
from es_framework.config.parsers import (
    optional,
    parse_absolute_path,
    parse_binary_url,
    parse_bool,
    parse_cluster_name,
    parse_docker_image,
    parse_executor_name,
    parse_framework_name,
    parse_int_in,
    parse_key_values,
    parse_labels,
    parse_local_work_dir,
    parse_ports,
    parse_positive_number,
    parse_principal,
    parse_role,
    parse_settings_location,
    parse_state_url_secret,
    parse_user,
    parse_volume_driver,
    parse_volume_method,
    parse_volume_profile,
    parse_volume_retention,
)
from es_framework.config.urls import parse_mesos_master, parse_mesos_zk_url
from es_framework.config.values import (
    DEFAULT_EXECUTOR_IMAGE,
    DEFAULT_FAILOVER_TIMEOUT_S,
    DEFAULT_MASTER_NODES,
    ES_REQUIRED_NOFILE,
    LOCAL_MODE_WARNING,
    MAX_LOCAL_AGENTS,
)
from es_framework.config.versions import parse_es_version

# FlagSpec is part of this module's interface (the table's type), defined in flag_spec.
__all__ = ["FLAGS", "FLAGS_BY_NAME", "FlagSpec"]

FLAGS: tuple[FlagSpec, ...] = (
    FlagSpec(
        "mesosMaster",
        "mesos_master",
        "",
        optional(parse_mesos_master),
        "Mesos master: host[:port] or http://host[:port] (port 5050 if left out; the host must resolve; https:// "
        "is refused: pymesos speaks plain HTTP), "
        "or zk://host:port[,...]/path (leader detection); "
        f"'local' runs everything on this machine ({LOCAL_MODE_WARNING}).",
        "URL",
    ),
    FlagSpec(
        "zookeeperMesosUrl",
        "mesos_master",
        "",
        optional(parse_mesos_zk_url),
        "Mesos' ZooKeeper URL, zk://host:port[,...]/path (the Java framework's spelling of --mesosMaster).",
        "URL",
    ),
    FlagSpec(
        "zookeeperMesosTimeout",
        "zookeeper_mesos_timeout_ms",
        "20000",
        lambda t: parse_int_in(t, 1, what="a number of milliseconds"),
        "ZooKeeper session timeout, in milliseconds.",
        "MS",
    ),
    FlagSpec(
        "elasticsearchNodes",
        "elasticsearch_nodes",
        "3",
        lambda t: parse_int_in(t, 1, what="a whole number of nodes"),
        "Number of Elasticsearch nodes (an odd number is recommended).",
        "N",
    ),
    FlagSpec(
        "elasticsearchClusterName",
        "cluster_name",
        "mesos-ha",
        parse_cluster_name,
        "Elasticsearch cluster.name.",
        "NAME",
    ),
    FlagSpec(
        "elasticsearchSettingsLocation",
        "settings_location",
        "",
        optional(parse_settings_location),
        "Path or http(s)/file URL of an elasticsearch.yml whose settings are added to every node.",
        "PATH|URL",
    ),
    FlagSpec(
        "elasticsearchMasterNodes",
        "master_nodes",
        str(DEFAULT_MASTER_NODES),
        lambda t: parse_int_in(t, 1, what="a whole number of nodes"),
        "Master-eligible nodes: node ids 1..N are master-eligible (and hold data), higher ids hold data only.",
        "N",
    ),
    FlagSpec(
        "elasticsearchPasswordFile",
        "elastic_password",
        "",
        lambda t: t or None,
        "File holding the password of Elasticsearch's built-in elastic user. With --elasticsearchCertificatesUrl "
        "it turns Elasticsearch security on; without both, security is off (and the log and API say so).",
        "PATH",
        secret=True,
    ),
    FlagSpec(
        "elasticsearchCertificatesUrl",
        "certificates_url",
        "",
        optional(parse_binary_url),
        "PKCS#12 bundle made by elasticsearch-certutil (CA and node certificate; a password-protected one needs "
        "--elasticsearchCertificatesPasswordFile), fetched into every node's sandbox for transport TLS; needs "
        "--elasticsearchPasswordFile.",
        "URL",
    ),
    FlagSpec(
        "elasticsearchCertificatesPasswordFile",
        "certificates_password",
        "",
        lambda t: t or None,
        "File holding the password of the --elasticsearchCertificatesUrl bundle (a password-protected PKCS#12); "
        "every node gets it in its Elasticsearch keystore (the transport keystore and truststore secure_password).",
        "PATH",
        secret=True,
    ),
    FlagSpec(
        "elasticsearchVersion",
        "elasticsearch_version",
        "",
        optional(parse_es_version),
        "The Elasticsearch version the nodes run, e.g. 8.15.1; the user settings are checked against it. Unset: "
        "the tag of --elasticsearchDockerImage or the file name of --elasticsearchBinaryUrl when it names one.",
        "VERSION",
    ),
    FlagSpec("elasticsearchCpu", "cpus", "1.0", parse_positive_number, "CPUs per node.", "CPUS"),
    FlagSpec(
        "elasticsearchRam",
        "mem_mb",
        "2048",
        lambda t: parse_positive_number(t, unit=" (MB)"),
        "Memory of each node's container, in MB (Elasticsearch, its launcher and the executor); the heap is half "
        "of what is left after 164 MB for the executor and the launcher, at most 31 GB.",
        "MB",
    ),
    FlagSpec(
        "elasticsearchDisk",
        "disk_mb",
        "1024",
        lambda t: parse_positive_number(t, unit=" (MB)"),
        "Local disk per node, in MB (normal strategy only; ignored with --externalVolumeDriver).",
        "MB",
    ),
    FlagSpec(
        "elasticsearchPorts",
        "ports",
        "",
        parse_ports,
        "HTTP,TRANSPORT ports, e.g. 9200,9300; 0 or empty takes a port from the offer.",
        "HTTP,TRANSPORT",
    ),
    FlagSpec(
        "elasticsearchDockerImage",
        "docker_image",
        DEFAULT_EXECUTOR_IMAGE,
        parse_docker_image,
        "Executor image (Docker containerizer).",
        "IMAGE",
    ),
    FlagSpec(
        "elasticsearchBinaryUrl",
        "binary_url",
        "",
        optional(parse_binary_url),
        "Elasticsearch distribution tarball, fetched by the Mesos fetcher (Mesos containerizer).",
        "URL",
    ),
    FlagSpec(
        "executorForcePullImage",
        "force_pull_image",
        "false",
        parse_bool,
        "Pull the executor image even if the agent has it.",
        "BOOL",
    ),
    FlagSpec(
        "executorName", "executor_name", "elasticsearch-executor", parse_executor_name, "Executor name prefix.", "NAME"
    ),
    FlagSpec(
        "executorLabels",
        "executor_labels",
        "",
        parse_labels,
        "Labels for every node's task and executor: key=value, separated by spaces or commas.",
        "K=V",
    ),
    FlagSpec(
        "dataDir",
        "data_dir",
        "/var/lib/mesos/slave/elasticsearch",
        parse_absolute_path,
        "Agent directory for node data (normal strategy): <dataDir>/<frameworkName>/<clusterName>.",
        "DIR",
    ),
    FlagSpec(
        "frameworkName",
        "framework_name",
        "elasticsearch",
        parse_framework_name,
        "Framework name; also the prefix of volume and node names (<name><id>data). Lowercase letters, digits "
        "and '-', starting and ending with a letter. Clusters sharing a storage backend need different names.",
        "NAME",
    ),
    FlagSpec(
        "frameworkFailoverTimeout",
        "failover_timeout_s",
        str(DEFAULT_FAILOVER_TIMEOUT_S),
        lambda t: parse_positive_number(t, unit=" (seconds)"),
        "Seconds Mesos keeps the nodes running while no scheduler is connected (default: 28 days).",
        "SECONDS",
    ),
    FlagSpec(
        "frameworkStateUrl",
        "state_url",
        "",
        optional(parse_state_url_secret),
        "Where the scheduler keeps its state: zk://[user:password@]host:port[,...][/chroot], or file:///dir on a "
        "single machine. Default: the ZooKeeper of --zookeeperMesosUrl; required with an HTTP master.",
        "URL",
    ),
    FlagSpec("frameworkRole", "role", "*", parse_role, "Mesos role to register with.", "ROLE"),
    FlagSpec(
        "frameworkPrincipal", "principal", "", optional(parse_principal), "Principal for Mesos authentication.", "NAME"
    ),
    FlagSpec(
        "frameworkSecretPath",
        "secret",
        "",
        lambda t: t or None,
        "File holding the secret for --frameworkPrincipal (a trailing newline is stripped).",
        "PATH",
        secret=True,
    ),
    FlagSpec(
        "frameworkUseDocker",
        "use_docker",
        "true",
        parse_bool,
        "true: Docker containerizer; false: Mesos containerizer with --elasticsearchBinaryUrl.",
        "BOOL",
    ),
    FlagSpec(
        "useIpAddress",
        "use_ip_address",
        "false",
        parse_bool,
        "Publish the agent's IP address instead of its hostname.",
        "BOOL",
    ),
    FlagSpec(
        "webUiPort",
        "web_ui_port",
        "31100",
        lambda t: parse_int_in(t, 1, 65535, "a port"),
        "Port of the API and web UI.",
        "PORT",
    ),
    FlagSpec(
        "apiTokenFile",
        "api_token",
        "",
        lambda t: t or None,
        "File holding the bearer token that changing API requests (PUT, POST, DELETE) and every request to the "
        "Elasticsearch proxy /v1/es/... must carry; without it the API is open to anyone who can reach it (a warning "
        "says so).",
        "PATH",
        secret=True,
    ),
    FlagSpec(
        "insecureApi",
        "insecure_api",
        "false",
        parse_bool,
        "Serve the API without --apiTokenFile (a warning says so): outside local mode the scheduler refuses to "
        "start with neither. Only where the network itself keeps strangers away from --webUiPort.",
        "BOOL",
    ),
    *SECURITY_FLAGS,
    FlagSpec(
        "externalVolumeDriver",
        "external_volume_driver",
        "",
        optional(parse_volume_driver),
        "Docker volume driver (e.g. rexray): selects the external strategy, volumes <frameworkName><id>config/data.",
        "DRIVER",
    ),
    FlagSpec(
        "externalVolumeOptions",
        "external_volume_options",
        "",
        parse_key_values,
        "Driver options for each data volume, k=v,k=v (e.g. size=100,volumetype=io1,iops=3000).",
        "K=V,...",
    ),
    FlagSpec(
        "externalVolumeConfigOptions",
        "external_volume_config_options",
        "",
        parse_key_values,
        "Driver options for each config volume, k=v,k=v, applied after its storage profile's (the rexray "
        "table's default profile gives config volumes size=1).",
        "K=V,...",
    ),
    FlagSpec(
        "externalVolumeMethod",
        "external_volume_method",
        "dockerVolume",
        parse_volume_method,
        "With --frameworkUseDocker false: dockerVolume (docker/volume isolator) or dvdi (mesos-module-dvdi).",
        "METHOD",
    ),
    FlagSpec(
        "externalVolumeAttribute",
        "external_volume_attribute",
        "",
        parse_attribute_requirement,
        "Agent attribute that says an agent can attach the volume driver's volumes: NAME (any value) or NAME:VALUE "
        "(e.g. rexray:true); agents without it never get a node. External strategy only.",
        "ATTR[:VALUE]",
    ),
    FlagSpec(
        "volumeProfile",
        "volume_profile",
        "",
        parse_volume_profile,
        "Storage profile per volume role, e.g. data=gold,config=default (profiles of the driver's table or of "
        "--volumeProfileFile); 'default' when left out. External strategy only.",
        "ROLE=PROFILE,...",
    ),
    FlagSpec(
        "volumeProfileFile",
        "volume_profile_file",
        "",
        optional(parse_absolute_path),
        "YAML or JSON file defining storage profiles as driver options per driver (added to the shipped tables).",
        "PATH",
    ),
    FlagSpec(
        "volumeRetention",
        "volume_retention",
        "keep",
        parse_volume_retention,
        "What happens to a node's external volumes when a scale-down takes its id away: keep (default) or "
        "delete (after its drain and stop, a volume task runs 'docker volume rm' on an agent with the storage "
        "attribute).",
        "keep|delete",
    ),
    FlagSpec(
        "constraints",
        "constraints",
        "",
        parse_constraints,
        "Placement constraints in Marathon's syntax, over hostname and agent attributes: a JSON list of "
        "[field, OPERATOR, value?] or field:OPERATOR[:value] separated by ';'. Operators: UNIQUE, CLUSTER, "
        "GROUP_BY, LIKE, UNLIKE, MAX_PER, IS. They add to the built-in rules.",
        "CONSTRAINTS",
    ),
    FlagSpec(
        "maxNodesPerAgent",
        "max_nodes_per_agent",
        "1",
        lambda t: parse_int_in(t, 1, what="a whole number of nodes"),
        "Nodes of this cluster one agent may run (each mounts two volumes, so N nodes are 2N mounts).",
        "N",
    ),
    *DAY2_FLAGS,
    FlagSpec(
        "zoneAttribute",
        "zone_attribute",
        "",
        lambda t: t.strip() or None,
        "Agent attribute that names the agent's zone; default: the zone of the offer's fault domain. Nodes "
        "spread over zones and Elasticsearch spreads replicas over them (node.attr.zone).",
        "ATTR",
    ),
    FlagSpec(
        "elasticsearchNofile",
        "nofile",
        str(ES_REQUIRED_NOFILE),
        lambda t: parse_int_in(t, 1, what="a number of files"),
        "Open-file limit of the node (Docker: ulimit nofile; Mesos containerizer: rlimit_info, applied by the "
        "agent's posix/rlimits isolator); Elasticsearch requires 65535 in production.",
        "N",
    ),
    FlagSpec(
        "elasticsearchUser",
        "elasticsearch_user",
        "elasticsearch",
        parse_user,
        "Agent user that runs Elasticsearch under the Mesos containerizer (the executor runs as root, prepares "
        "the node's directories for it and drops privileges).",
        "USER",
    ),
    FlagSpec(
        "allowGpuAgents",
        "allow_gpu_agents",
        "false",
        parse_bool,
        "Accept offers from agents with GPUs (declined by default to keep GPUs for GPU work).",
        "BOOL",
    ),
    FlagSpec(
        "localAgents",
        "local_agents",
        "4",
        lambda t: parse_int_in(t, 1, MAX_LOCAL_AGENTS, "a number of agents"),
        "Local mode only: number of simulated agents (one node each, each with its own loopback address "
        "127.0.0.<n> and port range).",
        "N",
    ),
    FlagSpec(
        "localWorkDir",
        "local_work_dir",
        "./.es-mesos-local",
        parse_local_work_dir,
        "Local mode only: work directory of the development cluster (sandboxes, volumes/<name>, and the "
        "default state, file://<dir>/state).",
        "DIR",
    ),
)

FLAGS_BY_NAME: dict[str, FlagSpec] = {spec.name: spec for spec in FLAGS}
