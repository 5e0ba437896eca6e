"""Elasticsearch's heap from ``--elasticsearchRam``: half of what the executor and Elasticsearch's
launcher leave, below the compressed-oops threshold (``MachineDependentHeap.MAX_HEAP_SIZE``, 31 GB)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from es_framework.config.record import (
    EXECUTOR_MEMORY_MB,
    HEAP_CAP_MB,
    LAUNCHER_MEMORY_MB,
    NODE_MEMORY_OVERHEAD_MB,
    heap_mb_for,
)
from tests.config.support import cfg


def test_the_constants_are_elasticsearchs() -> None:
    assert HEAP_CAP_MB == 31 * 1024  # MachineDependentHeap: MAX_HEAP_SIZE = 31 GB
    assert LAUNCHER_MEMORY_MB == 100  # OverheadSystemMemoryInfo.SERVER_CLI_OVERHEAD
    assert NODE_MEMORY_OVERHEAD_MB == EXECUTOR_MEMORY_MB + LAUNCHER_MEMORY_MB == 164


@pytest.mark.parametrize(
    ("mem_mb", "heap_mb"),
    [
        # small: what is left is small; never below 1 (a warning at start says so)
        (100, 1),
        (165, 1),
        (256, 46),
        (1024, 430),
        # typical
        (2048, 942),
        (8192, 4014),
        (16384, 8110),
        # the cap: reached at 63652 MB, and everything above goes to the page cache
        (63651, 31743),
        (63652, 31744),
        (64 * 1024, 31744),
        (128 * 1024, 31744),
        (1024 * 1024, 31744),
    ],
)
def test_heap_for_small_typical_and_large_nodes(mem_mb: float, heap_mb: int) -> None:
    assert heap_mb_for(mem_mb) == heap_mb
    assert cfg(elasticsearchRam=f"{mem_mb:g}").heap_mb == heap_mb


def test_more_than_64_gb_never_crosses_the_compressed_oops_threshold() -> None:
    assert heap_mb_for(65 * 1024) * 1024 * 1024 < 32 * 1024**3
    assert heap_mb_for(65 * 1024) == heap_mb_for(500 * 1024)


@given(st.floats(min_value=0.001, max_value=10_000_000, allow_nan=False))
def test_heap_leaves_room_and_grows_with_memory(mem_mb: float) -> None:
    heap = heap_mb_for(mem_mb)
    assert 1 <= heap <= HEAP_CAP_MB
    if mem_mb >= NODE_MEMORY_OVERHEAD_MB + 2:
        # The executor, the launcher and as much again as the heap fit in the container.
        assert 2 * heap + NODE_MEMORY_OVERHEAD_MB <= mem_mb
    assert heap_mb_for(mem_mb + 1) >= heap
