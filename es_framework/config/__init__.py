"""The scheduler's configuration: one immutable, typed object built from flags and environment.

Flag names and meanings follow the older Java framework (mesos/elasticsearch), so existing
Marathon apps keep working. Every flag can also come from ``ES_MESOS_<FLAG_IN_UPPER_SNAKE>``
(``--elasticsearchCpu`` ← ``ES_MESOS_ELASTICSEARCH_CPU``); a flag on the command line wins. Only
that prefix is read, so Marathon's own ``PORT0``, ``HOST`` … never leak in by accident.

The package, below the functional core (it imports nothing of ``es_framework.shell``):

- :mod:`~es_framework.config.values`: constants and small value types (``Secret``, ``MesosMaster``, ``Ports``);
- :mod:`~es_framework.config.urls`: the one ``zk://``/``file://``/``http(s)://`` grammar and its per-use rules;
- :mod:`~es_framework.config.parsers`: the per-flag value parsers;
- :mod:`~es_framework.config.flags`: the table of every flag (:data:`FLAGS`);
- :mod:`~es_framework.config.record`: the :class:`Config` record;
- :mod:`~es_framework.config.resolve`: :func:`resolve_config`, the environment and the cross-flag rules;
- :mod:`~es_framework.config.suggest`: the known name a misspelt flag or variable most likely meant.
"""

from __future__ import annotations

from es_framework.config.flags import FLAGS, FLAGS_BY_NAME, FlagSpec
from es_framework.config.parsers import parse_bool, parse_key_values, parse_labels, parse_ports
from es_framework.config.record import Config
from es_framework.config.resolve import resolve_config
from es_framework.config.urls import (
    FileUrl,
    StateUrl,
    StateUrlError,
    UrlError,
    ZooKeeperUrl,
    parse_mesos_master,
    parse_mesos_zk_url,
    parse_state_url,
    redact_url,
    state_url_for_mesos_master,
)
from es_framework.config.values import (
    DEFAULT_EXECUTOR_IMAGE,
    DEFAULT_FAILOVER_TIMEOUT_S,
    DEFAULT_MASTER_NODES,
    ENV_PREFIX,
    ES_REQUIRED_NOFILE,
    LOCAL_MASTER,
    LOCAL_MODE_WARNING,
    MAX_LOCAL_AGENTS,
    RESERVED_LABEL_PREFIX,
    SECURITY_OFF_WARNING,
    ConfigError,
    MasterKind,
    MesosMaster,
    Ports,
    Secret,
    VolumeMethod,
)

__all__ = [
    "DEFAULT_EXECUTOR_IMAGE",
    "DEFAULT_FAILOVER_TIMEOUT_S",
    "DEFAULT_MASTER_NODES",
    "ENV_PREFIX",
    "ES_REQUIRED_NOFILE",
    "FLAGS",
    "FLAGS_BY_NAME",
    "LOCAL_MASTER",
    "LOCAL_MODE_WARNING",
    "MAX_LOCAL_AGENTS",
    "RESERVED_LABEL_PREFIX",
    "SECURITY_OFF_WARNING",
    "Config",
    "ConfigError",
    "FileUrl",
    "FlagSpec",
    "MasterKind",
    "MesosMaster",
    "Ports",
    "Secret",
    "StateUrl",
    "StateUrlError",
    "UrlError",
    "VolumeMethod",
    "ZooKeeperUrl",
    "parse_bool",
    "parse_key_values",
    "parse_labels",
    "parse_mesos_master",
    "parse_mesos_zk_url",
    "parse_ports",
    "parse_state_url",
    "redact_url",
    "resolve_config",
    "state_url_for_mesos_master",
]
