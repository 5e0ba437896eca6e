"""RecordIO framing of the Mesos v1 event stream (development tool, not for production).

Each record is ``<decimal length of the JSON in bytes>\\n<JSON>``; HTTP chunk boundaries mean
nothing to the reader.
"""

from __future__ import annotations

import json
import queue
import uuid
from collections.abc import Iterator
from typing import Any, Protocol


class RecordIOError(ValueError):
    """Bytes that are not a RecordIO stream."""


def encode_record(event: dict[str, Any]) -> bytes:
    data = json.dumps(event, separators=(",", ":")).encode("utf-8")
    return str(len(data)).encode("ascii") + b"\n" + data


class EventStream(Protocol):
    """What the HTTP front writes out on a subscriber's connection: RecordIO records, ``None`` ends it."""

    stream_id: str
    records: queue.Queue[bytes | None]

    @property
    def owner(self) -> str: ...


class RecordStream:
    """One subscriber's event stream (a scheduler's or an executor's): encoded records waiting to be
    written by the HTTP handler; ``None`` ends the stream."""

    def __init__(self) -> None:
        self.stream_id = str(uuid.uuid4())
        self.records: queue.Queue[bytes | None] = queue.Queue()
        self.closed = False

    def send(self, event: dict[str, Any]) -> None:
        if not self.closed:
            self.records.put(encode_record(event))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.records.put(None)


class RecordIODecoder:
    """Incremental decoder: feed bytes as they arrive, get every complete record back."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> Iterator[dict[str, Any]]:
        self._buffer += data
        while True:
            newline = self._buffer.find(b"\n")
            if newline < 0:
                if len(self._buffer) > 20:
                    raise RecordIOError(f"no record length in {self._buffer[:40]!r}")
                return
            header = self._buffer[:newline]
            if not header.isdigit():
                raise RecordIOError(f"bad record length {header[:40]!r}")
            length = int(header)
            end = newline + 1 + length
            if len(self._buffer) < end:
                return
            record = self._buffer[newline + 1 : end]
            self._buffer = self._buffer[end:]
            event = json.loads(record.decode("utf-8"))
            if not isinstance(event, dict):
                raise RecordIOError(f"record is not a JSON object: {record[:80]!r}")
            yield event

    @property
    def pending(self) -> bytes:
        """Bytes of an incomplete record."""
        return self._buffer
