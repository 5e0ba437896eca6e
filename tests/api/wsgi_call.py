"""One request through the API app's WSGI interface, as a server would make it (no socket)."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any
from wsgiref.util import setup_testing_defaults

from es_framework.api.app import ApiApp


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        assert self.headers["Content-Type"].startswith("application/json"), self.headers
        return json.loads(self.body)


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
    """One request through the WSGI interface, as a server would make it."""
    path, _, query = path.partition("?")
    if isinstance(body, str):
        raw = body.encode("utf-8")
    elif isinstance(body, bytes):
        raw = body
    else:
        raw = json.dumps(body).encode("utf-8")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_LENGTH": content_length if content_length is not None else str(len(raw)),
        "CONTENT_TYPE": "application/json",
        "wsgi.input": io.BytesIO(raw),
    }
    setup_testing_defaults(environ)
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    if token is not None:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    seen: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        seen["status"] = int(status.split(maxsplit=1)[0])
        seen["headers"] = dict(response_headers)

    chunks = app(environ, start_response)
    body_out = b"".join(chunks)
    assert seen["headers"]["Content-Length"] == str(len(body_out))
    return Answer(seen["status"], seen["headers"], body_out)
