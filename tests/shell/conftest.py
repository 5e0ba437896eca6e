"""Fixtures of the ZooKeeper state-store tests: a store factory on the session's ZooKeeper, with a
framework and cluster name of each test's own, and a raw kazoo client to look at the znodes."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from kazoo.client import KazooClient

from es_framework.dev.zookeeper import ZooKeeperServer
from es_framework.shell.state_store import ZooKeeperStateStore, open_state_store

#: Short enough for fast tests; the server allows 1..10 s (tickTime 500 ms).
SESSION_MS = 2000

StoreFactory = Callable[..., ZooKeeperStateStore]


@pytest.fixture
def names() -> tuple[str, str]:
    """A framework and cluster name of this test's own, so tests never see each other's znodes."""
    return f"fw-{uuid.uuid4().hex[:8]}", "cluster"


@pytest.fixture
def make_store(zookeeper: ZooKeeperServer, names: tuple[str, str]) -> Iterator[StoreFactory]:
    stores: list[ZooKeeperStateStore] = []

    def make(url: str | None = None, **kwargs: object) -> ZooKeeperStateStore:
        store = open_state_store(
            url or zookeeper.url,
            framework_name=names[0],
            cluster_name=names[1],
            session_timeout_ms=int(str(kwargs.pop("session_timeout_ms", SESSION_MS))),
            **kwargs,  # type: ignore[arg-type]
        )
        assert isinstance(store, ZooKeeperStateStore)
        store.start(timeout=10)
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


@pytest.fixture
def raw(zookeeper: ZooKeeperServer) -> Iterator[KazooClient]:
    client = KazooClient(zookeeper.hosts)
    client.start(10)
    yield client
    client.stop()
    client.close()
