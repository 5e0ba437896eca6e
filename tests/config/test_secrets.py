"""Secrets read from files: never shown in a repr, a log or an error message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from es_framework.config import (
    ConfigError,
    Secret,
    resolve_config,
)
from tests.config.support import (
    SECRET_TEXT,
    assert_rejected,
    cfg,
    only_problem,
    problems,
)

# --- secrets ----------------------------------------------------------------------------------------


def test_secret_is_read_and_never_shown(secret_file: Path) -> None:
    c = cfg(frameworkPrincipal="ops", frameworkSecretPath=str(secret_file))
    assert c.principal == "ops"
    assert isinstance(c.secret, Secret) and c.secret.reveal() == SECRET_TEXT
    assert c.warnings == ()
    public = c.public_dict()
    assert public["frameworkSecretPath"] == "****"
    for shown in (repr(c), str(c), json.dumps(public), repr(c.secret), str(c.secret), f"{c.secret}"):
        assert SECRET_TEXT not in shown
    assert repr(c.secret) == "Secret('****')"


def test_secret_never_appears_in_error_messages(secret_file: Path) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_config(
            {"frameworkPrincipal": "ops", "frameworkSecretPath": str(secret_file), "elasticsearchNodes": "0"}, {}
        )
    assert len(info.value.problems) == 1
    assert SECRET_TEXT not in str(info.value) and SECRET_TEXT not in repr(info.value)
    found = problems(frameworkSecretPath=str(secret_file))
    assert found == ("--frameworkSecretPath is given without --frameworkPrincipal; Mesos needs both",)


def test_secret_passed_instead_of_a_path_is_masked_in_the_message() -> None:
    # Someone who puts the secret itself into the path flag must not see it echoed in logs.
    message = only_problem(frameworkPrincipal="ops", frameworkSecretPath=SECRET_TEXT)
    assert message == "--frameworkSecretPath: '****' names a file that does not exist"


def test_missing_secret_file_is_an_error(tmp_path: Path) -> None:
    message = only_problem(frameworkPrincipal="ops", frameworkSecretPath=str(tmp_path / "missing"))
    assert message == "--frameworkSecretPath: '****' names a file that does not exist"


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\n\n"])
def test_trailing_newline_is_stripped_with_a_warning(tmp_path: Path, ending: str) -> None:
    path = tmp_path / "secret"
    path.write_bytes((SECRET_TEXT + ending).encode())
    c = cfg(frameworkPrincipal="ops", frameworkSecretPath=str(path))
    assert c.secret is not None and c.secret.reveal() == SECRET_TEXT
    assert c.warnings == (f"--frameworkSecretPath: {path} ends with a newline; it was stripped from the secret",)
    assert SECRET_TEXT not in " ".join(c.warnings)


@pytest.mark.parametrize("content", [b"", b"\n"])
def test_empty_secret_file_is_an_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "secret"
    path.write_bytes(content)
    assert only_problem(frameworkPrincipal="ops", frameworkSecretPath=str(path)) == (
        "--frameworkSecretPath: '****' names an empty file"
    )


def test_unreadable_secret_files_are_errors(tmp_path: Path) -> None:
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe\x00secret")
    assert only_problem(frameworkPrincipal="ops", frameworkSecretPath=str(binary)) == (
        "--frameworkSecretPath: '****' is not a UTF-8 text file"
    )
    assert only_problem(frameworkPrincipal="ops", frameworkSecretPath=str(tmp_path)) == (
        "--frameworkSecretPath: '****' cannot be read: Is a directory"
    )


def test_principal_without_secret_is_allowed_and_validated() -> None:
    assert cfg(frameworkPrincipal="ops").principal == "ops"
    assert_rejected("frameworkPrincipal", "a b", "must be a non-empty name without whitespace")
