"""Helpers for the development cluster tests: a raw RecordIO client, polling, a recording pymesos scheduler."""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from es_framework.dev.devcluster.recordio import RecordIODecoder

T = TypeVar("T")
logger = logging.getLogger(__name__)


def wait_for(predicate: Callable[[], T | None], timeout: float = 5.0, interval: float = 0.02, what: str = "") -> T:
    """Poll until ``predicate()`` is truthy; return its value or fail the test."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def request(
    address: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    host, port = address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def call(address: str, document: object, stream_id: str | None = None) -> tuple[int, str]:
    """A non-SUBSCRIBE scheduler call; (status, plain-text body)."""
    headers = {"Content-Type": "application/json"}
    if stream_id is not None:
        headers["Mesos-Stream-Id"] = stream_id
    status, _, body = request(address, "POST", "/api/v1/scheduler", json.dumps(document).encode(), headers)
    return status, body.decode()


def control(address: str, path: str, document: object | None = None) -> tuple[int, Any]:
    body = json.dumps(document).encode() if document is not None else b""
    status, _, raw = request(address, "POST", "/devcluster/" + path, body, {"Content-Type": "application/json"})
    return status, json.loads(raw)


class RawStream:
    """A SUBSCRIBE made by hand: keeps the raw bytes, the de-chunked body and the decoded events."""

    def __init__(self, address: str, document: object, extra_headers: dict[str, str] | None = None) -> None:
        host, port = address.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        body = json.dumps(document).encode()
        head = (
            f"POST /api/v1/scheduler HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n"
            f"Accept: application/json\r\nConnection: close\r\nContent-Length: {len(body)}\r\n"
        )
        for key, value in (extra_headers or {}).items():
            head += f"{key}: {value}\r\n"
        self.sock.sendall(head.encode() + b"\r\n" + body)
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            data = self.sock.recv(4096)
            if not data:
                raise AssertionError(f"connection closed before headers: {buffer!r}")
            buffer += data
        header_bytes, rest = buffer.split(b"\r\n\r\n", 1)
        lines = header_bytes.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
        self.raw = bytearray(rest)
        self.body = bytearray()
        self.events: list[dict[str, Any]] = []
        self.ended = False
        self.closed = False
        self._chunk_buffer = bytearray(rest)
        self._decoder = RecordIODecoder()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    @property
    def stream_id(self) -> str:
        return self.headers["mesos-stream-id"]

    def _parse_chunks(self) -> None:
        while not self.ended:
            line_end = self._chunk_buffer.find(b"\r\n")
            if line_end < 0:
                return
            size = int(bytes(self._chunk_buffer[:line_end]), 16)
            if size == 0:
                self.ended = True
                return
            if len(self._chunk_buffer) < line_end + 2 + size + 2:
                return
            data = bytes(self._chunk_buffer[line_end + 2 : line_end + 2 + size])
            assert self._chunk_buffer[line_end + 2 + size : line_end + 4 + size] == b"\r\n"
            del self._chunk_buffer[: line_end + 4 + size]
            self.body.extend(data)
            self.events.extend(self._decoder.feed(data))

    def _read(self) -> None:
        try:
            while True:
                with self._lock:
                    if self.status == 200 and self.headers.get("transfer-encoding") == "chunked":
                        self._parse_chunks()
                    else:
                        self.body = bytearray(self.raw)
                if self.ended:
                    return
                data = self.sock.recv(65536)
                if not data:
                    return
                with self._lock:
                    self.raw.extend(data)
                    self._chunk_buffer.extend(data)
        except OSError:
            return
        finally:
            self.closed = True

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.events)

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.snapshot() if e.get("type") == event_type]

    def wait(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            return next((e for e in self.snapshot() if predicate(e)), None)

        return wait_for(find, timeout, what="a matching event")

    def updates(self, task_id: str | None = None) -> list[dict[str, Any]]:
        return [
            e["update"]["status"]
            for e in self.of_type("UPDATE")
            if task_id is None or e["update"]["status"]["task_id"]["value"] == task_id
        ]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(timeout=2)
