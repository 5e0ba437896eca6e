"""Helpers for tests that run demo Elasticsearch nodes (es_framework.dev.demo_es) as processes."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

DEMO_COMMAND = f"{sys.executable} -m es_framework.dev.demo_es"


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), json.loads(error.read() or b"{}")


def wait_until(predicate: Any, timeout: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, ValueError):
            value = predicate()
            if value:
                return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


class DemoNodeProcess:
    """One demo node: ``<home>/config/elasticsearch.yml`` written from ``settings``, output in ``<home>/out.log``,
    ``env`` added to this process's environment (e.g. the ``ES_MESOS_AGENT_*`` limits it should see)."""

    def __init__(self, home: Path, settings: dict[str, str], *args: str, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.config = home / "config"
        self.config.mkdir(parents=True, exist_ok=True)
        (self.config / "elasticsearch.yml").write_text(
            "".join(f"{k}: {v}\n" for k, v in settings.items()), encoding="utf-8"
        )
        self.http_port = int(settings.get("http.port", "0"))
        self.log_path = home / "out.log"
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "es_framework.dev.demo_es", *args],
                env={**os.environ, **(env or {}), "ES_PATH_CONF": str(self.config)},
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=home,
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_http(self, timeout: float = 60.0) -> dict[str, Any]:
        def answer() -> dict[str, Any] | None:
            if self.process.poll() is not None:
                raise AssertionError(f"demo node exited {self.process.returncode}: {self.log()}")
            status, body = get(self.url + "/")
            return body if status == 200 else None

        result: dict[str, Any] = wait_until(answer, timeout, "the demo node's HTTP")
        return result

    def stop(self, timeout: float = 10.0) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
