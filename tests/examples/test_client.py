"""``examples/client.py``: usable right after the set-up (or says what to install), and its
docstring's usage names exactly its flags; ``setup.py``'s ``client`` extra installs what it needs."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement

from examples import client

ROOT = Path(__file__).resolve().parents[2]

#: Runs the example as a script with elasticsearch-py hidden, as after ``bash scripts/setup.sh``.
WITHOUT_ELASTICSEARCH = (
    "import runpy, sys\n"
    "sys.modules['elasticsearch'] = None  # import elasticsearch now fails as if it were not installed\n"
    "sys.argv = ['examples/client.py', 'http://127.0.0.1:9']\n"
    "runpy.run_path('examples/client.py', run_name='__main__')\n"
)


def test_without_elasticsearch_py_it_says_how_to_install_it() -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_ELASTICSEARCH], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1 and result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == client.MISSING_CLIENT
    assert "pip install -e '.[client]'" in client.MISSING_CLIENT


def test_the_docstrings_usage_names_exactly_the_flags_it_takes() -> None:
    assert client.__doc__ is not None
    usage = next(line.strip() for line in client.__doc__.splitlines() if line.strip().startswith("python "))
    documented = set(re.findall(r"--[\w-]+", usage))
    parser = client.build_parser()
    actual = {o for action in parser._actions for o in action.option_strings if o.startswith("--")} - {"--help"}
    assert documented == actual


def _extras() -> dict[str, list[str]]:
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "extras_require":
            value = ast.literal_eval(node.value)
            assert isinstance(value, dict)
            return value
    raise AssertionError("setup.py has no extras_require")


def test_the_client_extra_installs_the_client_the_tests_pin() -> None:
    (requirement,) = (Requirement(text) for text in _extras()["client"])
    assert requirement.name == "elasticsearch"
    pins = {
        Requirement(line).name: Requirement(line).specifier
        for line in (ROOT / "requirements-dev.txt").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    (pinned,) = (str(spec.version) for spec in pins["elasticsearch"])
    assert requirement.specifier.contains(pinned)
    # The client's major must be the server's (an 8.x server refuses a 9.x client): never a newer major.
    assert not requirement.specifier.contains("9.0.0") and requirement.specifier.contains("8.0.0")
