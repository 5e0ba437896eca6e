"""One request to the API app in-process: httpx2 over ASGI (what Starlette's TestClient does), no socket.

The requests run on one event loop in a daemon thread shared by every test of the process: a
TestClient not used as a context manager starts a thread and a loop for each request (about 5 ms
each, and the API tests make thousands)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

import httpx2

from es_framework.api.app import ApiApp

_CLIENTS: WeakKeyDictionary[ApiApp, httpx2.AsyncClient] = WeakKeyDictionary()
_LOOP = asyncio.new_event_loop()
threading.Thread(target=_LOOP.run_forever, name="http-call-loop", daemon=True).start()


@dataclass(frozen=True)
class Answer:
    status: int
    #: Case-insensitive, as HTTP header names are (Starlette sends them in lower case).
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        assert self.headers["Content-Type"].startswith("application/json"), self.headers
        return json.loads(self.body)


def client(app: ApiApp) -> httpx2.AsyncClient:
    """The app's client (one per app; it keeps nothing between requests)."""
    if app not in _CLIENTS:
        _CLIENTS[app] = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://testserver")
    return _CLIENTS[app]


def call(
    app: ApiApp,
    method: str,
    path: str,
    body: bytes | str | object = b"",
    *,
    headers: dict[str, str] | None = None,
    token: str | None = None,
    content_length: str | None = None,
) -> Answer:
    """One request as a client would send it: a JSON body (bytes and text as given), the headers, the
    token as ``Authorization: Bearer``."""
    if isinstance(body, str):
        raw = body.encode("utf-8")
    elif isinstance(body, bytes):
        raw = body
    else:
        raw = json.dumps(body).encode("utf-8")
    sent = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    if content_length is not None:
        sent["Content-Length"] = content_length
    request = client(app).request(method, path, content=raw or None, headers=sent)
    answer = asyncio.run_coroutine_threadsafe(request, _LOOP).result(timeout=60)
    received = answer.headers
    if method != "HEAD":
        assert received["Content-Length"] == str(len(answer.content))
    return Answer(answer.status_code, received, answer.content)


def resolved(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` of the OpenAPI ``document``, its ``$ref`` (to ``#/components/schemas/...``) followed."""
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema
