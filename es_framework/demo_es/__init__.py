"""A demo Elasticsearch node (development tool — **not Elasticsearch**).

A small Python process that is configured and packaged like an Elasticsearch 8 node as far as
configuration goes, so the executor and the development cluster can be exercised without a JVM:
``python -m es_framework.demo_es [-Ekey=value ...]`` reads ``$ES_PATH_CONF/elasticsearch.yml``,
rejects settings Elasticsearch 8 rejects, locks ``path.data`` (``node.lock``), persists a
``cluster_uuid``, discovers peers through ``discovery.seed_hosts`` and the ``file`` seed provider
(``unicast_hosts.txt``), and answers ``GET /``, ``GET /_cluster/health`` and ``GET /_nodes`` with
Elasticsearch's shapes and media-type checks. It stores no documents and has no search. It announces
itself as a demo node in ``GET /`` (``tagline``) and in every log line.
"""

from __future__ import annotations

from es_framework.demo_es.node import DEMO_VERSION, TAGLINE, main, write_launcher
from es_framework.demo_es.settings import SettingsError, load_settings

__all__ = ["DEMO_VERSION", "TAGLINE", "SettingsError", "load_settings", "main", "write_launcher"]
