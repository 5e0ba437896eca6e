"""The free-node-id allocator: runtime-unique, recyclable, unbounded ids on a bitarray.

Bit ``i`` stands for node id ``i + 1``. The lowest free id is found with bitarray's C search
starting at a hint, so the scheduler never walks ids one by one in Python and a run of
allocations is linear overall.
"""

from __future__ import annotations

from collections.abc import Iterator

from bitarray import bitarray

#: How far above the highest id in use :meth:`NodeIdAllocator.reserve` may reach. An id beyond
#: this is almost certainly corrupt state or a typo, and honouring it would allocate memory for
#: every id in between (10**7 ids cost about 1.2 MiB; 10**12 would cost 125 GB).
MAX_RESERVE_GAP = 10**7

# Growth is geometric (amortised O(1) per new id) but modest, so memory stays within ~1.25 bits
# per id of the highest id ever taken.
_MIN_GROWTH_BITS = 64
_GROWTH_DIVISOR = 4


class NodeIdError(ValueError):
    """A node id was given that the allocator cannot accept (not positive, free, taken, too far)."""


def _check_node_id(node_id: object) -> int:
    # bool is an int subclass; True as a node id is always a bug.
    if not isinstance(node_id, int) or isinstance(node_id, bool):
        raise NodeIdError(f"node id must be an integer, got {node_id!r}")
    if node_id < 1:
        raise NodeIdError(f"node id must be 1 or greater, got {node_id}")
    return node_id


class NodeIdAllocator:
    """Hands out the lowest free node id, starting at 1, with no upper bound but memory.

    Not thread-safe: the scheduler owns one instance and mutates it from one thread.
    """

    __slots__ = ("_bits", "_hint", "_taken")

    def __init__(self, taken: Iterator[int] | list[int] | tuple[int, ...] | frozenset[int] = ()) -> None:
        self._bits = bitarray(0)
        self._taken = 0
        # Every index below the hint is taken; the lowest free index is at or above it.
        self._hint = 0
        for node_id in taken:
            self.reserve(node_id)

    def allocate(self) -> int:
        """Take and return the lowest free id."""
        index = self._bits.find(0, self._hint) if self._hint < len(self._bits) else -1
        if index < 0:
            index = len(self._bits)
            self._grow_to(index + 1)
        self._bits[index] = 1
        self._taken += 1
        self._hint = index + 1
        return index + 1

    def reserve(self, node_id: int) -> None:
        """Take a specific id, e.g. one recovered from stored state or a running task."""
        node_id = _check_node_id(node_id)
        index = node_id - 1
        if index < len(self._bits):
            if self._bits[index]:
                raise NodeIdError(f"node id {node_id} is already taken")
        else:
            limit = self.highest + MAX_RESERVE_GAP
            if node_id > limit:
                raise NodeIdError(
                    f"refusing to reserve node id {node_id}: it is more than {MAX_RESERVE_GAP} above the "
                    f"highest id in use ({self.highest}); ids this far apart mean corrupt state"
                )
            self._grow_to(index + 1)
        self._bits[index] = 1
        self._taken += 1
        if index == self._hint:
            self._hint = index + 1

    def release(self, node_id: int) -> None:
        """Free an id so that the next :meth:`allocate` may hand it out again."""
        node_id = _check_node_id(node_id)
        index = node_id - 1
        if index >= len(self._bits) or not self._bits[index]:
            raise NodeIdError(f"node id {node_id} is not taken, so it cannot be released")
        self._bits[index] = 0
        self._taken -= 1
        self._hint = min(self._hint, index)

    @property
    def highest(self) -> int:
        """The highest id taken now, or 0 when none is."""
        index = self._bits.find(1, right=True)
        return index + 1

    @property
    def lowest_free(self) -> int:
        """The id :meth:`allocate` would return next, without taking it."""
        index = self._bits.find(0, self._hint) if self._hint < len(self._bits) else -1
        return (len(self._bits) if index < 0 else index) + 1

    @property
    def capacity_bits(self) -> int:
        """Bits allocated for ids (for memory accounting in benchmarks)."""
        return len(self._bits)

    def __contains__(self, node_id: object) -> bool:
        if not isinstance(node_id, int) or isinstance(node_id, bool) or node_id < 1:
            return False
        index = node_id - 1
        return index < len(self._bits) and bool(self._bits[index])

    def __len__(self) -> int:
        return self._taken

    def __iter__(self) -> Iterator[int]:
        """The taken ids in ascending order."""
        return (index + 1 for index in self._bits.search(1))

    def __repr__(self) -> str:
        return f"NodeIdAllocator(taken={self._taken}, highest={self.highest})"

    def _grow_to(self, size: int) -> None:
        current = len(self._bits)
        target = max(size, current + max(_MIN_GROWTH_BITS, current // _GROWTH_DIVISOR))
        self._bits.extend(bitarray(target - current))
        # bitarray(n) is uninitialised memory in older releases; clear only the new tail.
        self._bits[current:] = 0
