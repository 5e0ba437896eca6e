"""One page of a list the API answers: ``?offset=N&limit=M``, the same for every list whose length
grows with the cluster (``/v1/tasks``, ``/v1/agents``, ``/v1/volumes``, ``/v1/cluster/endpoints``,
the current rollout's steps in ``/v1/rollouts``; :mod:`es_framework.api.lists`).

Without either parameter the whole list comes back, as before (clients of the older framework read
``/v1/tasks`` as one JSON array); the answer keeps its shape either way, and ``X-Total-Count`` says
how long the whole list is, so a client with 10,000 nodes can walk it in pages of at most
:data:`MAX_LIMIT`. An offset past the end is an empty page with the same total (the client's end
of the walk), not an error. A bad value is a 400 naming the parameter, never a guess.

The lists inside ``GET /v1/cluster`` (one object, polled by the web UI) are not paged but capped at
:data:`CLUSTER_LIST_CAP` entries, with the whole count beside them (:func:`capped`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar
from urllib.parse import parse_qs

T = TypeVar("T")

#: The largest page one request may ask for.
MAX_LIMIT = 1000
TOTAL_HEADER = "X-Total-Count"
#: The most entries of one list ``GET /v1/cluster`` shows (the rest are counted, and listed by the
#: paged endpoints: ``/v1/agents`` for blocked agents, ``/v1/tasks`` for the nodes).
CLUSTER_LIST_CAP = 100

Headers = tuple[tuple[str, str], ...]


def page(query: str, items: Sequence[T], refuse: Callable[[int, str], Exception]) -> tuple[Sequence[T], Headers]:
    """``items[offset:offset + limit]`` as ``query`` asks, and the headers to send with it."""
    return window(items, *bounds(query, refuse))


def window(items: Sequence[T], offset: int, limit: int | None) -> tuple[Sequence[T], Headers]:
    """``items[offset:offset + limit]`` (to the end when ``limit`` is None) and the total's header,
    for a list whose ``query`` was checked with :func:`bounds` before the list was built."""
    end = len(items) if limit is None else offset + limit
    return items[offset:end], total_header(len(items))


def total_header(total: int) -> Headers:
    return ((TOTAL_HEADER, str(total)),)


def bounds(query: str, refuse: Callable[[int, str], Exception]) -> tuple[int, int | None]:
    """The ``offset`` (0 when not given) and ``limit`` (None when not given: to the end) of ``query``."""
    params = parse_qs(query, keep_blank_values=True)

    def number(name: str, low: int, high: int | None) -> int | None:
        values = params.get(name)
        if values is None:
            return None
        text = values[-1].strip()
        if len(values) > 1 or not text.isdigit() or int(text) < low or (high is not None and int(text) > high):
            bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
            raise refuse(400, f"{name} must be one whole number {bound}, not {', '.join(values)!r}"[:300])
        return int(text)

    return number("offset", 0, None) or 0, number("limit", 1, MAX_LIMIT)


def capped(items: Sequence[T], cap: int = CLUSTER_LIST_CAP) -> tuple[Sequence[T], int]:
    """The first ``cap`` of ``items`` and how many there are in all."""
    return items[:cap], len(items)
