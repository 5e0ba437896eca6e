"""The process's memory (``es_framework/shell/memory.py``): free C heap pages given back from the
engine thread at most every TRIM_EVERY_S."""

from __future__ import annotations

from es_framework.shell.memory import TRIM_EVERY_S, PeriodicTrim, release_free_memory


def test_free_pages_go_back_at_most_every_30_s_of_turns() -> None:
    now = [100.0]
    released: list[float] = []

    def release() -> bool:
        released.append(now[0])
        return True

    trim = PeriodicTrim(clock=lambda: now[0], release=release)
    assert trim.turn() == 100.0 and released == []
    now[0] = 100.0 + TRIM_EVERY_S - 0.1
    trim.turn()
    assert released == []
    now[0] = 100.0 + TRIM_EVERY_S
    assert trim.turn() == now[0] and released == [now[0]]
    now[0] += 1.0
    trim.turn()
    assert len(released) == 1  # not again until another 30 s have passed
    now[0] += TRIM_EVERY_S
    trim.turn()
    assert len(released) == 2


def test_the_engine_thread_turns_through_the_trim() -> None:
    # The real release, called as the engine thread does: it never raises, on glibc or elsewhere.
    assert isinstance(PeriodicTrim(clock=iter([0.0, TRIM_EVERY_S, TRIM_EVERY_S]).__next__).turn(), float)


def test_release_says_whether_it_could_give_pages_back() -> None:
    assert release_free_memory() in (True, False)
