"""The store for a state URL: :func:`open_state_store`."""

from __future__ import annotations

from es_framework.config.urls import StateUrl, ZooKeeperUrl, parse_state_url
from es_framework.shell.state_store.base import LeadershipCallback
from es_framework.shell.state_store.file import FileStateStore
from es_framework.shell.state_store.zookeeper import DEFAULT_SESSION_TIMEOUT_MS, ZooKeeperStateStore


def open_state_store(
    url: str | StateUrl,
    *,
    framework_name: str,
    cluster_name: str,
    session_timeout_ms: int = DEFAULT_SESSION_TIMEOUT_MS,
    identifier: str | None = None,
    on_leadership_change: LeadershipCallback | None = None,
) -> ZooKeeperStateStore | FileStateStore:
    """The store for ``url`` (not started yet): ``zk://`` → :class:`ZooKeeperStateStore`,
    ``file://`` → :class:`FileStateStore`. A text URL is parsed with
    :func:`es_framework.config.urls.parse_state_url`. ``session_timeout_ms`` is ``--zookeeperMesosTimeout``."""
    parsed = parse_state_url(url) if isinstance(url, str) else url
    if isinstance(parsed, ZooKeeperUrl):
        return ZooKeeperStateStore(
            parsed,
            framework_name,
            cluster_name,
            session_timeout_ms=session_timeout_ms,
            identifier=identifier,
            on_leadership_change=on_leadership_change,
        )
    return FileStateStore(
        parsed.path,
        framework_name,
        cluster_name,
        identifier=identifier,
        on_leadership_change=on_leadership_change,
    )
