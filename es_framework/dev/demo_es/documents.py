"""Documents of the demo node (development tool, not Elasticsearch): one shard copy's store, the write
operations a primary applies and replicates, the queries the demo understands, and ``_bulk`` parsing.

- :func:`shard_for_id`: ``crc32(_id) % number_of_shards`` (Elasticsearch uses murmur3; any stable hash
  gives the same behaviour: one shard per id).
- :class:`ShardStore`: the documents of one shard copy, with tombstones for deletes, each carrying the
  ``_seq_no`` its primary gave it. The whole copy is one JSON file under
  ``path.data/indices/<index uuid>/<shard>/shard.json``, rewritten atomically after every change (fine for
  test-sized data). Replicas and recoveries merge by ``_seq_no`` (the higher wins), so a copy that received
  writes while it was being filled ends up equal to its primary.
- Dynamic mapping, per shard copy (a simplification: Elasticsearch keeps one mapping per index): the first
  value of a field fixes its type (``long``, ``double``, ``boolean``, ``text``, ``object``); a later value that
  cannot be read as that type is refused with ``mapper_parsing_exception``.
- Queries: ``match_all``, ``term`` (exact value; ``field.keyword`` means ``field``), ``match`` (any of the
  lower-cased words), ``ids``, and the URI ``q=field:value`` / ``q=value`` (a ``match``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from es_framework.dev.demo_es.errors import EsError

STORE_FILE = "shard.json"
_WORD = re.compile(r"\w+", re.UNICODE)


def shard_for_id(doc_id: str, number_of_shards: int) -> int:
    return zlib.crc32(doc_id.encode("utf-8")) % number_of_shards


# ---------------------------------------------------------------------- operations


@dataclass(frozen=True)
class Operation:
    """One write: ``index`` (``create=True`` refuses an existing id) or ``delete``."""

    action: str  # "index" | "delete"
    doc_id: str
    source: Mapping[str, Any] | None = None
    create: bool = False


@dataclass(frozen=True)
class Doc:
    doc_id: str
    source: Mapping[str, Any] | None  # None: a tombstone
    version: int
    seq_no: int

    @property
    def deleted(self) -> bool:
        return self.source is None


@dataclass(frozen=True)
class Outcome:
    """What happened to one operation on the primary: ``doc`` is set when something was written."""

    result: str  # created / updated / deleted / not_found / error
    status: int
    doc: Doc | None = None
    error: EsError | None = None


def op_from_json(item: Mapping[str, Any]) -> Operation:
    return Operation(str(item["action"]), str(item["id"]), item.get("source"), bool(item.get("create", False)))


def op_to_json(op: Operation) -> dict[str, Any]:
    return {"action": op.action, "id": op.doc_id, "source": op.source, "create": op.create}


def doc_to_json(doc: Doc) -> dict[str, Any]:
    return {"id": doc.doc_id, "source": doc.source, "version": doc.version, "seq_no": doc.seq_no}


def doc_from_json(item: Mapping[str, Any]) -> Doc:
    return Doc(str(item["id"]), item.get("source"), int(item["version"]), int(item["seq_no"]))


# ---------------------------------------------------------------------- mapping


def _type_of(value: Any) -> str | None:
    if value is None or (isinstance(value, list) and not value):
        return None
    if isinstance(value, list):
        return _type_of(value[0])
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, dict):
        return "object"
    return "text"


def _fits(kind: str, value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, list):
        return all(_fits(kind, v) for v in value)
    if kind == "object":
        return isinstance(value, dict)
    if isinstance(value, dict):
        return False
    if kind == "text":
        return True
    if kind == "boolean":
        return isinstance(value, bool) or value in ("true", "false")
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return kind == "double" or isinstance(value, int) or float(value).is_integer()


def learn_mapping(mapping: dict[str, str], source: Mapping[str, Any], doc_id: str, prefix: str = "") -> dict[str, str]:
    """The mapping after indexing ``source``; raises 400 ``mapper_parsing_exception`` on a type clash."""
    result = dict(mapping)
    for key, value in source.items():
        field = prefix + key
        known = result.get(field)
        if known is not None and not _fits(known, value):
            preview = json.dumps(value, ensure_ascii=False)[:20]
            raise EsError(
                400,
                "mapper_parsing_exception",
                f"failed to parse field [{field}] of type [{known}] in document with id '{doc_id}'. "
                f"Preview of field's value: '{preview.strip(chr(34))}'",
            )
        kind = known or _type_of(value)
        if kind is not None:
            result[field] = kind
        if isinstance(value, dict):
            result = learn_mapping(result, value, doc_id, field + ".")
    return result


# ---------------------------------------------------------------------- queries


@dataclass(frozen=True)
class Query:
    kind: str  # match_all | term | match | ids
    field: str = ""
    value: Any = None


def _single_field(kind: str, body: Any) -> tuple[str, Any]:
    if not isinstance(body, Mapping) or len(body) != 1:
        raise EsError(
            400,
            "parsing_exception",
            f"[{kind}] query doesn't support multiple fields, found "
            f"{list(body) if isinstance(body, Mapping) else body}",
        )
    ((field, spec),) = body.items()
    if isinstance(spec, Mapping):
        key = "value" if kind == "term" else "query"
        if key not in spec:
            raise EsError(400, "parsing_exception", f"[{kind}] query does not support [{', '.join(spec)}]")
        spec = spec[key]
    return str(field), spec


def parse_query(body: Mapping[str, Any] | None, q: str | None = None) -> Query:
    """The query of a ``_search`` / ``_count`` request (``q`` is the URI parameter, which wins)."""
    if q:
        field, sep, value = q.partition(":")
        return Query("match", field.strip(), value.strip()) if sep else Query("match", "", q.strip())
    query = (body or {}).get("query")
    if query is None:
        return Query("match_all")
    if not isinstance(query, Mapping) or len(query) != 1:
        raise EsError(400, "parsing_exception", "[_na] query malformed, must start with start_object")
    ((kind, spec),) = query.items()
    if kind == "match_all":
        return Query("match_all")
    if kind in ("term", "match"):
        field, value = _single_field(kind, spec)
        return Query(kind, field.removesuffix(".keyword"), value)
    if kind == "ids":
        values = spec.get("values") if isinstance(spec, Mapping) else None
        if not isinstance(values, list):
            raise EsError(400, "parsing_exception", "[ids] query requires [values]")
        return Query("ids", "", tuple(str(v) for v in values))
    raise EsError(400, "parsing_exception", f"unknown query [{kind}] (the demo node knows match_all, term, match, ids)")


def query_to_json(query: Query) -> dict[str, Any]:
    return {
        "kind": query.kind,
        "field": query.field,
        "value": list(query.value) if isinstance(query.value, tuple) else query.value,
    }


def query_from_json(item: Mapping[str, Any]) -> Query:
    value = item.get("value")
    return Query(
        str(item["kind"]),
        str(item.get("field", "")),
        tuple(value) if isinstance(value, list) and item["kind"] == "ids" else value,
    )


def _values(source: Mapping[str, Any], field: str) -> list[Any]:
    if not field:
        found: list[Any] = []
        for key, value in source.items():
            found.extend(_values({key: value}, key) if not isinstance(value, Mapping) else _values(value, ""))
        return found
    node: Any = source
    if field in source:
        node = source[field]
    else:
        for part in field.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return []
            node = node[part]
    return list(node) if isinstance(node, list) else [node]


def _words(value: Any) -> set[str]:
    return set(_WORD.findall(str(value).lower()))


def matches(query: Query, doc: Doc) -> bool:
    if doc.source is None:
        return False
    if query.kind == "match_all":
        return True
    if query.kind == "ids":
        return doc.doc_id in query.value
    values = _values(doc.source, query.field)
    if query.kind == "term":
        return any(v == query.value or (isinstance(v, str) and str(query.value) == v) for v in values)
    wanted = _words(query.value)
    return any(_words(v) & wanted for v in values)


# ---------------------------------------------------------------------- the store of one shard copy


class ShardStore:
    """One shard copy's documents. Callers hold :attr:`lock` around a primary's apply-and-replicate so that
    writes, replication and recovery snapshots of one shard happen in one order."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.lock = threading.RLock()
        self.docs: dict[str, Doc] = {}
        self.mapping: dict[str, str] = {}
        self.max_seq_no = -1
        path = directory / STORE_FILE
        if path.exists():
            document = json.loads(path.read_text(encoding="utf-8"))
            self.docs = {d.doc_id: d for d in map(doc_from_json, document["docs"])}
            self.mapping = dict(document.get("mapping", {}))
            self.max_seq_no = int(document.get("max_seq_no", -1))

    def save(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / STORE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "max_seq_no": self.max_seq_no,
                    "mapping": self.mapping,
                    "docs": [doc_to_json(d) for d in self.docs.values()],
                }
            ),
            encoding="utf-8",
        )
        os.replace(tmp, path)

    # -- primary

    def apply(self, op: Operation, index: str) -> Outcome:
        """Apply one operation as the primary (assigns ``_seq_no`` and ``_version``); does not save."""
        current = self.docs.get(op.doc_id)
        live = current is not None and not current.deleted
        if op.action == "delete":
            if not live:
                return Outcome("not_found", 404)
            assert current is not None
            doc = Doc(op.doc_id, None, current.version + 1, self.max_seq_no + 1)
        else:
            if op.create and live:
                assert current is not None
                return Outcome(
                    "error",
                    409,
                    error=EsError(
                        409,
                        "version_conflict_engine_exception",
                        f"[{op.doc_id}]: version conflict, document already exists "
                        f"(current version [{current.version}])",
                        extra={"index": index, "shard": "0"},
                    ),
                )
            if not isinstance(op.source, Mapping):
                return Outcome("error", 400, error=EsError(400, "mapper_parsing_exception", "failed to parse"))
            try:
                self.mapping = learn_mapping(self.mapping, op.source, op.doc_id)
            except EsError as error:
                return Outcome("error", 400, error=error)
            version = current.version + 1 if current is not None else 1
            doc = Doc(op.doc_id, dict(op.source), version, self.max_seq_no + 1)
        self.docs[op.doc_id] = doc
        self.max_seq_no = doc.seq_no
        if op.action == "delete":
            return Outcome("deleted", 200, doc)
        return Outcome("updated" if live else "created", 200 if live else 201, doc)

    # -- replicas and recovery

    def merge(self, docs: Iterable[Doc]) -> None:
        """Take every doc that is newer (higher ``_seq_no``) than what this copy has; does not save."""
        for doc in docs:
            current = self.docs.get(doc.doc_id)
            if current is None or current.seq_no < doc.seq_no:
                self.docs[doc.doc_id] = doc
                if doc.source is not None:
                    # The primary accepted it, so the replica must too even if its own mapping guess differs.
                    with contextlib.suppress(EsError):
                        self.mapping = learn_mapping(self.mapping, doc.source, doc.doc_id)
            self.max_seq_no = max(self.max_seq_no, doc.seq_no)

    def digest(self) -> str:
        """Identifies the copy's content: two copies with the same digest hold the same operations."""
        h = hashlib.sha256()
        for doc_id in sorted(self.docs):
            h.update(f"{doc_id}\0{self.docs[doc_id].seq_no}\n".encode())
        return f"{self.max_seq_no}:{h.hexdigest()}"

    # -- reads

    def get(self, doc_id: str) -> Doc | None:
        doc = self.docs.get(doc_id)
        return None if doc is None or doc.deleted else doc

    def count(self, query: Query) -> int:
        return sum(1 for d in self.docs.values() if matches(query, d))

    def search(self, query: Query, limit: int) -> tuple[int, list[Doc]]:
        """(number of hits, the first ``limit`` hits in ``_id`` order)."""
        hits = sorted((d for d in self.docs.values() if matches(query, d)), key=lambda d: d.doc_id)
        return len(hits), hits[:limit]

    def live_docs(self) -> int:
        return sum(1 for d in self.docs.values() if not d.deleted)

    def deleted_docs(self) -> int:
        return sum(1 for d in self.docs.values() if d.deleted)

    def size_in_bytes(self) -> int:
        path = self.directory / STORE_FILE
        return path.stat().st_size if path.exists() else 0


