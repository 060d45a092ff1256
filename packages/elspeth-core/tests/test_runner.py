"""The row runner: bounded concurrency, every row once, cancellation, and sync code kept off the loop."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import pytest

from elspeth import Cancel, Row, inline, invoke, iterate_rows, run_rows


def rows(n: int) -> list[Row]:
    return [Row(f"r{i}", {"i": i}, i) for i in range(n)]


class InFlight:
    def __init__(self) -> None:
        self.now = 0
        self.max = 0
        self.seen: list[str] = []

    async def handle(self, row: Row) -> None:
        self.now += 1
        self.max = max(self.max, self.now)
        await asyncio.sleep(0.001 * (row.index % 3))
        self.seen.append(row.id)
        self.now -= 1


@pytest.mark.parametrize("concurrency", [1, 3, 16])
def test_never_more_rows_in_flight_than_the_limit(concurrency: int) -> None:
    meter = InFlight()
    started = asyncio.run(run_rows(rows(60), meter.handle, concurrency=concurrency))
    assert started == 60
    assert meter.max == concurrency  # reached, never exceeded


def test_every_row_is_handled_exactly_once() -> None:
    meter = InFlight()
    asyncio.run(run_rows(rows(500), meter.handle, concurrency=32))
    counts = Counter(meter.seen)
    assert len(counts) == 500
    assert set(counts.values()) == {1}


def test_more_workers_than_rows() -> None:
    meter = InFlight()
    assert asyncio.run(run_rows(rows(2), meter.handle, concurrency=50)) == 2
    assert sorted(meter.seen) == ["r0", "r1"]


def test_cancel_stops_new_rows_and_lets_rows_in_flight_finish() -> None:
    cancel = Cancel()
    started: list[int] = []
    finished: list[int] = []
    after_cancel: list[int] = []

    async def handle(row: Row) -> None:
        if cancel.is_set():
            after_cancel.append(row.index)
        started.append(row.index)
        if row.index == 5:
            cancel.set("budget reached")
            cancel.set("a later reason")
        await asyncio.sleep(0.01)
        finished.append(row.index)

    count = asyncio.run(run_rows(rows(100), handle, concurrency=4, cancel=cancel))
    assert after_cancel == []
    assert sorted(finished) == sorted(started)  # nothing in flight was abandoned
    assert count == len(started) < 100
    assert cancel.reason == "budget reached"


def test_a_child_cancel_follows_its_parent_but_not_the_reverse() -> None:
    run, experiment = Cancel(), Cancel()
    child = Cancel(parent=run)
    other = Cancel(parent=experiment)
    other.set("early stop")
    assert not experiment.is_set()
    run.set("ctrl-c")
    assert child.is_set()
    assert child.reason is None  # the reason is the parent's


def test_an_error_escaping_a_row_is_raised_after_rows_in_flight_finish() -> None:
    finished: list[int] = []
    begun: list[int] = []

    async def handle(row: Row) -> None:
        begun.append(row.index)
        if row.index == 3:
            await asyncio.sleep(0.005)
            raise KeyError("orchestrator bug")
        await asyncio.sleep(0.02)
        finished.append(row.index)

    with pytest.raises(KeyError, match="orchestrator bug"):
        asyncio.run(run_rows(rows(50), handle, concurrency=4))
    assert sorted(finished) == [i for i in begun if i != 3]  # no row in flight was cut off
    assert len(begun) < 50  # no new rows after the error


def test_async_iterable_source() -> None:
    async def source() -> AsyncIterator[Row]:
        for row in rows(40):
            await asyncio.sleep(0)
            yield row

    meter = InFlight()
    assert asyncio.run(run_rows(source(), meter.handle, concurrency=5)) == 40
    assert sorted(meter.seen) == sorted(r.id for r in rows(40))


def test_sync_generator_is_read_off_the_loop_in_chunks() -> None:
    threads: set[int] = set()

    def source() -> Iterator[Row]:
        for row in rows(600):  # more than one chunk of 256
            threads.add(threading.get_ident())
            yield row

    async def main() -> list[Row]:
        return [row async for row in iterate_rows(source())]

    out = asyncio.run(main())
    assert [r.index for r in out] == list(range(600))
    assert threading.get_ident() not in threads


def test_rows_are_pulled_lazily() -> None:
    pulled = 0

    async def source() -> AsyncIterator[Row]:
        nonlocal pulled
        for row in rows(1000):
            pulled += 1
            yield row

    async def main() -> int:
        gate = asyncio.Event()

        async def handle(row: Row) -> None:
            await gate.wait()

        task = asyncio.create_task(run_rows(source(), handle, concurrency=2))
        for _ in range(20):
            await asyncio.sleep(0)
        seen = pulled
        gate.set()
        await task
        return seen

    assert asyncio.run(main()) <= 2 * 2 + 2 + 1  # queue of twice the limit, rows in flight, one more
    assert pulled == 1000


def test_sync_methods_run_in_a_worker_thread_and_inline_ones_on_the_loop() -> None:
    where: dict[str, int] = {}

    def blocking() -> str:
        where["sync"] = threading.get_ident()
        return "sync"

    @inline
    def cheap() -> str:
        where["inline"] = threading.get_ident()
        return "inline"

    async def coroutine() -> str:
        where["async"] = threading.get_ident()
        return "async"

    async def main() -> tuple[int, list[str]]:
        results = [await invoke(blocking), await invoke(cheap), await invoke(coroutine)]
        return threading.get_ident(), results

    loop_thread, results = asyncio.run(main())
    assert results == ["sync", "inline", "async"]
    assert where["sync"] != loop_thread
    assert where["inline"] == where["async"] == loop_thread


def test_a_blocking_sync_method_does_not_hold_up_other_rows() -> None:
    import time

    def slow_plugin(row: Row) -> None:
        time.sleep(0.1)

    async def handle(row: Row) -> None:
        await invoke(slow_plugin, row)

    started = time.perf_counter()
    asyncio.run(run_rows(rows(8), handle, concurrency=8))
    assert time.perf_counter() - started < 0.5  # eight 100 ms sleeps overlap in threads


def test_invoke_awaits_a_sync_function_that_returns_an_awaitable() -> None:
    async def later() -> int:
        return 7

    def returns_coroutine() -> object:
        return later()

    assert asyncio.run(invoke(returns_coroutine)) == 7


def test_a_failing_source_is_raised_as_itself_after_the_rows_in_flight_finish() -> None:
    finished: list[int] = []

    async def source() -> AsyncIterator[Row]:
        for row in rows(10):
            yield row
        await asyncio.sleep(0.01)
        raise OSError("partition 3 could not be read")

    async def handle(row: Row) -> None:
        await asyncio.sleep(0.05)
        finished.append(row.index)

    with pytest.raises(OSError, match="partition 3"):  # not an ExceptionGroup
        asyncio.run(run_rows(source(), handle, concurrency=4))
    assert sorted(finished) == list(range(10))  # every row begun was finished, none cut off


def test_a_row_lending_its_slot_gets_a_stand_in_and_the_pool_shrinks_back() -> None:
    from elspeth.orchestration.runner import waiting_out

    in_flight = peak = 0
    order: list[int] = []

    async def handle(row: Row) -> None:
        nonlocal in_flight, peak
        if row.index < 3:
            await waiting_out(0.05)  # three rows back off at once: three stand-ins run meanwhile
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.005)
        in_flight -= 1
        order.append(row.index)

    assert asyncio.run(run_rows(rows(60), handle, concurrency=3)) == 60
    assert peak <= 3  # the rows back from their backoff waited for slots: never more than three working
    first_back = min(order.index(i) for i in range(3))
    assert first_back >= 6, f"only {first_back} rows ran while every slot's row waited"
    assert max(order.index(i) for i in range(3)) < 59 - 10  # back, they went before rows not yet begun
