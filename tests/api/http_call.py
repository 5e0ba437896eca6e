"""One request to the API app in-process, through Starlette's TestClient (httpx over ASGI, no socket)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from starlette.testclient import TestClient

from es_framework.api.app import ApiApp

_CLIENTS: WeakKeyDictionary[ApiApp, TestClient] = WeakKeyDictionary()


@dataclass(frozen=True)
class Answer:
    status: int
    #: Case-insensitive, as HTTP header names are (Starlette sends them in lower case).
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        assert self.headers["Content-Type"].startswith("application/json"), self.headers
        return json.loads(self.body)


def client(app: ApiApp) -> TestClient:
    """The app's TestClient (one per app: it keeps nothing between requests but its cookies, unused here)."""
    if app not in _CLIENTS:
        _CLIENTS[app] = TestClient(app, base_url="http://testserver", raise_server_exceptions=True)
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
    answer = client(app).request(method, path, content=raw or None, headers=sent)
    received = answer.headers
    if method != "HEAD":
        assert received["Content-Length"] == str(len(answer.content))
    return Answer(answer.status_code, received, answer.content)


def resolved(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` of the OpenAPI ``document``, its ``$ref`` (to ``#/components/schemas/...``) followed."""
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema
