#!/usr/bin/env bash
# The project's test command (README, .ci/run): set up .venv with the development tools, then
# lint, type-check and run the tests. Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/setup.sh --dev

echo "test: ruff" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "test: mypy" >&2
.venv/bin/mypy
echo "test: pytest" >&2
exec .venv/bin/python -m pytest "$@"
