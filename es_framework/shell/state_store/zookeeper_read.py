"""Reading the node znodes of layout 2 fast, and keeping what was read small.

**Fetching.** A new leader reads every node znode before it can reconcile. One ``getData`` request
per znode costs kazoo a turn of its connection thread each (a ``select``, a send, a read, a thread
switch): about 0.3 ms, so 3 s at 10,000 nodes on a loaded 2-core machine. ZooKeeper 3.6 added
``multiRead`` (``ZooDefs.OpCode.multiRead`` = 22; in Java, ``ZooKeeper.multi`` of ``Op.getData``
operations): one request carrying many ``getData`` operations, answered with one result per
operation (its data and ``Stat``, or its own error code such as ``NONODE``: a read operation never
voids the others). kazoo
2.11 has no call for it, so :class:`MultiRead` is the request, serialised as the server's
``MultiOperationRecord`` (``MultiHeader{type, done, err}`` before each operation, then
``{-1, true, -1}``) and handed to kazoo's request queue like kazoo's own ``Transaction``. A server
older than 3.6 does not know the opcode: its ``UnimplementedRequestProcessor`` answers
``UNIMPLEMENTED`` and closes the connection (not the session), and the reader falls back, for the
rest of the process, to one pipelined ``get_async`` per znode (:class:`NodeFetcher`).

**Keeping.** The store keeps what it last read or wrote (its basis, to send only differences): of
each node znode only a digest of its bytes (:mod:`~es_framework.shell.state_store.stored_entries`;
at 10,000 nodes the decoded entries took about 65 MB, their bytes 11 MB).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from kazoo.exceptions import EXCEPTIONS, NoNodeError, UnimplementedError
from kazoo.protocol.serialization import int_struct, multiheader_struct, read_buffer, stat_struct, write_string

from es_framework.core.state_layout import Layout, check_layout, ids_digest, is_node_key, merge_document
from es_framework.shell.state_store.base import StateCorruptError, decode_json, log
from es_framework.shell.state_store.stored_entries import StoredEntries

#: The layout this store writes; it refuses a newer one.
LAYOUT_VERSION = 2
#: ``OpCode.multiRead`` and ``OpCode.getData`` of ZooKeeper's protocol (``ZooDefs.OpCode``).
MULTI_READ_TYPE = 22
GET_DATA_TYPE = 4
#: Node znodes per multiRead: at about 1 KB each, a few hundred KB per answer (kazoo reads any size).
MULTI_READ_BATCH = 200


@dataclass(frozen=True)
class Basis:
    """What is stored at ``version``, as this store last read or wrote it: the layout (of its entries
    only digests, :class:`StoredEntries`, except for layout 1), the node znodes' versions, and for
    layout 1 (``legacy``) the version of the old document."""

    layout: Layout
    version: int
    base: int = 0
    digest: int = 0
    node_versions: Mapping[str, int] = field(default_factory=dict)
    legacy: bool = False
    #: The ``nodes`` znode's version (None: unknown, no write may then go in steps).
    nodes_version: int | None = None

    @property
    def znode_version(self) -> int:
        return self.version - self.base

    @property
    def stored(self) -> StoredEntries:
        """The digests of the node znodes (layout 2; a layout-1 basis has none)."""
        entries = self.layout.entries
        if not isinstance(entries, StoredEntries):
            raise TypeError("a basis of layout 1 keeps no node znodes")
        return entries


class MultiRead(NamedTuple):
    """A ``multiRead`` of the data of ``paths`` (full paths): answered with one ``(data, version)``
    per path, or the ZooKeeper error code (an int, e.g. ``NoNodeError.code``) of that path."""

    paths: tuple[str, ...]

    @property
    def type(self) -> int:
        return MULTI_READ_TYPE

    def serialize(self) -> bytearray:
        body = bytearray()
        header = multiheader_struct.pack(GET_DATA_TYPE, False, -1)
        for path in self.paths:
            body += header
            body += write_string(path)
            body.append(0)  # no watch
        body += multiheader_struct.pack(-1, True, -1)
        return body

    @classmethod
    def deserialize(cls, data: bytes, offset: int) -> list[tuple[bytes, int] | int]:
        results: list[tuple[bytes, int] | int] = []
        while True:
            kind, done, _ = multiheader_struct.unpack_from(data, offset)
            offset += multiheader_struct.size
            if done:
                return results
            if kind == -1:
                results.append(int_struct.unpack_from(data, offset)[0])
                offset += int_struct.size
            else:
                value, offset = read_buffer(data, offset)
                results.append((value or b"", stat_struct.unpack_from(data, offset)[4]))  # Stat.version
                offset += stat_struct.size


class NodeFetcher:
    """Fetches node znodes with multiRead, or one pipelined ``get_async`` each where the server has
    no multiRead (learnt once per client)."""

    def __init__(self, client: Any, timeout: float) -> None:
        self.client = client
        self.timeout = timeout
        #: None until the server answered a multiRead (True) or refused it (False).
        self.multi_read: bool | None = None

    def fetch(self, paths: Mapping[str, str]) -> tuple[dict[str, tuple[bytes, int]], bool]:
        """Key -> (data, znode version) of each path of ``paths`` (key -> path), and whether any was
        gone. Raises :class:`UnimplementedError` once, when the server turns out to have no multiRead
        (it then closes the connection: the caller reads again, one request per znode)."""
        if self.multi_read is False:
            return self._each(paths)
        try:
            found = self._multi(paths)
        except UnimplementedError:
            self.multi_read = False
            log.warning(
                "state store: this ZooKeeper has no multiRead (older than 3.6): reading node znodes one request "
                "each, which is slower (about 3 s at 10,000 nodes)"
            )
            raise
        self.multi_read = True
        return found

    def _multi(self, paths: Mapping[str, str]) -> tuple[dict[str, tuple[bytes, int]], bool]:
        keys = list(paths)
        pending = []
        for start in range(0, len(keys), MULTI_READ_BATCH):
            batch = keys[start : start + MULTI_READ_BATCH]
            result = self.client.handler.async_result()
            # kazoo's own calls queue their requests the same way (KazooClient._call).
            self.client._call(MultiRead(tuple(paths[key] for key in batch)), result)
            pending.append((batch, result))
        found: dict[str, tuple[bytes, int]] = {}
        vanished = False
        for batch, result in pending:
            for key, outcome in zip(batch, result.get(timeout=self.timeout), strict=True):
                if isinstance(outcome, tuple):
                    found[key] = outcome
                elif outcome == NoNodeError.code:
                    vanished = True  # deleted by a write after we listed it: that write set the cluster too
                else:
                    raise EXCEPTIONS[outcome]()
        return found, vanished

    def _each(self, paths: Mapping[str, str]) -> tuple[dict[str, tuple[bytes, int]], bool]:
        pending = [(key, self.client.get_async(path)) for key, path in paths.items()]
        found: dict[str, tuple[bytes, int]] = {}
        vanished = False
        for key, result in pending:
            try:
                data, stat = result.get(timeout=self.timeout)
            except NoNodeError:
                vanished = True
                continue
            found[key] = (data or b"", int(stat.version))
        return found, vanished


def _decode_together(raw: Mapping[str, bytes]) -> list[Any] | None:
    """Every entry decoded by one ``json.loads`` of ``[e1,e2,…]``, or None when that does not give
    exactly one object per entry (then each is decoded alone, which names the bad one)."""
    values = list(raw.values())
    if not all(value[:1] == b"{" and value[-1:] == b"}" for value in values):
        return None
    try:
        decoded = json.loads((b"[" + b",".join(values) + b"]").decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if len(decoded) != len(values) or not all(type(entry) is dict for entry in decoded):
        return None
    return decoded  # type: ignore[no-any-return]


def decode_entries(raw: Mapping[str, bytes], path_of: Callable[[str], str]) -> dict[str, dict[str, Any]]:
    """Key -> the decoded JSON object of each node znode's bytes (StateCorruptError names a znode
    that is not one).

    One call decodes them all: the decoder then keeps one copy of each key name for all entries
    instead of one per entry (about 20 MB less at 10,000 nodes, and less time). Each entry is an
    object whose text starts with ``{`` and ends with ``}``, and the result must hold exactly one
    object per entry; any doubt, and each is decoded alone. (Text that is not JSON alone could, if
    crafted for it, still join into as many valid objects: what a reader then gets is valid JSON
    objects that pass every check that follows, as if they had been written so.)"""
    decoded = _decode_together(raw)
    if decoded is not None:
        return dict(zip(raw, decoded, strict=True))
    entries: dict[str, dict[str, Any]] = {}
    for key, value in raw.items():
        entry = decode_json(value, f"znode {path_of(key)}")
        if not isinstance(entry, dict):
            raise StateCorruptError(f"znode {path_of(key)} is not a JSON object")
        entries[key] = entry
    return entries


def parse_layout(
    where_to: Any, data: bytes, znode_version: int, nodes: Mapping[str, tuple[bytes, int]], nodes_version: int | None
) -> tuple[Basis, dict[str, Any]]:
    """The basis and the document of what was read: the cluster znode's ``data`` at ``znode_version``
    and each node znode's (data, version). ``where_to`` is the :class:`ZooKeeperLayout` (its paths).
    Each node znode is decoded once: the document gets the decoded entries, the basis their digests."""
    where = f"znode {where_to.cluster_path}"
    payload = decode_json(data, where)
    if not isinstance(payload, dict):
        raise StateCorruptError(f"{where} is not a JSON object")
    layout_version = payload.get("layout")
    if layout_version != LAYOUT_VERSION:
        newer = isinstance(layout_version, int) and layout_version > LAYOUT_VERSION
        raise StateCorruptError(
            f"{where} has layout {layout_version!r}; this es-mesos reads layout {LAYOUT_VERSION}"
            + (" (it was written by a newer es-mesos)" if newer else "")
        )
    state, split, header, base = (payload.get(k) for k in ("state", "split", "nodes", "version_base"))
    if (
        not isinstance(state, dict)
        or not isinstance(split, list)
        or not all(isinstance(s, str) for s in split)
        or not isinstance(header, dict)
        or type(base) is not int
        or type(header.get("count")) is not int
        or not isinstance(header.get("digest"), str)
    ):
        raise StateCorruptError(f"{where} lacks state, split, nodes.count, nodes.digest or version_base")
    raw: dict[str, bytes] = {}
    versions: dict[str, int] = {}
    for key, (value, version) in nodes.items():
        if not is_node_key(key):
            raise StateCorruptError(f"znode {where_to.node_path(key)}: {key!r} is not a node id")
        raw[key] = value
        versions[key] = version
    entries = decode_entries(raw, where_to.node_path)
    digest = ids_digest(entries)
    if header["count"] != len(entries) or header["digest"] != f"{digest:016x}":
        raise StateCorruptError(
            f"{where_to.nodes_path} holds {len(entries)} node znodes, but {where} records "
            f"{header['count']} (or another set of ids): the state was changed by hand or is damaged"
        )
    layout = Layout(cluster=state, split_fields=tuple(split), entries=entries)
    try:
        check_layout(layout)
    except ValueError as exc:
        raise StateCorruptError(f"{where_to.root}: {exc}") from None
    # The caller owns the document (and may change it): the basis keeps digests and its own
    # decoding of the (small) cluster part, never an object of the document.
    kept = Layout(json.loads(data)["state"], layout.split_fields, StoredEntries.of_bytes(raw.items()))
    basis = Basis(kept, base + znode_version, base, digest, versions, nodes_version=nodes_version)
    return basis, merge_document(layout)
