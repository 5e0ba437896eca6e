"""Executors as processes whose demo node is the Elasticsearch version the task's image names: a
stand-in for an image per Elasticsearch version (``example/elasticsearch:7.17.24``,
``...:8.15.1``), so that a rollout into another image upgrades the nodes.

An executor of a real image finds its Elasticsearch's version in the image
(``lib/elasticsearch-<version>.jar``, :func:`es_framework.executor.process.elasticsearch_version`); the
process backend runs no image, so it sets ``ELASTICSEARCH_VERSION`` for the executor from the image's
tag, as an agent operator may (``es_framework.contract.ENV_VERSION``: never the scheduler). The
executor hands its environment to the demo node, which plays that version
(:mod:`es_framework.dev.demo_es.version`) and reports it in ``GET /``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from es_framework.config.versions import image_version
from es_framework.contract import ENV_VERSION
from es_framework.dev.devcluster import ProcessExecutorBackend
from es_framework.dev.devcluster.processes import ProcessRecord


def image_of(task_info: Mapping[str, Any]) -> str | None:
    docker = ((task_info.get("executor") or {}).get("container") or {}).get("docker") or {}
    image = docker.get("image")
    return str(image) if image else None


class ImageVersionBackend(ProcessExecutorBackend):
    """:class:`ProcessExecutorBackend` whose executors see ``ELASTICSEARCH_VERSION`` = their image's tag."""

    def _command(
        self, record: ProcessRecord, executor: Mapping[str, Any], grace: float | None
    ) -> tuple[list[str], dict[str, str]]:
        argv, env = super()._command(record, executor, grace)
        image = image_of(record.task_info)
        version = image_version(image) if image else None
        if version is not None:
            env[ENV_VERSION] = str(version)
        return argv, env