# ---------------------------------------------------------------------- _bulk


@dataclass(frozen=True)
class BulkItem:
    action: str  # index / create / delete (update is not supported)
    index: str
    doc_id: str | None
    source: Mapping[str, Any] | None


def parse_bulk(body: bytes, default_index: str | None) -> list[BulkItem]:
    """NDJSON ``_bulk`` body → items; malformed input raises 400 like Elasticsearch."""
    lines = [line for line in body.decode("utf-8").split("\n") if line.strip()]
    items: list[BulkItem] = []
    position = 0
    while position < len(lines):
        try:
            header = json.loads(lines[position])
        except ValueError:
            raise EsError(
                400, "x_content_parse_exception", f"[{position + 1}:1] Malformed action/metadata line [{position + 1}]"
            ) from None
        if not isinstance(header, dict) or len(header) != 1:
            raise EsError(
                400,
                "illegal_argument_exception",
                f"Malformed action/metadata line [{position + 1}], expected a simple value for field [_index] "
                "but found [START_OBJECT]",
            )
        ((action, meta),) = header.items()
        if action not in ("index", "create", "delete"):
            raise EsError(
                400,
                "illegal_argument_exception",
                f"Malformed action/metadata line [{position + 1}], expected field [create], [delete], [index] "
                f"or [update] but found [{action}]"
                + (" (the demo node does not support update)" if action == "update" else ""),
            )
        meta = meta if isinstance(meta, dict) else {}
        index = meta.get("_index") or default_index
        if not index:
            raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: index is missing;")
        doc_id = meta.get("_id")
        source: Mapping[str, Any] | None = None
        if action != "delete":
            position += 1
            if position >= len(lines):
                raise EsError(
                    400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]"
                )
            try:
                parsed = json.loads(lines[position])
            except ValueError:
                parsed = None
            source = parsed if isinstance(parsed, dict) else None
        elif doc_id is None:
            raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: id is missing;")
        items.append(BulkItem(action, str(index), None if doc_id is None else str(doc_id), source))
        position += 1
    return items
