"""One page of a list the API answers (``GET /v1/tasks``): ``?offset=N&limit=M``.

Without either parameter the whole list comes back, as before (clients of the older framework read
``/v1/tasks`` as one JSON array); the array stays the answer either way, and ``X-Total-Count`` says
how long the whole list is, so a client with 10,000 nodes can walk it in pages of at most
:data:`MAX_LIMIT`. A bad value is a 400 naming the parameter, never a guess.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar
from urllib.parse import parse_qs

T = TypeVar("T")

#: The largest page one request may ask for.
MAX_LIMIT = 1000
TOTAL_HEADER = "X-Total-Count"


def page(
    query: str, items: Sequence[T], refuse: Callable[[int, str], Exception]
) -> tuple[Sequence[T], tuple[tuple[str, str], ...]]:
    """``items[offset:offset + limit]`` as ``query`` asks, and the headers to send with it."""
    params = parse_qs(query, keep_blank_values=True)

    def number(name: str, default: int, low: int, high: int | None) -> int:
        values = params.get(name)
        if values is None:
            return default
        text = values[-1].strip()
        if len(values) > 1 or not text.isdigit() or int(text) < low or (high is not None and int(text) > high):
            bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
            raise refuse(400, f"{name} must be one whole number {bound}, not {', '.join(values)!r}"[:300])
        return int(text)

    offset = number("offset", 0, 0, None)
    limit = number("limit", len(items), 1, MAX_LIMIT) if "limit" in params else len(items)
    return items[offset : offset + limit], ((TOTAL_HEADER, str(len(items))),)
