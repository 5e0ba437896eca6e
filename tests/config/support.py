"""What the configuration tests share: building a Config from flags and checking its messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

from es_framework.config import Config, ConfigError, resolve_config

# Hypothesis must not write its example database into the repository.
no_db = settings(database=None, deadline=None)

SECRET_TEXT = "hunter2-Zq9-very-secret"
BINARY_URL = "https://artifacts.example.com/elasticsearch-8.13.tar.gz"
CERTIFICATES_URL = "https://certs.example.com/elastic-certificates.p12"
MESOS_CONTAINERIZER = {"frameworkUseDocker": "false", "elasticsearchBinaryUrl": BINARY_URL}


def cfg(env: dict[str, str] | None = None, /, **flags: str) -> Config:
    return resolve_config(flags, env or {})


def problems(env: dict[str, str] | None = None, /, **flags: str) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        resolve_config(flags, env or {})
    return info.value.problems


def only_problem(**flags: str) -> str:
    found = problems(**flags)
    assert len(found) == 1, found
    return found[0]


def assert_rejected(flag: str, value: str, allowed: str, **other: str) -> str:
    """``--flag value`` is the one problem; the message names the flag, the value and what is allowed."""
    message = only_problem(**{flag: value}, **other)
    assert message.startswith(f"--{flag}: {value!r} "), message
    assert allowed in message, message
    return message


#: A valid --secretKeyFile key (32 bytes, URL-safe base64): fixed, so a failing test is reproducible.
SECRET_KEY_TEXT = "q1YV0wq5Vb9v3nE8Zp6kJd2xR7tL4mHcA0sWfGyUeBo="


def write_secret_key(tmp_path: Path) -> str:
    path = tmp_path / "secret.key"
    path.write_text(SECRET_KEY_TEXT)
    return str(path)


def write_secret(tmp_path: Path) -> str:
    path = tmp_path / "env-secret"
    path.write_text(SECRET_TEXT)
    return str(path)
