"""The README stays true to the code: every flag documented with its real default."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from es_framework.config import DEFAULT_EXECUTOR_IMAGE, FLAGS, FlagSpec

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
ROWS = {m["flag"]: m["default"] for m in re.finditer(r"^\| `--(?P<flag>\w+)` \| (?P<default>[^|]+) \|", README, re.M)}


@pytest.mark.parametrize("spec", FLAGS, ids=lambda s: s.name)
def test_every_flag_is_in_the_readme_with_its_default(spec: FlagSpec) -> None:
    assert spec.name in ROWS, f"--{spec.name} is missing from the README's configuration table"
    documented = ROWS[spec.name].strip()
    if spec.default == DEFAULT_EXECUTOR_IMAGE:
        assert documented == "`es-mesos/elasticsearch-executor:<version>`"
    elif spec.default in ("", "unset"):
        assert documented in ("–", "empty")
    else:
        assert documented == f"`{spec.default}`"


def test_readme_documents_no_flag_that_does_not_exist() -> None:
    assert set(ROWS) == {spec.name for spec in FLAGS}


def test_ci_runs_exactly_the_readme_test_command() -> None:
    assert "bash scripts/test.sh" in README
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [line for line in ci.splitlines() if line.strip() and not line.lstrip().startswith(("#", "set ", "cd "))]
    assert commands == ["exec bash scripts/test.sh"]


def test_the_quick_start_runs_local_mode_and_says_it_is_a_development_tool() -> None:
    quick_start = README[README.index("## Quick start") : README.index("## Set-up")]
    first = re.search(r"```sh\n(?P<command>.+?)\n```", quick_start, re.S)
    assert first is not None
    assert (
        first["command"]
        == "bash scripts/setup.sh && .venv/bin/es-framework --mesosMaster local --externalVolumeDriver rexray"
    )
    assert "development tool" in quick_start and "not* Elasticsearch" in quick_start
    assert "production runs on real Mesos and real Elasticsearch" in quick_start
    assert "Ctrl-C stops all of it" in quick_start
    assert "es-framework plan " in quick_start
