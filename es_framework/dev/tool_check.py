"""``python -m <harness> --check``: the one command line of the test harnesses' own checks.

``scripts/test.sh`` runs it to learn whether a real service can run here (and installs what is
missing); it prints why not and exits 1, or exits 0.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


def check_main(argv: list[str], problem: Callable[[], str | None], module: str) -> int:
    if argv == ["--check"]:
        found = problem()
        if found:
            print(found, file=sys.stderr)
            return 1
        return 0
    print(f"usage: python -m {module} --check", file=sys.stderr)
    return 2
