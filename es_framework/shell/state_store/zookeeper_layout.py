"""The state's znodes: one small cluster znode and one znode per node id (layout 2).

Under the store's root ``[/chroot]/<frameworkName>/<clusterName>``:

``cluster``
    ``{"layout": 2, "state": {…the document without its per-node fields…}, "split": ["nodes", …],
    "nodes": {"count": n, "digest": "…"}, "version_base": b}``. Its znode version + ``version_base``
    is the state's version (the compare-and-set token the engine holds). Every write sets it, even
    when only node znodes changed, so its version orders all writes.
``nodes/<id>``
    One per node id: that id's values in every per-node field
    (:data:`es_framework.core.state_layout.PER_NODE_FIELDS`), e.g. ``{"nodes": {"node_id": 3, …},
    "volumes": {…}}``.
``state``
    Layout 1, the single document of release 0.1.0: ``{"schema": 1, "state": {…}}``. After the
    migration it is a tombstone ``{"schema": 2, "state": {}, "moved_to": "…/cluster"}``: a 0.1.0
    scheduler started by mistake refuses it ("written by a newer es-mesos") instead of starting a new
    cluster, and its compare-and-set on the old version fails.

``nodes``
    The parent of the node znodes. Its data is empty; its version counts the steps of writes too
    large for one request (below), so that a write knows whether node znodes changed under it.

**A write** sends one multi request: the leader-lock check (fencing), a check of the ``nodes``
znode's version, a create, set or delete of each node znode whose entry changed (each with the
znode version last seen), and the set of the cluster znode at the expected version. Nothing
changed: nothing is sent. A multi is one request, and ZooKeeper refuses requests over
``jute.maxbuffer`` (1 MB by default, :data:`MAX_TRANSACTION_BYTES` here). A write that does not fit
is sent in several fenced multis, the cluster znode set by the last; which changes may go ahead
of it, what a reader sees meanwhile and why that is safe is
:mod:`~es_framework.shell.state_store.zookeeper_write`. A write whose last multi alone would not
fit is refused before anything is sent (:class:`StateTooLargeError`).

**A read** gets the cluster znode and the children of ``nodes`` (with the ``nodes`` znode's
version), fetches every node znode (ZooKeeper's multiRead, 200 per request, or one pipelined
request each on a server older than 3.6: :mod:`~es_framework.shell.state_store.zookeeper_read`),
then checks the cluster znode's version again: unchanged means no single-multi write came between
(every write sets it in its last multi), changed means read again. Between the steps of a write in
several multis a read returns the old cluster part with each record old or new (see above). The
count and the digest of ids in the cluster znode must match what was read, or the state is corrupt.

**Installing** a layout (a first :meth:`ZooKeeperLayout.install`, or the migration from layout 1)
writes the node znodes and then, last, creates the cluster znode and the ``state`` tombstone, in one
multi when it fits and otherwise in steps: node znodes in batches, each guarded (the fence, the old
document still at the version read, no cluster znode yet), then the cluster znode and the tombstone.
Until that last multi the new layout is invisible (no cluster znode) and the old document is
untouched, so a crash midway loses nothing: the next leader reads layout 1 and installs again,
overwriting the node znodes already written and deleting strays.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kazoo.exceptions import (
    BadVersionError,
    ConnectionLoss,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
    UnimplementedError,
)

from es_framework.core.state_layout import (
    Layout,
    LayoutDiff,
    ids_digest,
    may_go_ahead,
    split_document,
    update_digest,
)
from es_framework.shell.memory import paused_gc
from es_framework.shell.state_store.base import (
    SCHEMA,
    LeadershipLostError,
    StateConflictError,
    StateCorruptError,
    StateStoreError,
    StateUnavailableError,
    decode_json,
    encode,
    exists_conflict,
    log,
    version_conflict,
)
from es_framework.shell.state_store.stored_entries import (
    StoredEntries,
    apply_entry_changes,
    diff_stored,
    entries_read_back,
)
from es_framework.shell.state_store.zookeeper_read import LAYOUT_VERSION, Basis, NodeFetcher, parse_layout
from es_framework.shell.state_store.zookeeper_write import Op, StateTooLargeError, batches, plan_write

__all__ = ["LAYOUT_VERSION", "MAX_TRANSACTION_BYTES", "Basis", "StateTooLargeError", "ZooKeeperLayout"]

#: The largest multi request sent. ZooKeeper's ``jute.maxbuffer`` (default 0xfffff = 1,048,575
#: bytes) bounds a whole request; the margin covers the request header and our size estimate.
MAX_TRANSACTION_BYTES = 1_000_000
#: How many times a delete that raced a write is retried before giving up.
_READ_ATTEMPTS = 8
#: How long a read that keeps racing writes is retried (with a growing, jittered pause) before it
#: gives up: a read under load can take longer than the gap between two of the leader's writes.
_READ_RETRY_SECONDS = 15.0


class ZooKeeperLayout:
    """Reads and writes layout 2 (and reads layout 1) under ``root`` with a started kazoo client.
    Knows nothing of leadership: a write is fenced by the lock znode it is given (``fence``)."""

    def __init__(self, client: Any, root: str, timeout: float) -> None:
        self.client = client
        self.root = root
        self.timeout = timeout
        self.cluster_path = f"{root}/cluster"
        self.nodes_path = f"{root}/nodes"
        self.legacy_path = f"{root}/state"
        self.fetcher = NodeFetcher(client, timeout)
        #: Called after each step of a multi-step install with the step's number (tests interrupt here).
        self.after_install_step: Callable[[int], None] | None = None
        #: Called after each step but the last of a write in several multis (tests interrupt here).
        self.after_write_step: Callable[[int], None] | None = None

    def node_path(self, key: str) -> str:
        return f"{self.nodes_path}/{key}"

    # --- encoding

    def encode_cluster(self, layout: Layout, base: int, digest: int) -> bytes:
        return encode(
            {
                "layout": LAYOUT_VERSION,
                "state": dict(layout.cluster),
                "split": list(layout.split_fields),
                "nodes": {"count": len(layout.entries), "digest": f"{digest:016x}"},
                "version_base": base,
            },
            what=f"the cluster znode {self.cluster_path}",
        )

    def encode_entry(self, key: str, entry: Mapping[str, Any]) -> bytes:
        return encode(dict(entry), what=f"the znode {self.node_path(key)}")

    def tombstone(self) -> bytes:
        return encode(
            {"schema": LAYOUT_VERSION, "state": {}, "moved_to": self.cluster_path, "layout": LAYOUT_VERSION},
            what=self.legacy_path,
        )

    # --- reading

    def _get(self, path: str) -> tuple[bytes, Any] | None:
        try:
            return self.client.get_async(path).get(timeout=self.timeout)  # type: ignore[no-any-return]
        except NoNodeError:
            return None

    def _children(self) -> tuple[list[str], int | None]:
        """The node keys and the ``nodes`` znode's version (None when it does not exist)."""
        try:
            keys, stat = self.client.get_children_async(self.nodes_path, include_data=True).get(timeout=self.timeout)
        except NoNodeError:
            return [], None
        return list(keys), int(stat.version)

    def read(self) -> tuple[Basis, dict[str, Any]] | None:
        """The stored state (layout 2, or layout 1 with ``legacy`` set) and the document, or None.

        The basis keeps digests of the node znodes, never the document's objects: a caller may change it."""
        deadline = time.monotonic() + _READ_RETRY_SECONDS
        attempt = 0
        fell_back = -10  # the attempt whose multiRead the server refused
        while attempt == 0 or time.monotonic() < deadline:
            if attempt:
                # Let the racing write go by; the jitter keeps a reader from falling into step with a
                # writer of steady cadence.
                time.sleep(min(0.5, 0.005 * 2 ** min(attempt, 7)) * random.uniform(0.5, 1.5))
            attempt += 1
            try:
                done, found = self._read_once()
            except UnimplementedError:
                fell_back = attempt  # the server closes the connection: read again, one request per znode
                continue
            except ConnectionLoss:
                if attempt > fell_back + 2:
                    raise
                continue  # the connection the server closed on the refused multiRead (kazoo reconnects)
            if done:
                return found
            log.debug("state store: %s changed while it was read; reading it again", self.cluster_path)
        raise StateUnavailableError(
            f"{self.cluster_path} kept changing while it was read ({attempt} attempts in {_READ_RETRY_SECONDS:g} s)"
        )

    def _read_once(self) -> tuple[bool, tuple[Basis, dict[str, Any]] | None]:
        """One attempt of :meth:`read`: (True, what it returns), or (False, None) when a write came between."""
        got = self._get(self.cluster_path)
        if got is None:
            return True, self._read_legacy()
        data, stat = got
        keys, nodes_version = self._children()
        nodes, vanished = self.fetcher.fetch({key: self.node_path(key) for key in keys})
        again = self.client.exists_async(self.cluster_path).get(timeout=self.timeout)
        if vanished or again is None or again.version != stat.version:
            return False, None
        with paused_gc():  # a million objects that all survive the decoding (es_framework/shell/memory.py)
            return True, parse_layout(self, data, stat.version, nodes, nodes_version)

    def _read_legacy(self) -> tuple[Basis, dict[str, Any]] | None:
        got = self._get(self.legacy_path)
        if got is None:
            return None
        data, stat = got
        payload = decode_json(data, f"znode {self.legacy_path}")
        if isinstance(payload, dict) and payload.get("moved_to"):
            raise StateCorruptError(
                f"{self.legacy_path} says the state moved to {payload['moved_to']}, which does not exist"
            )
        if not isinstance(payload, dict) or not isinstance(payload.get("state"), dict):
            raise StateCorruptError(f'znode {self.legacy_path} is not a {{"schema": …, "state": {{…}}}} document')
        if payload.get("schema") != SCHEMA:
            raise StateCorruptError(f"znode {self.legacy_path} has schema {payload.get('schema')!r}; expected {SCHEMA}")
        return Basis(split_document(payload["state"]), int(stat.version), legacy=True), json.loads(data)["state"]

    # --- writing

    def _commit(self, ops: Sequence[Op]) -> list[Any]:
        transaction = self.client.transaction()
        for op in ops:
            if op.kind == "check":
                transaction.check(op.path, op.version)
            elif op.kind == "create":
                transaction.create(op.path, op.data)
            elif op.kind == "set":
                transaction.set_data(op.path, op.data, op.version)
            else:
                transaction.delete(op.path, op.version)
        results: list[Any] = transaction.commit_async().get(timeout=self.timeout)
        for op, outcome in zip(ops, results, strict=True):
            if not isinstance(outcome, Exception) or isinstance(outcome, RolledBackError):
                continue
            if op.role == "fence":
                raise LeadershipLostError(f"not writing {self.root}: the lock znode {op.path} is gone")
            if isinstance(outcome, (BadVersionError, NoNodeError, NodeExistsError)):
                raise StateConflictError(
                    f"{op.path} is not as this store last saw it ({type(outcome).__name__}); re-read and retry"
                )
            raise StateStoreError(f"writing {self.root} failed at {op.path}: {type(outcome).__name__}")
        return results

    @staticmethod
    def _fence(fence: str | None) -> list[Op]:
        return [] if fence is None else [Op("check", fence, "fence")]

    def write(self, basis: Basis, new: Layout, fence: str | None) -> tuple[Basis, LayoutDiff]:
        """Write what differs between ``basis`` (stored at ``basis.version``) and ``new``: one multi, or
        when that does not fit, several (:func:`~es_framework.shell.state_store.zookeeper_write.plan_write`)."""
        diff, payloads = diff_stored(basis.layout, basis.stored, new, self.encode_entry)
        return self._write(basis, new, diff, payloads, fence)

    def write_changes(
        self,
        basis: Basis,
        cluster: Mapping[str, Any],
        entries: Mapping[str, Mapping[str, Any] | None],
        fence: str | None,
    ) -> tuple[Basis, LayoutDiff]:
        """As :meth:`write` of ``basis`` with the cluster part ``cluster`` and the node entries
        ``entries`` (key -> its new entry, None: gone); every other entry is as stored. Compares only
        these entries (O(changed)); the set of cut fields must be the stored one."""
        new, diff, payloads = apply_entry_changes(basis.layout, basis.stored, cluster, entries, self.encode_entry)
        return self._write(basis, new, diff, payloads, fence)

    def _keys_ahead(self, basis: Basis, new: Layout, diff: LayoutDiff) -> frozenset[str]:
        """The changed ids of ``diff`` that may be stored ahead of the cluster znode
        (:func:`~es_framework.core.state_layout.may_go_ahead`), their old entries read back from
        ZooKeeper (the basis keeps only digests); an entry not as kept never goes ahead."""
        if basis.nodes_version is None or basis.layout.split_fields != new.split_fields or not diff.changed:
            return frozenset()
        paths = {key: self.node_path(key) for key in diff.changed}
        try:
            found, _ = self.fetcher.fetch(paths)
        except UnimplementedError:
            found, _ = self.fetcher.fetch(paths)  # the fetcher now reads one znode per request
        old = entries_read_back(basis.stored, basis.node_versions, found)
        return frozenset(key for key in diff.changed if may_go_ahead(old.get(key), new.entries.get(key)))

    def _write(
        self, basis: Basis, new: Layout, diff: LayoutDiff, payloads: Mapping[str, bytes], fence: str | None
    ) -> tuple[Basis, LayoutDiff]:
        if diff.empty:
            return basis, diff
        digest = update_digest(basis.digest, diff.appeared, diff.removed)
        cluster_op = Op(
            "set", self.cluster_path, "cluster", self.encode_cluster(new, basis.base, digest), basis.znode_version
        )
        known = basis.node_versions
        node_ops = [
            Op("create", self.node_path(key), "node", payloads[key], key=key) for key in sorted(diff.appeared, key=int)
        ]
        node_ops += [
            Op("set", self.node_path(key), "node", payloads[key], known.get(key, -1), key)
            for key in sorted(diff.changed, key=int)
        ]
        node_ops += [
            Op("delete", self.node_path(key), "node", version=known.get(key, -1), key=key)
            for key in sorted(diff.removed, key=int)
        ]
        plan = plan_write(
            fence=self._fence(fence),
            cluster=cluster_op,
            nodes_path=self.nodes_path,
            nodes_version=basis.nodes_version,
            node_ops=node_ops,
            ahead=lambda: self._keys_ahead(basis, new, diff),
            limit=MAX_TRANSACTION_BYTES,
            what=self.root,
        )
        if len(plan.steps) > 1:
            log.info(
                "state store: writing version %d of %s in %d multis (%d node znodes ahead of the cluster znode, "
                "%d with it): the write does not fit in one ZooKeeper request",
                basis.version + 1,
                self.root,
                len(plan.steps),
                plan.ahead,
                len(node_ops) - plan.ahead,
            )
        # Copied whole (in C) and then trimmed: O(changed) Python work per write.
        versions = dict(basis.node_versions)
        for key in diff.removed:
            versions.pop(key, None)
        # What we keep is what we sent (bytes), never the caller's objects (which it may change).
        sent: list[tuple[str, bytes]] = []
        cluster_version = basis.znode_version + 1
        for number, ops in enumerate(plan.steps, 1):
            results = self._commit(ops)
            for op, outcome in zip(ops, results, strict=True):
                if op.role == "cluster" and op.kind == "set":
                    cluster_version = int(outcome.version)
                elif op.key is not None and op.kind != "delete":
                    versions[op.key] = 0 if op.kind == "create" else int(outcome.version)
                    sent.append((op.key, op.data))
            if number < len(plan.steps) and self.after_write_step is not None:
                self.after_write_step(number)
        entries = basis.stored.after(sent, diff.removed)
        stored = Layout(json.loads(cluster_op.data)["state"], new.split_fields, entries)
        version = basis.base + cluster_version
        return Basis(stored, version, basis.base, digest, versions, nodes_version=plan.nodes_version), diff

    def write_legacy(self, document: dict[str, Any], expected_version: int) -> int:
        """A compare-and-set of the layout-1 document (a store that does not lead, over layout 1)."""
        data = encode({"schema": SCHEMA, "state": document})
        try:
            stat = self.client.set_async(self.legacy_path, data, expected_version).get(timeout=self.timeout)
        except (BadVersionError, NoNodeError):
            raise version_conflict(self.legacy_path, expected_version) from None
        return int(stat.version)

    def install(self, layout: Layout, *, legacy_version: int | None, fence: str | None) -> Basis:
        """Create layout 2 holding ``layout``: over nothing (``legacy_version`` None; a conflict if any
        state exists) or over the layout-1 document at ``legacy_version`` (the migration; a conflict
        if it changed). The version of the result follows the old one (``legacy_version + 1``)."""
        self.client.ensure_path(self.nodes_path)
        children, nodes_version = self._children()
        strays = set(children)
        base = 0 if legacy_version is None else legacy_version + 1
        digest = ids_digest(layout.entries)
        node_ops = [
            Op(
                "set" if key in strays else "create",
                self.node_path(key),
                "node",
                self.encode_entry(key, entry),
                key=key,
            )
            for key, entry in sorted(layout.entries.items(), key=lambda kv: int(kv[0]))
        ]
        node_ops += [Op("delete", self.node_path(key), "node", key=key) for key in sorted(strays - set(layout.entries))]
        if legacy_version is None:
            legacy = Op("create", self.legacy_path, "legacy", self.tombstone())
        else:
            legacy = Op("set", self.legacy_path, "legacy", self.tombstone(), legacy_version)
        cluster = Op("create", self.cluster_path, "cluster", self.encode_cluster(layout, base, digest))
        final = [*self._fence(fence), legacy, cluster]
        steps: list[list[Op]] = []
        if sum(op.size for op in final + node_ops) <= MAX_TRANSACTION_BYTES:
            steps.append(final + node_ops)
        else:
            # Each batch is void unless the old document is unchanged and there is no cluster znode
            # yet (creating and deleting it in the same multi is a check that it does not exist).
            guard = [
                *self._fence(fence),
                Op("create", self.cluster_path, "cluster"),
                Op("delete", self.cluster_path, "cluster"),
            ]
            if legacy_version is not None:
                guard.insert(len(guard) - 2, Op("check", self.legacy_path, "legacy", version=legacy_version))
            room = MAX_TRANSACTION_BYTES - sum(op.size for op in guard)
            for batch in batches(node_ops, room):
                steps.append(guard + batch)
            steps.append(final)
        log.info(
            "state store: writing layout %d of %s (%d node znodes%s) in %d step(s)",
            LAYOUT_VERSION,
            self.root,
            len(layout.entries),
            f", migrated from {self.legacy_path} at version {legacy_version}" if legacy_version is not None else "",
            len(steps),
        )
        versions: dict[str, int] = {}
        sent: list[tuple[str, bytes]] = []
        for number, ops in enumerate(steps, 1):
            try:
                results = self._commit(ops)
            except StateConflictError:
                if legacy_version is None:  # a cluster znode or an old document is there
                    raise exists_conflict(self.root) from None
                raise
            for op, outcome in zip(ops, results, strict=True):
                if op.key is not None and op.kind != "delete":
                    versions[op.key] = 0 if op.kind == "create" else int(outcome.version)
                    sent.append((op.key, op.data))
            if number < len(steps) and self.after_install_step is not None:
                self.after_install_step(number)
        stored = Layout(json.loads(cluster.data)["state"], layout.split_fields, StoredEntries.of_bytes(sent))
        return Basis(stored, base, base, digest, versions, nodes_version=nodes_version)

    def delete(self) -> None:
        """Remove the state: the cluster znode and the tombstone (or layout-1 document) in one multi,
        so that it is gone at once, then the node znodes (invisible without a cluster znode)."""
        for _ in range(_READ_ATTEMPTS):
            ops = []
            for path in (self.cluster_path, self.legacy_path):
                stat = self.client.exists_async(path).get(timeout=self.timeout)
                if stat is not None:
                    ops.append(Op("delete", path, "cluster", version=stat.version))
            if not ops:
                break
            try:
                self._commit(ops)
                break
            except StateConflictError:
                continue
        strays = [Op("delete", self.node_path(k), "node", key=k) for k in self._children()[0]]
        for batch in batches(strays, MAX_TRANSACTION_BYTES):
            with contextlib.suppress(StateConflictError):
                self._commit(batch)
        with contextlib.suppress(NoNodeError, NotEmptyError):
            self.client.delete_async(self.nodes_path).get(timeout=self.timeout)
