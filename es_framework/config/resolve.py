"""Building the :class:`~es_framework.config.record.Config` from the command line and the environment.

:func:`resolve_config` reads nothing but the given mapping and, for the flags that name files
(secrets, a local settings file, local mode's Elasticsearch), those files; it writes nothing.
Every invalid value is reported at once, each naming the flag, the value and what is allowed;
credentials in a URL never appear in a message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from es_framework.config.flags import FLAGS, FLAGS_BY_NAME
from es_framework.config.flags_security import check_security_flags
from es_framework.config.record import NODE_MEMORY_OVERHEAD_MB, Config, heap_mb_for
from es_framework.config.suggest import did_you_mean
from es_framework.config.urls import redact_credentials, redact_url
from es_framework.config.values import ENV_PREFIX, ES_REQUIRED_NOFILE, ConfigError, Ports, Secret

#: Below this heap (MB) Elasticsearch hardly holds a cluster state: warned about at start.
MIN_USEFUL_HEAP_MB = 512


def _read_secret(path: str, warnings: list[str], flag: str) -> Secret:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise ValueError("names a file that does not exist") from None
    except OSError as exc:
        raise ValueError(f"cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError("is not a UTF-8 text file") from None
    stripped = text.rstrip("\r\n")
    if stripped != text:
        warnings.append(f"--{flag}: {path} ends with a newline; it was stripped from the secret")
    if not stripped:
        raise ValueError("names an empty file")
    if "\n" in stripped or "\r" in stripped:
        # elasticsearch-keystore add --stdin keeps the first line only, and an HTTP header cannot
        # carry a line break: the secret would be cut short without a word.
        raise ValueError("holds more than one line; a secret is one line")
    return Secret(stripped)


def resolve_config(given: Mapping[str, str], env: Mapping[str, str] | None = None) -> Config:
    """Build the configuration from flags given on the command line (name -> text) and the environment.

    Raises :class:`ConfigError` listing every invalid flag; returns a :class:`Config` whose
    ``warnings`` list what is accepted but questionable.
    """
    env = {} if env is None else env
    unknown = sorted(set(given) - set(FLAGS_BY_NAME))
    if unknown:
        raise ConfigError([f"unknown flag --{name}" for name in unknown])

    problems: list[str] = []
    warnings: list[str] = []
    known_env = {spec.env_var for spec in FLAGS}
    warnings.extend(
        f"{name} is set but is not one of es-framework's variables, so it is ignored"
        + (did_you_mean(name, known_env, common_prefix=ENV_PREFIX) or " (a typo?)")
        for name in sorted(env)
        if name.startswith(ENV_PREFIX) and name not in known_env
    )
    values: dict[str, Any] = {}
    explicit: set[str] = set()

    for spec in FLAGS:
        if spec.name in given:
            text, source = given[spec.name], f"--{spec.name}"
        elif spec.env_var in env:
            text, source = env[spec.env_var], f"--{spec.name} (from {spec.env_var})"
        else:
            text, source = spec.default, f"--{spec.name} (default)"
        if spec.name in given or spec.env_var in env:
            explicit.add(spec.name)
        try:
            value = spec.parse(text)
            if spec.secret and value is not None:
                value = _read_secret(value, warnings, spec.name)
        except ValueError as exc:
            # Masked before repr(), which could escape credentials past a plain replace().
            shown = "****" if spec.secret else redact_url(text)
            problems.append(redact_credentials(f"{source}: {shown!r} {exc}", text))
            continue
        values[spec.name] = value

    check_between_flags(values, explicit, problems, warnings)

    if problems:
        raise ConfigError(problems)

    kwargs = {spec.attr: values[spec.name] for spec in FLAGS if spec.name != "zookeeperMesosUrl"}
    master = values["mesosMaster"]
    return Config(**kwargs, local_mode=master is not None and master.is_local, warnings=tuple(warnings))


def check_between_flags(values: dict[str, Any], explicit: set[str], problems: list[str], warnings: list[str]) -> None:
    """The rules between flags (``values``: flag name -> parsed value; a flag that did not parse is
    absent and its rules stay quiet; ``explicit``: the flags given rather than defaulted), appending
    to ``problems`` and ``warnings``: what the command line and ``PUT /v1/cluster/configuration``
    (:mod:`es_framework.core.config_change`) both check."""
    _cross_flag_rules(values, explicit, problems, warnings)
    _local_mode_rules(values, explicit, problems, warnings)
    check_security_flags(values, explicit, problems, warnings)


def _cross_flag_rules(values: dict[str, Any], explicit: set[str], problems: list[str], warnings: list[str]) -> None:
    """The rules between flags, checked only where both sides parsed (otherwise the message would
    be noise). Folds ``--zookeeperMesosUrl`` into ``values["mesosMaster"]``."""
    master = values.get("mesosMaster")
    zk_master = values.get("zookeeperMesosUrl")
    if master is not None and zk_master is not None and master.url != zk_master.url:
        problems.append(
            f"--mesosMaster {master.url!r} and --zookeeperMesosUrl {zk_master.url!r} disagree; give one of them"
        )
    values["mesosMaster"] = master or zk_master
    chosen = values["mesosMaster"]
    if chosen is not None and chosen.kind == "http" and chosen.url.startswith("https://"):
        # pymesos opens a plain socket to host:port (pymesos/process.py Connection) and plain
        # HTTPConnections for calls: an https:// master would get the framework's calls unencrypted.
        problems.append(
            f"--mesosMaster {chosen.url!r}: the scheduler's Mesos client (pymesos) speaks plain HTTP only, so it "
            "cannot reach a master over HTTPS yet; give the master's http:// address or its zk:// URL"
        )
    if (
        values.get("frameworkSecretPath") is not None
        and "frameworkPrincipal" in values
        and values["frameworkPrincipal"] is None
    ):
        problems.append("--frameworkSecretPath is given without --frameworkPrincipal; Mesos needs both")
    password_given = values.get("elasticsearchPasswordFile") is not None
    certificates_given = values.get("elasticsearchCertificatesUrl") is not None
    both_parsed = "elasticsearchPasswordFile" in values and "elasticsearchCertificatesUrl" in values
    if both_parsed and password_given != certificates_given:
        given_flag, missing_flag = (
            ("elasticsearchPasswordFile", "elasticsearchCertificatesUrl")
            if password_given
            else ("elasticsearchCertificatesUrl", "elasticsearchPasswordFile")
        )
        problems.append(
            f"--{given_flag} is given without --{missing_flag}: Elasticsearch security needs both (a cluster of "
            "several nodes needs transport TLS, and its users need the elastic password)"
        )
    if (
        values.get("elasticsearchCertificatesPasswordFile") is not None
        and "elasticsearchCertificatesUrl" in values
        and values["elasticsearchCertificatesUrl"] is None
    ):
        problems.append(
            "--elasticsearchCertificatesPasswordFile is given without --elasticsearchCertificatesUrl: it is the "
            "password of that certificate bundle"
        )
    nodes = values.get("elasticsearchNodes")
    if isinstance(nodes, int) and nodes % 2 == 0:
        warnings.append(
            f"--elasticsearchNodes {nodes}: an even number of nodes is allowed but not recommended "
            "(it adds no fault tolerance over one node fewer)"
        )
    driver = values.get("externalVolumeDriver")
    if driver is None and "externalVolumeDriver" in values:
        for name in (
            "externalVolumeOptions",
            "externalVolumeConfigOptions",
            "externalVolumeMethod",
            "externalVolumeAttribute",
            "volumeProfile",
            "volumeProfileFile",
            "volumeRetention",
        ):
            if name in explicit and values.get(name):
                problems.append(f"--{name} needs --externalVolumeDriver")
        # Nodes on one agent would share its data directory (normal mode keeps data at --dataDir).
        if int(values.get("maxNodesPerAgent") or 1) > 1:
            problems.append(
                "--maxNodesPerAgent above 1 needs --externalVolumeDriver: in normal mode a node's data lives in "
                "the agent's --dataDir, which two nodes on one agent would share"
            )
    if (
        values.get("frameworkUseDocker") is True
        and "externalVolumeMethod" in explicit
        and "externalVolumeMethod" in values
    ):
        problems.append(
            "--externalVolumeMethod applies to the Mesos containerizer only (--frameworkUseDocker false); "
            "with Docker the volumes always go through docker parameters"
        )
    if (
        values.get("frameworkUseDocker") is False
        and "elasticsearchBinaryUrl" in values
        and values["elasticsearchBinaryUrl"] is None
    ):
        problems.append(
            "--frameworkUseDocker false needs --elasticsearchBinaryUrl (the Mesos containerizer has no image)"
        )
    if driver is not None and "elasticsearchDisk" in explicit:
        warnings.append("--elasticsearchDisk is ignored with --externalVolumeDriver: the volume driver manages storage")
    if values.get("insecureApi") is True and values.get("apiTokenFile") is not None:
        warnings.append("--insecureApi true is ignored: --apiTokenFile is given, so the API needs its token")
    nofile = values.get("elasticsearchNofile")
    if isinstance(nofile, int) and nofile < ES_REQUIRED_NOFILE:
        warnings.append(
            f"--elasticsearchNofile {nofile} is below {ES_REQUIRED_NOFILE}: Elasticsearch's bootstrap check fails "
            "in production mode (fine for development machines that cap the limit)"
        )
    mem = values.get("elasticsearchRam")
    if isinstance(mem, float) and heap_mb_for(mem) < MIN_USEFUL_HEAP_MB:
        warnings.append(
            f"--elasticsearchRam {mem:g} MB gives a heap of {heap_mb_for(mem)} MB (half of what is left after "
            f"{NODE_MEMORY_OVERHEAD_MB} MB for the executor and Elasticsearch's launcher); Elasticsearch needs "
            f"{MIN_USEFUL_HEAP_MB} MB or more: give it {2 * MIN_USEFUL_HEAP_MB + NODE_MEMORY_OVERHEAD_MB} MB or more"
        )


def _local_mode_rules(values: Mapping[str, Any], explicit: set[str], problems: list[str], warnings: list[str]) -> None:
    master = values.get("mesosMaster")
    if master is None or not master.is_local:
        warnings.extend(
            f"--{name} applies to local mode only (--mesosMaster local); it is ignored"
            for name in ("localAgents", "localWorkDir")
            if name in explicit and name in values
        )
        return
    ports = values.get("elasticsearchPorts")
    if isinstance(ports, Ports) and ports.fixed:
        problems.append(
            "--elasticsearchPorts must be empty in local mode: every node runs on this machine, so each takes its "
            "ports from its agent's own range"
        )
    agents, nodes = values.get("localAgents"), values.get("elasticsearchNodes")
    if isinstance(agents, int) and isinstance(nodes, int) and agents < nodes:
        warnings.append(
            f"--localAgents {agents} is fewer than --elasticsearchNodes {nodes}: one node runs per agent, so only "
            f"{agents} will run"
        )
    binary = values.get("elasticsearchBinaryUrl")
    if isinstance(binary, str):
        shown = redact_url(binary)
        path = binary.removeprefix("file://") if binary.startswith("file://") else binary
        if "://" in path or not path.startswith("/"):
            problems.append(
                f"--elasticsearchBinaryUrl {shown!r}: local mode runs Elasticsearch from this machine: give an "
                "absolute path (or file:// URL) of an Elasticsearch directory with bin/elasticsearch or of its tarball"
            )
        elif not (os.path.isfile(os.path.join(path, "bin", "elasticsearch")) or os.path.isfile(path)):
            problems.append(
                f"--elasticsearchBinaryUrl {shown!r}: neither a directory with bin/elasticsearch nor a tarball"
            )
