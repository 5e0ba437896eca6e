"""The scheduler's persistent state: one versioned JSON document per cluster, and the leader lock.

The store knows nothing about nodes: it keeps an opaque JSON object (``dict``) and a version, and
offers three operations, all atomic:

- :meth:`StateStore.read` → :class:`StoredState` ``(document, version)``, or ``None`` before the
  first write;
- :meth:`StateStore.create` → writes the first document only if there is none (version 0);
- :meth:`StateStore.write` → compare-and-set: succeeds only if the stored version is still the
  one the caller read, and returns the new version. Otherwise :class:`StateConflictError`: re-read,
  re-apply the change, write again.

and a **leader lock**, so that one scheduler acts at a time:

- :meth:`StateStore.acquire_leadership` / :meth:`StateStore.release_leadership`;
- :attr:`StateStore.may_act`, a :class:`threading.Event` that is set exactly while this store
  holds the lock over a working connection, and the optional ``on_leadership_change`` callback
  with the :class:`Leadership` status. The callback runs on kazoo's connection thread for session
  events: it must return quickly and must not call the store or ZooKeeper (set a flag, put an
  item on a queue).

**The caller's contract.** Launch, kill or free nothing (no task launch, no volume or node id
released, no state write based on an old read) unless ``may_act`` is set. When it is cleared
(:attr:`Leadership.SUSPENDED`: the ZooKeeper connection is in doubt; :attr:`Leadership.LOST`: the
session expired, the lock is gone and another scheduler may already act), stop at once. After
``SUSPENDED`` → ``LEADER`` (same session, reconnected) and after re-acquiring the lock following
``LOST``, **re-read the state** before acting again: another scheduler may have written it. While
this store holds the lock, its ZooKeeper writes are *fenced*: each write is one transaction that
also checks that our lock znode still exists, so a scheduler whose session expired cannot
overwrite its successor's state (:class:`LeadershipLostError`).

Two implementations, chosen by :func:`open_state_store` from the state URL (parsed by
:func:`es_framework.config.urls.parse_state_url`, the one URL grammar):

``zk://[user:password@]host:port[,host:port...][/chroot]`` → :class:`ZooKeeperStateStore`
    (:mod:`~es_framework.shell.state_store.zookeeper`): the document kept as a small cluster znode
    and one znode per node id (:mod:`~es_framework.shell.state_store.zookeeper_layout`), a write
    sending only what changed.
``file:///absolute/directory`` → :class:`FileStateStore`, for local mode only (one machine)
    (:mod:`~es_framework.shell.state_store.file`).

What both share (errors, the document, the protocol, the leadership status) is in
:mod:`~es_framework.shell.state_store.base`.
"""

from __future__ import annotations

from es_framework.config.urls import (
    FileUrl,
    StateUrl,
    StateUrlError,
    ZooKeeperUrl,
    parse_state_url,
    state_url_for_mesos_master,
)
from es_framework.shell.state_store.base import (
    MAX_STATE_BYTES,
    SCHEMA,
    Leadership,
    LeadershipCallback,
    LeadershipLostError,
    StateConflictError,
    StateCorruptError,
    StateStore,
    StateStoreError,
    StateUnavailableError,
    StoredState,
)
from es_framework.shell.state_store.factory import open_state_store
from es_framework.shell.state_store.file import FileStateStore
from es_framework.shell.state_store.zookeeper import DEFAULT_SESSION_TIMEOUT_MS, ZooKeeperStateStore
from es_framework.shell.state_store.zookeeper_layout import StateTooLargeError

__all__ = [
    "DEFAULT_SESSION_TIMEOUT_MS",
    "MAX_STATE_BYTES",
    "SCHEMA",
    "FileStateStore",
    "FileUrl",
    "Leadership",
    "LeadershipCallback",
    "LeadershipLostError",
    "StateConflictError",
    "StateCorruptError",
    "StateStore",
    "StateStoreError",
    "StateTooLargeError",
    "StateUnavailableError",
    "StateUrl",
    "StateUrlError",
    "StoredState",
    "ZooKeeperStateStore",
    "ZooKeeperUrl",
    "open_state_store",
    "parse_state_url",
    "state_url_for_mesos_master",
]
