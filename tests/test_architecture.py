"""The house keeps its shape: small modules, the layers of docs/architecture.md, paths that exist.

The import rules themselves (layers, the pure core, no development tool in production, no cycles)
are import-linter contracts in ``pyproject.toml``; ``scripts/test.sh`` runs ``lint-imports``, and
:func:`test_import_contracts_are_kept` runs them here too, so a plain ``pytest`` also fails on a
broken contract.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("es_framework", "strategies", "identity")
#: A module longer than this holds two concepts (docs/architecture.md, "Small files").
MAX_MODULE_LINES = 500
ARCHITECTURE = ROOT / "docs" / "architecture.md"


def _modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("module", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_over_500_lines(module: Path) -> None:
    lines = len(module.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, (
        f"{module.relative_to(ROOT)} has {lines} lines (limit {MAX_MODULE_LINES}): it holds two concepts, split it"
    )


def test_import_contracts_are_kept() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_architecture_page_exists_and_is_linked_from_the_readme() -> None:
    assert ARCHITECTURE.is_file()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/architecture.md" in readme


_PATH = re.compile(r"`((?:es_framework|strategies|identity|tests|docker|scripts|benchmarks|docs|examples)/[\w./-]*)`")


@pytest.mark.parametrize("document", ["docs/architecture.md", "README.md"])
def test_every_path_a_document_names_exists(document: str) -> None:
    text = (ROOT / document).read_text(encoding="utf-8")
    missing = sorted({m for m in _PATH.findall(text) if not (ROOT / m.rstrip("/")).exists()})
    assert not missing, f"{document} names paths that do not exist: {missing}"


def test_production_docstrings_name_only_modules_that_exist() -> None:
    # ``:mod:`es_framework.x.y``` and friends: a moved module leaves no stale reference behind.
    reference = re.compile(r":(?:mod|func|class|data|meth|attr):`~?((?:es_framework|strategies|identity)(?:\.\w+)+)`")
    stale: list[str] = []
    for module in _modules():
        for name in reference.findall(module.read_text(encoding="utf-8")):
            if not _resolves(name):
                stale.append(f"{module.relative_to(ROOT)}: {name}")
    assert not stale, "docstrings name what does not exist:\n" + "\n".join(stale)


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    # The longest prefix that is a module or package; what follows must be a name defined in it.
    for cut in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:cut])
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                rest = parts[cut:]
                if not rest:
                    return True
                # Defined or re-exported there (a package face imports what it shows).
                return re.search(rf"\b{re.escape(rest[0])}\b", candidate.read_text(encoding="utf-8")) is not None
    return False
