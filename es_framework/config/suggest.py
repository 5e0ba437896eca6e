"""Which known name a misspelt one most likely meant: for an unknown ``--flag`` on the command line
(``es_framework/cli.py``) and an unknown ``ES_MESOS_*`` variable (:mod:`es_framework.config.resolve`).

Pure: difflib's similarity ratio over the names, nothing else.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

#: How similar (difflib's ratio, ignoring case) a name must be to an unknown one to be suggested.
SIMILAR_RATIO = 0.6
#: Names within this much of the best ratio are suggested with it (``--x`` may mean either).
RATIO_MARGIN = 0.05


def closest_names(name: str, known: Iterable[str], most: int = 3, *, common_prefix: str = "") -> list[str]:
    """The known names ``name`` most likely meant: those it begins (ignoring case), then the most
    similar ones (difflib's ratio, ignoring case, at least :data:`SIMILAR_RATIO` and within
    :data:`RATIO_MARGIN` of the best); at most ``most``. ``common_prefix``, which every name
    shares (``ES_MESOS_``), is left out of the comparison: it would make any two names similar."""

    def key(text: str) -> str:
        return text.removeprefix(common_prefix).lower()

    lowered = key(name)
    candidates = set(known)
    prefixed = sorted(k for k in candidates if key(k).startswith(lowered)) if lowered else []
    scored = sorted(((difflib.SequenceMatcher(None, lowered, key(k)).ratio(), k) for k in candidates), reverse=True)
    best = scored[0][0] if scored else 0.0
    similar = [k for ratio, k in scored if ratio >= max(SIMILAR_RATIO, best - RATIO_MARGIN) and k not in prefixed]
    return (prefixed + similar)[:most]


def did_you_mean(name: str, known: Iterable[str], *, common_prefix: str = "") -> str:
    """``"; did you mean X?"`` (or ``X or Y``) for the names closest to ``name``, or ``""``."""
    close = closest_names(name, known, common_prefix=common_prefix)
    return f"; did you mean {' or '.join(close)}?" if close else ""
