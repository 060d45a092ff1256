"""While rows run, the youngest generation is collected every 10,000 allocations; the old thresholds come back."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from elspeth._gc import YOUNG, fewer_collections


@pytest.fixture(autouse=True)
def thresholds() -> Iterator[tuple[int, ...]]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield gc.get_threshold()
    gc.set_threshold(*before)


def test_the_young_threshold_is_raised_for_the_block_only() -> None:
    with fewer_collections():
        assert gc.get_threshold() == (YOUNG, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_overlapping_runs_restore_what_was_there_before_the_first() -> None:
    first, second = fewer_collections(), fewer_collections()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first run ends while the second goes on
    assert gc.get_threshold() == (YOUNG, 10, 10)
    second.__exit__(None, None, None)
    assert gc.get_threshold() == (700, 10, 10)


def test_a_higher_threshold_the_process_chose_is_left_alone() -> None:
    gc.set_threshold(50_000, 5, 5)
    with fewer_collections():
        assert gc.get_threshold() == (50_000, 5, 5)
    assert gc.get_threshold() == (50_000, 5, 5)


def test_the_thresholds_come_back_when_the_run_raises() -> None:
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("the orchestrator failed")
    assert gc.get_threshold() == (700, 10, 10)


def test_cycles_are_still_collected_inside_the_block() -> None:
    class Node:
        def __init__(self) -> None:
            self.other: Node | None = None

    with fewer_collections():
        gc.collect()
        for _ in range(YOUNG * 3):  # more than the threshold of garbage cycles
            a, b = Node(), Node()
            a.other, b.other = b, a
        alive = sum(isinstance(o, Node) for o in gc.get_objects())
    assert alive <= 2 * YOUNG  # collections still ran: at most about one threshold's worth waits
