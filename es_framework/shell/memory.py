"""The process's memory around a state load: pause the cyclic collector while a load builds objects
that all survive, and give the freed pages back to the system after it.

A new leader decodes every node's znode and builds the engine's records from it: about a million
objects at 10,000 nodes, nearly all kept or freed by reference counting (JSON values hold no
cycles). Each generation-2 collection the allocations trigger meanwhile walks every object alive,
which cost a fifth to a third of the load's CPU; :func:`paused_gc` turns the collector off for
the load and back on after it, if it was on.

Once the load is over, :func:`settle_after_load` moves every object alive into the collector's
permanent generation (``gc.freeze``): the state, the engine and the modules stay for the process's
life, and without it the collector's next full round (which the load's allocations have made due)
walks them all right after the load, delaying the reconciliation request by about 0.1 s at 10,000
nodes, and again at each later full round. Frozen objects are still freed by reference counting
when the engine replaces them (the state's values hold no reference cycles); only reference
cycles among the frozen objects are never collected (a little garbage of the start, once: a full
collection first would cost the very time saved).

The decoded document is freed once the records are built, but the C allocator keeps the pages of
its larger blocks (dict tables, the node znodes' bytes) for reuse: :func:`release_free_memory`
asks glibc to return free pages to the system (``malloc_trim(0)``, which since glibc 2.8 releases
free pages anywhere in the heap, not only at its top), about 20 MB at 10,000 nodes. Where the C
library has no ``malloc_trim`` (musl, macOS) it does nothing.

The same holds while the scheduler runs: offers, TaskInfos, status updates and their JSON are
larger blocks that glibc keeps after they are freed. At 10,000 running nodes 15 MB of the
scheduler's 163 MB were such free pages; :class:`PeriodicTrim` gives them back from the engine
thread every :data:`TRIM_EVERY_S` (``malloc_trim`` takes about a millisecond here).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import logging
import time
from collections.abc import Callable, Iterator

log = logging.getLogger("es_framework.shell.memory")


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic collector off for the ``with`` block (on again after it, if it was on)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def settle_after_load() -> None:
    """After a load whose objects stay: freeze what is alive, give the free pages back."""
    gc.freeze()
    release_free_memory()


def release_free_memory() -> bool:
    """Return the C heap's free pages to the system (glibc); False where that is not possible."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    try:
        trim(0)
    except OSError as exc:  # never worth failing the scheduler for
        log.debug("malloc_trim failed: %s", exc)
        return False
    return True


#: How often the engine thread gives the C heap's free pages back.
TRIM_EVERY_S = 30.0


class PeriodicTrim:
    """:func:`release_free_memory` at most every :data:`TRIM_EVERY_S`, from the thread that calls
    :meth:`turn` (the engine thread, at each turn of its loop)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, release: Callable[[], bool] = release_free_memory):
        self._clock = clock
        self._release = release
        self._last = clock()

    def turn(self) -> float:
        """The time now (the clock's), after giving free pages back if it is due."""
        now = self._clock()
        if now - self._last >= TRIM_EVERY_S:
            self._release()
            now = self._last = self._clock()
        return now
