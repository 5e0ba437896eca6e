"""A demo Elasticsearch node (development tool, never used in production — **not Elasticsearch**).

A small Python process that is configured and behaves like an Elasticsearch 8 node as far as es-mesos and its
tests can tell, so that the executor, the development cluster and the end-to-end tests run without a JVM:
``python -m es_framework.dev.demo_es [-Ekey=value ...]`` reads ``$ES_PATH_CONF/elasticsearch.yml``, rejects
settings Elasticsearch 8 rejects, locks ``path.data`` (``node.lock``), persists its node id and
``cluster_uuid``, discovers peers through ``discovery.seed_hosts`` and the ``file`` seed provider
(``unicast_hosts.txt``), forms a cluster with ``cluster.initial_master_nodes``, elects a master, and stores
documents in shards spread over the data nodes, each shard copy in its node's ``path.data``. It announces
itself as a demo node in ``GET /`` (``tagline``) and in every log line.

Modules, from the bottom up: :mod:`.settings` (configuration), :mod:`.errors`, :mod:`.version`,
:mod:`.client` (calls between nodes), :mod:`.cluster_state` (the state the master publishes, election rule,
cluster settings), :mod:`.deciders` (version and shutdown deciders), :mod:`.routing` (pure allocation logic: where
copies go, what moves for an exclusion), :mod:`.shutdown` (the node shutdown API, pure),
:mod:`.health` and :mod:`.explain` (pure: ``/_cluster/health`` and ``/_cluster/allocation/explain`` from a
state), :mod:`.master_actions` (pure: what each master action changes), :mod:`.documents` (shard
store, queries, ``_bulk`` parsing), :mod:`.persistence` (what ``path.data`` holds), :mod:`.transport`
(discovery probes), :mod:`.fault_detection` (pure: when a silent peer counts as gone); the node in layers —
:mod:`.membership` (discovery, formation, election),
:mod:`.publication` (cluster state, master updates, publication), :mod:`.applier` (shard copies);
:mod:`.node_api` (what the layers above see of a node), :mod:`.actions` (what each request does, by area),
:mod:`.rest` (HTTP parsing and paths), and :mod:`.node` (the process: servers, threads, ``main``); security in
:mod:`.keystore`, :mod:`.ssl_config`, :mod:`.security`, :mod:`.channel`, :mod:`.tls_server` and
:mod:`.secure_transport`.

HTTP surface (the supported subset; anything else answers 400 ``illegal_argument_exception`` naming the path).
Every node accepts every request and forwards it to the nodes concerned; requests are checked for
Elasticsearch 8's ``compatible-with`` media types (7 and 8 accepted), answers carry ``X-elastic-product``,
and JSON answers honour ``filter_path``.

- ``GET|HEAD /`` — name, cluster name and uuid, version (``version.number``, ``minimum_wire_compatibility_version``,
  ``minimum_index_compatibility_version``), tagline. The version is ``ELASTICSEARCH_VERSION`` from the environment
  (7.17.x or 8.x), else ``8.x-demo`` (see :mod:`.version`); nodes of other versions join, are refused or never meet
  as Elasticsearch's join and handshake rules say, and a replica never goes to a node older than its primary's.
- ``PUT|GET|DELETE /_nodes/<node_id>/shutdown``, ``GET /_nodes/shutdown`` — node shutdowns (``restart``,
  ``remove``, ``replace``) kept in the cluster state, with statuses ``NOT_STARTED`` / ``IN_PROGRESS`` / ``STALLED``
  / ``COMPLETE``; ``remove``/``replace`` move every copy off the node, a ``restart`` node's copies wait
  ``allocation_delay`` for it (see :mod:`.shutdown`).
- ``POST|PUT /_security/user[/<username>]/_password`` — change the ``elastic`` user's password; every node then
  accepts the new one and no longer the bootstrap password (see :mod:`.actions.security_api`).
- ``GET /_nodes`` (per node ``version``), ``GET /_nodes/stats`` (per node ``indices.docs``, ``indices.store``,
  ``indices.shard_stats.total_count``).
- ``GET /_cluster/health[/<index>]`` — status green/yellow/red as Elasticsearch computes it (red: a primary is
  not active; yellow: a replica is not), ``number_of_nodes``, ``number_of_data_nodes``, ``active_shards``,
  ``active_primary_shards``, ``relocating_shards``, ``initializing_shards``, ``unassigned_shards``; parameters
  ``wait_for_status``, ``wait_for_nodes``, ``wait_for_no_relocating_shards``, ``wait_for_no_initializing_shards``,
  ``timeout`` (408 with ``timed_out: true`` when not met). 503 ``master_not_discovered_exception`` without a
  cluster or master.
- ``GET /_cluster/stats`` — Elasticsearch's cluster stats shape for what the demo node has: ``_nodes``,
  ``cluster_name``, ``cluster_uuid``, ``timestamp``, ``status``, ``indices.count``, ``indices.shards``
  (``total``, ``primaries``, ``replication``), ``indices.docs`` (``count``, ``deleted``), ``nodes.count``
  (``total``, ``coordinating_only`` and per role), ``nodes.versions`` (see :mod:`.actions.stats`).
- ``GET|PUT /_cluster/settings`` — ``persistent`` / ``transient`` (nested or dotted keys, ``null`` clears,
  ``flat_settings=true``); known settings: ``cluster.routing.allocation.exclude._name`` and ``._id`` (comma
  lists, ``*`` wildcards), ``cluster.routing.allocation.enable``, ``cluster.routing.rebalance.enable``,
  ``demo.relocation_delay`` (seconds of pretend copying per recovery; also a node setting).
- ``GET|POST /_cluster/allocation/explain`` — body ``{index, shard, primary}``, or none for the first
  unassigned copy (400 when there is none, like Elasticsearch); deciders ``same_shard``, ``filter``,
  ``throttling``, and ``no_valid_shard_copy`` for a primary whose data is on no live node.
- ``POST /_cluster/voting_config_exclusions?node_names=…`` (or ``node_ids``), ``DELETE
  /_cluster/voting_config_exclusions[?wait_for_removal=false]``; shown by ``GET /_cluster/state/metadata``
  under ``metadata.cluster_coordination.voting_config_exclusions``. ``GET /_cluster/state[/<metrics>]`` also
  has ``master_node``, ``nodes``, ``routing_table``.
- ``PUT /<index>`` (``settings.number_of_shards`` default 1, ``number_of_replicas`` default 1; waits for the
  primaries), ``DELETE /<index>``, ``GET|HEAD /<index>``, ``GET|PUT /<index>/_settings`` (only
  ``number_of_replicas`` can change). Indices are created on first write like Elasticsearch.
- ``PUT|POST /<index>/_doc/<id>`` (``op_type=create``), ``POST /<index>/_doc``, ``PUT|POST
  /<index>/_create/<id>`` (409 ``version_conflict_engine_exception`` if it exists), ``GET|HEAD|DELETE
  /<index>/_doc/<id>``.
- ``POST /_bulk``, ``POST /<index>/_bulk`` — NDJSON ``index`` / ``create`` / ``delete`` (no ``update``);
  answers ``{took, errors, items}`` as ``helpers.bulk`` of elasticsearch-py expects.
- ``GET|POST /_search``, ``/<index>/_search`` (``match_all``, ``term``, ``match``, ``ids``; ``q=field:value``;
  ``size``, ``from``; ``hits.total.value``; hits ordered by index and ``_id``, score 1.0) and ``/_count``,
  ``/<index>/_count``. ``<index>`` may be a comma list, ``*`` pattern or ``_all``. A shard without an active
  copy is reported in ``_shards.failed`` / ``failures`` (503 ``search_phase_execution_exception`` if all fail).
- ``POST|GET /_refresh``, ``/<index>/_refresh`` — accepted; documents are visible at once.
- ``GET /_cat/indices[/<index>]``, ``/_cat/shards[/<index>]``, ``/_cat/allocation``, ``/_cat/nodes``,
  ``/_cat/master``, ``/_cat/health`` — text (``v`` for headers,
  ``h`` for columns) or ``format=json``.
- Errors have Elasticsearch's shape ``{"error": {"root_cause", "type", "reason", …}, "status"}``: 404
  ``index_not_found_exception``, 400 ``mapper_parsing_exception`` (a field's value does not fit the type its
  first value gave it), 400 ``parsing_exception`` / ``x_content_parse_exception``, 400
  ``resource_already_exists_exception``, 400 ``invalid_index_name_exception``.

Security (``xpack.security.*``, read as Elasticsearch 8 reads it; see :mod:`.security`, :mod:`.ssl_config`,
:mod:`.channel`, :mod:`.secure_transport`, :mod:`.tls_server`, :mod:`.keystore`):

- ``xpack.security.enabled: true``: every HTTP request needs basic authentication as ``elastic`` with the
  bootstrap password (the keystore's ``bootstrap.password``, else ``ELASTIC_PASSWORD`` from the environment as
  the Docker image takes it); otherwise 401 ``security_exception`` with ``WWW-Authenticate: Basic
  realm="security" charset="UTF-8"``. Without the setting there is no security at all (as before; Elasticsearch 8
  would default to ``true`` and auto-configure TLS, which the demo does not).
- ``xpack.security.transport.ssl.*`` (PEM ``key``, ``certificate``, ``certificate_authorities``, or PKCS#12
  ``keystore.path`` / ``truststore.path`` with their ``secure_password`` in the keystore; ``verification_mode``
  ``full`` (default) / ``certificate`` / ``none``): mutual TLS on the transport port, which then carries all the
  traffic between nodes — the probes and the internal calls (the HTTP port stops serving ``/_demo/``) — so a
  node whose certificate is not signed by a trusted CA is refused on every path and never joins.
- ``xpack.security.http.ssl.*``: HTTPS on the HTTP port (no client certificates asked).
- Refusals as Elasticsearch's: security on without transport TLS fails the transport TLS bootstrap check (exit 78
  in production mode, a warning in development mode); an SSL setting without its ``.enabled``, missing or
  unreadable key, certificate or CA files, a key that is not the certificate's, both key forms, an unknown
  ``verification_mode``: exit 1 with Elasticsearch's message.
- ``bin/elasticsearch-keystore`` (written by :func:`write_launcher`) manages the secure settings with the real
  tool's commands; the file is the demo's own JSON format, not Elasticsearch's encrypted one.

What it is not: no scoring, analysis, aggregations, sorting, scroll, aliases, templates, mappings API; no users
but ``elastic`` (no realms, roles, API keys or tokens), no TLS client authentication on HTTP, no certificate
reloading; one mapping per shard copy instead of per index; elections are a simple rule (lowest master-eligible
name with a majority of the last voting configuration), not Elasticsearch's protocol; data is one JSON file
per shard copy, fine for test-sized data only.
"""

from __future__ import annotations

from es_framework.dev.demo_es.node import main, write_launcher
from es_framework.dev.demo_es.settings import SettingsError, load_settings
from es_framework.dev.demo_es.version import DEMO_VERSION, TAGLINE

__all__ = ["DEMO_VERSION", "TAGLINE", "SettingsError", "load_settings", "main", "write_launcher"]
