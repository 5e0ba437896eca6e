from __future__ import annotations

import random

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from identity import MAX_RESERVE_GAP, NodeIdAllocator, NodeIdError


def test_ids_start_at_one_and_are_lowest_free() -> None:
    allocator = NodeIdAllocator()
    assert [allocator.allocate() for _ in range(3)] == [1, 2, 3]
    allocator.release(2)
    assert allocator.allocate() == 2
    allocator.release(1)
    allocator.release(3)
    assert allocator.allocate() == 1
    assert allocator.allocate() == 3
    assert allocator.allocate() == 4


def test_release_of_replaced_node_recycles_its_id() -> None:
    allocator = NodeIdAllocator([1, 2, 3])
    allocator.release(2)
    assert 2 not in allocator
    assert allocator.lowest_free == 2
    assert allocator.allocate() == 2
    assert list(allocator) == [1, 2, 3]


def test_contains_len_iter() -> None:
    allocator = NodeIdAllocator()
    allocator.reserve(5)
    allocator.reserve(2)
    assert len(allocator) == 2
    assert 5 in allocator and 2 in allocator
    assert 1 not in allocator and 3 not in allocator and 10**9 not in allocator
    assert 0 not in allocator and -1 not in allocator and "2" not in allocator and True not in allocator
    assert list(allocator) == [2, 5]
    assert allocator.highest == 5
    assert allocator.allocate() == 1
    assert allocator.allocate() == 3
    assert allocator.allocate() == 4
    assert allocator.allocate() == 6


def test_reserve_recovers_state_and_allocate_skips_reserved() -> None:
    allocator = NodeIdAllocator([1, 3, 4])
    assert allocator.allocate() == 2
    assert allocator.allocate() == 5


def test_empty_allocator() -> None:
    allocator = NodeIdAllocator()
    assert len(allocator) == 0
    assert allocator.highest == 0
    assert allocator.lowest_free == 1
    assert list(allocator) == []


@pytest.mark.parametrize("bad", [0, -1, -100])
def test_non_positive_ids_are_refused_everywhere(bad: int) -> None:
    allocator = NodeIdAllocator([1])
    with pytest.raises(NodeIdError, match="1 or greater"):
        allocator.reserve(bad)
    with pytest.raises(NodeIdError, match="1 or greater"):
        allocator.release(bad)
    assert list(allocator) == [1]


@pytest.mark.parametrize("bad", [1.0, "1", True, None])
def test_non_integer_ids_are_refused(bad: object) -> None:
    allocator = NodeIdAllocator()
    with pytest.raises(NodeIdError, match="integer"):
        allocator.reserve(bad)  # type: ignore[arg-type]
    assert len(allocator) == 0


def test_reserving_a_taken_id_is_an_error_and_changes_nothing() -> None:
    allocator = NodeIdAllocator([1, 2])
    with pytest.raises(NodeIdError, match="node id 2 is already taken"):
        allocator.reserve(2)
    assert list(allocator) == [1, 2] and len(allocator) == 2


def test_releasing_a_free_id_is_an_error_and_changes_nothing() -> None:
    allocator = NodeIdAllocator([1, 3])
    with pytest.raises(NodeIdError, match="node id 2 is not taken"):
        allocator.release(2)
    with pytest.raises(NodeIdError, match="node id 99 is not taken"):
        allocator.release(99)
    assert list(allocator) == [1, 3] and len(allocator) == 2


def test_reserve_far_above_use_is_refused_without_allocating() -> None:
    allocator = NodeIdAllocator([1])
    before = allocator.capacity_bits
    with pytest.raises(NodeIdError, match="more than 10000000 above the highest id in use"):
        allocator.reserve(1 + MAX_RESERVE_GAP + 1)
    assert allocator.capacity_bits == before
    assert list(allocator) == [1]
    with pytest.raises(NodeIdError):
        NodeIdAllocator().reserve(10**12)


def test_reserve_at_the_bound_is_allowed() -> None:
    allocator = NodeIdAllocator()
    allocator.reserve(MAX_RESERVE_GAP)
    assert MAX_RESERVE_GAP in allocator
    assert allocator.allocate() == 1
    # The bound is relative to what is in use, so the allocator remains unbounded.
    allocator.reserve(2 * MAX_RESERVE_GAP)
    assert allocator.highest == 2 * MAX_RESERVE_GAP


def test_one_million_ids_in_a_row_then_recycled() -> None:
    allocator = NodeIdAllocator()
    count = 1_000_000
    last = 0
    for _ in range(count):
        last = allocator.allocate()
    assert last == count
    assert len(allocator) == count
    assert allocator.highest == count
    # Memory stays near one bit per id: at most 1.25 bits (the growth step) plus one word.
    assert allocator.capacity_bits <= count * 1.25 + 64
    rng = random.Random(7)
    freed = sorted(rng.sample(range(1, count + 1), 1000))
    for node_id in freed:
        allocator.release(node_id)
    assert len(allocator) == count - 1000
    assert [allocator.allocate() for _ in range(1000)] == freed
    assert allocator.allocate() == count + 1


class AllocatorMachine(RuleBasedStateMachine):
    """The allocator against a plain set: same answers for any sequence of operations."""

    def __init__(self) -> None:
        super().__init__()
        self.allocator = NodeIdAllocator()
        self.model: set[int] = set()

    def _model_lowest_free(self) -> int:
        candidate = 1
        while candidate in self.model:
            candidate += 1
        return candidate

    @rule()
    def allocate(self) -> None:
        expected = self._model_lowest_free()
        assert self.allocator.allocate() == expected
        self.model.add(expected)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def release_taken(self, data: st.DataObject) -> None:
        node_id = data.draw(st.sampled_from(sorted(self.model)))
        self.allocator.release(node_id)
        self.model.discard(node_id)

    @rule(node_id=st.integers(min_value=-3, max_value=300))
    def release_any(self, node_id: int) -> None:
        if node_id in self.model:
            self.allocator.release(node_id)
            self.model.discard(node_id)
        else:
            with pytest.raises(NodeIdError):
                self.allocator.release(node_id)

    @rule(node_id=st.integers(min_value=-3, max_value=300))
    def reserve(self, node_id: int) -> None:
        if node_id >= 1 and node_id not in self.model:
            self.allocator.reserve(node_id)
            self.model.add(node_id)
        else:
            with pytest.raises(NodeIdError):
                self.allocator.reserve(node_id)

    @invariant()
    def same_as_model(self) -> None:
        assert len(self.allocator) == len(self.model)
        assert list(self.allocator) == sorted(self.model)
        assert self.allocator.highest == max(self.model, default=0)
        assert self.allocator.lowest_free == self._model_lowest_free()
        for probe in (1, 2, 3, 50, 301):
            assert (probe in self.allocator) == (probe in self.model)


AllocatorMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)
TestAllocatorAgainstModel = AllocatorMachine.TestCase
