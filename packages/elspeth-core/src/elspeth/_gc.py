"""Fewer garbage collections while a run's rows are worked on."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["fewer_collections"]

YOUNG = 10_000
"""Net container allocations between collections of the youngest generation while rows run."""

_depth = 0  # blocks open now (runs may overlap in one process)
_before: tuple[int, ...] = ()  # the thresholds when the first of them began


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Collect the youngest generation every 10,000 allocations instead of CPython's 700, for the block.

    Rows at high concurrency allocate in bursts (a turn of the event loop sends dozens of requests,
    the next reads their replies): at 700 the collector runs hundreds of times a run, promotes
    short-lived objects to older generations and triggers full collections, each of which scans every
    module and plugin loaded (60 to 150 ms here). At 10,000 the same cycles are still collected, a
    few megabytes later at most (memory stays flat: ``benchmarks/batch_memory``). A higher threshold
    the process set itself, or a disabled collector, is left alone; the old thresholds come back when
    the outermost block ends.
    """
    global _depth, _before
    if _depth == 0:
        _before = gc.get_threshold()
        if _before[0] < YOUNG:
            gc.set_threshold(YOUNG, *_before[1:])
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            gc.set_threshold(*_before)
