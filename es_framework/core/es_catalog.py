"""Which node settings Elasticsearch 7.x and 8.x accept, as data.

Elasticsearch 8 refuses to start with a setting it does not know, or one that was removed; 7.x
still accepts the settings 8 removed, with a deprecation warning. es-mesos checks every setting it
writes into ``elasticsearch.yml`` and every setting a user adds (``--elasticsearchSettingsLocation``)
against these catalogs, so that a wrong setting is reported when the scheduler starts rather than
by a node that exits at start.

A catalog cannot list every setting (plugins register their own, and the lists grow with every
minor release), so a setting that is neither known nor removed is only *warned* about. Errors are
reserved for what Elasticsearch certainly refuses: removed settings, and index-level settings in
the node configuration. Supported: 7.x from 7.9 (the first with ``node.roles``) and 8.x.

What 8.0 removed is Elastic's list in the 8.0 migration guide ("Cluster and node setting changes",
``docs/reference/migration/migrate_8_0/cluster-node-setting-changes.asciidoc``, and "Monitoring
changes", ``.../migrate_8_0/monitoring.asciidoc``, in elastic/elasticsearch), each of which says
"Specifying this setting in elasticsearch.yml will result in an error on startup". What a later
*minor* added is :mod:`es_framework.core.es_versions`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from es_framework.config import versions

#: One definition (:mod:`es_framework.config.versions`), re-exported for the catalog's users.
SUPPORTED_MAJORS = versions.SUPPORTED_MAJORS


@lru_cache(maxsize=256)
def _pattern(pattern: str) -> re.Pattern[str]:
    parts = (r"[^.]+" if part == "*" else re.escape(part) for part in pattern.split("."))
    return re.compile(r"\.".join(parts))


def pattern_matches(pattern: str, key: str) -> bool:
    """Whether ``key`` is ``pattern``: an exact name, a prefix ending in ``.`` (every setting under it),
    ``*`` standing for one name segment (an exporter's or a profile's name), or both."""
    if pattern.endswith("."):
        head = _pattern(pattern[:-1])
        match = head.match(key)
        return match is not None and key[match.end() : match.end() + 1] == "." and len(key) > match.end() + 1
    return _pattern(pattern).fullmatch(key) is not None


@dataclass(frozen=True)
class Removed:
    """A setting (or every setting under a prefix ending in ``.``) that Elasticsearch dropped."""

    key: str
    replacement: str
    removed_in: int
    #: The major in which it still works but is deprecated (None: not accepted by any supported major).
    deprecated_in: int | None = None

    def matches(self, key: str) -> bool:
        return pattern_matches(self.key, key)


@dataclass(frozen=True)
class Catalog:
    """The settings one major accepts: exact names and prefixes (ending in ``.``)."""

    major: int
    settings: frozenset[str]
    prefixes: tuple[str, ...]

    def knows(self, key: str) -> bool:
        return key in self.settings or key.startswith(self.prefixes)


#: Settings es-mesos writes itself (see es_framework.core.es_settings); valid in 7.9+ and 8.
GENERATED_SETTINGS = frozenset(
    {
        "cluster.name",
        "node.name",
        "node.roles",
        "network.host",
        "network.publish_host",
        "http.port",
        "transport.port",
        "path.data",
        "discovery.seed_providers",
        "cluster.initial_master_nodes",
        "xpack.security.enabled",
        "xpack.security.transport.ssl.enabled",
        "xpack.security.transport.ssl.verification_mode",
        "xpack.security.transport.ssl.keystore.path",
        "xpack.security.transport.ssl.truststore.path",
        "xpack.security.http.ssl.enabled",
    }
)

#: Node settings people commonly add, valid in both majors.
COMMON_USER_SETTINGS = frozenset(
    {
        "network.bind_host",
        "http.host",
        "http.bind_host",
        "http.publish_host",
        "http.publish_port",
        "http.max_content_length",
        "http.compression",
        "transport.host",
        "transport.bind_host",
        "transport.publish_host",
        "transport.publish_port",
        "transport.compress",
        "path.logs",
        "path.repo",
        "path.home",
        "discovery.seed_hosts",
        "discovery.type",
        "bootstrap.memory_lock",
        # Elasticsearch reference, "Virtual memory" (index modules: store): false keeps every store off
        # mmap, and the vm.max_map_count bootstrap check then does not run (MaxMapCountCheck).
        "node.store.allow_mmap",
        "action.destructive_requires_name",
        "action.auto_create_index",
        "cluster.max_shards_per_node",
        "search.max_buckets",
        "node.processors",
        "ingest.geoip.downloader.enabled",
        "transport.ping_schedule",
        "gateway.recover_after_data_nodes",
        "gateway.expected_data_nodes",
        "gateway.recover_after_time",
    }
)

#: Families of settings valid in both majors (each ends in ``.``).
COMMON_PREFIXES = (
    "node.attr.",
    "xpack.security.",
    "xpack.ml.",
    "xpack.monitoring.",
    "xpack.watcher.",
    "xpack.license.",
    "cluster.routing.",
    "cluster.remote.",
    "cluster.info.",
    "indices.",
    "thread_pool.",
    "logger.",
    "http.cors.",
    "network.tcp.",
    "script.",
    "repositories.",
    "reindex.remote.",
    "discovery.seed_resolver.",
)

#: What 8 removed (deprecated in 7, or dropped in 7 already) and what replaced it.
REMOVED = (
    Removed("discovery.zen.ping.unicast.hosts", "discovery.seed_hosts", 8, deprecated_in=7),
    Removed("discovery.zen.hosts_provider", "discovery.seed_providers", 8, deprecated_in=7),
    Removed("discovery.zen.minimum_master_nodes", "nothing: Elasticsearch 7+ chooses its voting masters", 8, 7),
    Removed("discovery.zen.", "discovery.* and cluster.initial_master_nodes", 8, deprecated_in=7),
    Removed("node.master", "node.roles", 8, deprecated_in=7),
    Removed("node.data", "node.roles", 8, deprecated_in=7),
    Removed("node.ingest", "node.roles", 8, deprecated_in=7),
    Removed("node.ml", "node.roles", 8, deprecated_in=7),
    Removed("node.transform", "node.roles", 8, deprecated_in=7),
    Removed("node.voting_only", "node.roles", 8, deprecated_in=7),
    Removed("node.remote_cluster_client", "node.roles", 8, deprecated_in=7),
    Removed("node.max_local_storage_nodes", "one node per data path", 8, deprecated_in=7),
    Removed("transport.tcp.port", "transport.port", 8, deprecated_in=7),
    Removed("transport.tcp.compress", "transport.compress", 8, deprecated_in=7),
    Removed("gateway.recover_after_nodes", "gateway.recover_after_data_nodes", 8, deprecated_in=7),
    Removed("gateway.expected_nodes", "gateway.expected_data_nodes", 8, deprecated_in=7),
    Removed("gateway.recover_after_master_nodes", "gateway.recover_after_data_nodes", 8, deprecated_in=7),
    Removed("gateway.expected_master_nodes", "gateway.expected_data_nodes", 8, deprecated_in=7),
    Removed("bootstrap.system_call_filter", "nothing: the system call filter is always on", 8, deprecated_in=7),
    # The rest of the 8.0 migration guide's list (see the module docstring).
    Removed("xpack.monitoring.exporters.*.use_ingest", "nothing: the monitoring pipelines had no function", 8, 7),
    Removed(
        "xpack.monitoring.exporters.*.index.pipeline.master_timeout",
        "nothing: the monitoring pipelines are gone",
        8,
        deprecated_in=7,
    ),
    Removed(
        "xpack.monitoring.exporters.*.index.template.create_legacy_templates",
        "nothing: the legacy monitoring templates are gone",
        8,
        deprecated_in=7,
    ),
    Removed(
        "xpack.monitoring.exporters.*.auth.password",
        "xpack.monitoring.exporters.<name>.auth.secure_password (in the keystore)",
        8,
        deprecated_in=7,
    ),
    *(
        Removed(f"xpack.{feature}.enabled", "nothing: the basic-license feature is always on", 8, deprecated_in=7)
        for feature in ("enrich", "flattened", "ilm", "monitoring", "rollup", "slm", "sql", "transform", "vectors")
    ),
    Removed("cluster.routing.allocation.disk.include_relocations", "nothing: relocations always count", 8, 7),
    Removed("cluster.join.timeout", "nothing: join attempts no longer time out", 8, deprecated_in=7),
    Removed("http.content_type.required", "nothing: requests must always name their content type", 8, 7),
    Removed("http.tcp_no_delay", "http.tcp.no_delay", 8, deprecated_in=7),
    Removed("network.tcp.connect_timeout", "transport.connect_timeout", 8, deprecated_in=7),
    Removed("xpack.security.authc.accept_default_password", "nothing: it has had no effect since 6.0", 8, 7),
    Removed("xpack.security.authz.store.roles.index.cache.max_size", "nothing (redundant since 5.2)", 8, 7),
    Removed("xpack.security.authz.store.roles.index.cache.ttl", "nothing (redundant since 5.2)", 8, 7),
    Removed("transport.profiles.*.xpack.security.type", "nothing: the transport client is gone", 8, 7),
    Removed("pidfile", "node.pidfile", 8, deprecated_in=7),
    Removed("processors", "node.processors", 8, deprecated_in=7),
    Removed("cluster.remote.connect", "node.roles (remote_cluster_client)", 8, deprecated_in=7),
    Removed("node.local_storage", "nothing: every node needs local storage", 8, deprecated_in=7),
    Removed("cluster.routing.allocation.include._tier", "index.routing.allocation.include._tier_preference", 8, 7),
    Removed("cluster.routing.allocation.exclude._tier", "index.routing.allocation.include._tier_preference", 8, 7),
    Removed("cluster.routing.allocation.require._tier", "index.routing.allocation.include._tier_preference", 8, 7),
    Removed("gateway.auto_import_dangling_indices", "the dangling indices API", 8, deprecated_in=7),
    Removed("transport.tcp.connect_timeout", "transport.connect_timeout", 8, deprecated_in=7),
    Removed("transport.tcp_no_delay", "transport.tcp.no_delay", 8, deprecated_in=7),
    *(
        Removed(f"transport.profiles.*.{old}", f"transport.profiles.<name>.tcp.{new}", 8, deprecated_in=7)
        for old, new in (
            ("tcp_no_delay", "no_delay"),
            ("tcp_keep_alive", "keep_alive"),
            ("reuse_address", "reuse_address"),
            ("send_buffer_size", "send_buffer_size"),
            ("receive_buffer_size", "receive_buffer_size"),
        )
    ),
    Removed("repositories.fs.compress", "the repository's own compress setting", 8, deprecated_in=7),
    # Prefixes last: an exact name above wins over its family.
    Removed("search.remote.", "cluster.remote.*", 8, deprecated_in=7),
    Removed("thread_pool.listener.", "nothing: the listener thread pool is gone", 8, deprecated_in=7),
    Removed("http.enabled", "nothing: HTTP is always on (removed in 7.0)", 7),
    Removed("path.conf", "the ES_PATH_CONF environment variable", 7),
    Removed("path.scripts", "stored scripts", 7),
)

CATALOGS = {
    7: Catalog(7, GENERATED_SETTINGS | COMMON_USER_SETTINGS, COMMON_PREFIXES),
    8: Catalog(
        8,
        GENERATED_SETTINGS | COMMON_USER_SETTINGS | {"cluster.deprecation_indexing.enabled"},
        (*COMMON_PREFIXES, "health."),
    ),
}


def removal(key: str) -> Removed | None:
    """The removal entry for ``key``, most specific first (exact names are listed before prefixes)."""
    return next((entry for entry in REMOVED if entry.matches(key)), None)


@dataclass(frozen=True)
class Verdict:
    """What one major makes of one setting: ``error`` (refused at start), ``warning``, or neither."""

    error: str | None = None
    warning: str | None = None
    #: Neither known nor removed: probably a typo or a plugin's setting.
    unknown: bool = False


def check_setting(key: str, major: int) -> Verdict:
    """Whether Elasticsearch ``major`` accepts the node setting ``key`` (and why not)."""
    if major not in CATALOGS:
        raise ValueError(f"unsupported Elasticsearch major version {major}; supported: {SUPPORTED_MAJORS}")
    if key.startswith("index."):
        return Verdict(
            error=f"[{key}] is an index-level setting: Elasticsearch refuses index settings in the node "
            "configuration; use an index template or the index settings API"
        )
    entry = removal(key)
    if entry is not None:
        if major >= entry.removed_in:
            return Verdict(error=f"[{key}] was removed in Elasticsearch {entry.removed_in}; use {entry.replacement}")
        if entry.deprecated_in is not None and major >= entry.deprecated_in:
            return Verdict(
                warning=f"[{key}] is deprecated in Elasticsearch {major} and removed in {entry.removed_in}; "
                f"use {entry.replacement}"
            )
    if CATALOGS[major].knows(key):
        return Verdict()
    return Verdict(
        warning=f"[{key}] is not in es-mesos' catalog of Elasticsearch {major} settings; Elasticsearch refuses "
        "to start with a setting it does not know (unless a plugin registers it)",
        unknown=True,
    )
