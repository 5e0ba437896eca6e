"""Fixtures of the configuration tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.config.support import SECRET_TEXT


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret"
    path.write_text(SECRET_TEXT)
    return path
