"""``elspeth.Spool`` and ``elspeth.SpoolWriter``: the disk-backed record stream the batch orchestrator returns."""

from __future__ import annotations

import asyncio
import gc
import pickle
import random
from pathlib import Path
from typing import Any

import pytest

from elspeth import Cancel, Failure, PluginContext, Record, RunMetadata, RunResult, Spool, SpoolWriter
from elspeth.builtins.sinks import CsvSink, JsonlSink, JsonSummarySink


def record(i: int) -> Record:
    return Record(f"r{i}", {"text": f"row {i} é"}, {"response": f"reply {i}"}, {"n": i})


def test_a_spool_is_a_sequence_read_as_often_as_wanted(tmp_path: Path) -> None:
    spool: Spool[Record] = Spool(tmp_path, chunk_size=4)
    spool.extend(record(i) for i in range(10))
    assert len(spool) == 10
    assert list(spool) == [record(i) for i in range(10)]  # two chunks on disk, two items pending
    spool.finish()
    first, second = list(spool), list(spool)
    assert first == second == [record(i) for i in range(10)]
    assert spool[0] == record(0)
    assert spool[5] == record(5)
    assert spool[-1] == record(9)
    assert spool[2:5] == [record(2), record(3), record(4)]
    assert spool == [record(i) for i in range(10)]
    assert bool(spool)
    assert record(7) in spool
    with pytest.raises(IndexError):
        spool[10]


def test_two_iterations_may_interleave(tmp_path: Path) -> None:
    spool: Spool[int] = Spool(tmp_path, chunk_size=3)
    spool.extend(range(10))
    pairs = list(zip(spool, spool, strict=True))
    assert pairs == [(i, i) for i in range(10)]


def test_an_empty_spool(tmp_path: Path) -> None:
    spool: Spool[int] = Spool(tmp_path)
    spool.finish()
    assert len(spool) == 0
    assert list(spool) == []
    assert not spool
    assert spool == []


def test_memory_holds_at_most_one_chunk_while_writing(tmp_path: Path) -> None:
    spool: Spool[int] = Spool(tmp_path, chunk_size=100)
    spool.extend(range(1050))
    assert len(spool._pending) == 50
    assert spool._chunks_on_disk() == 10


def test_a_finished_spool_takes_no_more_items(tmp_path: Path) -> None:
    spool: Spool[int] = Spool(tmp_path)
    spool.append(1)
    spool.finish()
    with pytest.raises(ValueError, match="finished or closed"):
        spool.append(2)


def test_close_removes_the_file_and_empties_the_spool(tmp_path: Path) -> None:
    spool: Spool[int] = Spool(tmp_path, prefix="records")
    spool.extend(range(5000))
    path = spool.path
    assert path.exists()
    assert path.name.startswith(".elspeth-spool-records-")
    spool.close()
    spool.close()  # twice is harmless
    assert not path.exists()
    assert spool.closed
    assert len(spool) == 0
    with pytest.raises(ValueError, match="closed"):
        list(spool)


def test_the_file_goes_when_the_spool_is_garbage_collected(tmp_path: Path) -> None:
    spool: Spool[int] = Spool(tmp_path)
    spool.extend(range(3000))
    path = spool.path
    del spool
    gc.collect()
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_context_manager_closes_it(tmp_path: Path) -> None:
    with Spool[int](tmp_path) as spool:
        spool.append(1)
        path = spool.path
    assert not path.exists()


def test_a_spool_refuses_to_be_pickled(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(Spool(tmp_path))


def test_a_bad_chunk_size_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        Spool(tmp_path, chunk_size=0)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_the_writer_stores_rows_in_input_order_whatever_order_they_finish(tmp_path: Path) -> None:
    seen: list[str] = []

    def ordered(item: Record | Failure) -> Record | Failure:
        seen.append(item.row_id)
        return item

    writer = SpoolWriter(tmp_path, window=1000, on_ordered=ordered)
    positions = list(range(200))
    random.Random(4).shuffle(positions)

    async def main() -> None:
        for i in positions:
            item: Record | Failure = record(i) if i % 7 else Failure(f"r{i}", {}, "llm", "boom")
            await writer.put(i, item)

    run(main())
    writer.finish()
    assert seen == [f"r{i}" for i in range(200)]
    assert [r.row_id for r in writer.records] == [f"r{i}" for i in range(200) if i % 7]
    assert [f.row_id for f in writer.failures] == [f"r{i}" for i in range(0, 200, 7)]


def test_a_row_far_ahead_waits_until_the_window_moves(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, window=4)

    async def main() -> list[str]:
        events: list[str] = []

        async def put(i: int) -> None:
            await writer.put(i, record(i))
            events.append(f"put {i}")

        ahead = asyncio.create_task(put(5))  # 5 >= 0 + 4: must wait for row 0 and 1
        await asyncio.sleep(0.05)
        events.append("row 0 arrives")
        await put(0)
        await asyncio.sleep(0.05)
        events.append("row 1 arrives")
        await put(1)
        await ahead
        return events

    events = run(main())
    assert events == ["row 0 arrives", "put 0", "row 1 arrives", "put 1", "put 5"]
    assert writer.peak_buffered <= 4


def test_none_marks_a_position_that_produced_nothing(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, window=2)

    async def main() -> None:
        await writer.put(1, record(1))
        await writer.put(0, None)
        await writer.put(2, record(2))

    run(main())
    writer.finish()
    assert [r.row_id for r in writer.records] == ["r1", "r2"]


def test_a_cancel_releases_waiting_rows_and_finish_skips_the_gaps(tmp_path: Path) -> None:
    cancel = Cancel()
    writer = SpoolWriter(tmp_path, window=2, cancel=cancel)

    async def main() -> None:
        waiting = asyncio.create_task(writer.put(3, record(3)))  # row 0 will never come
        await asyncio.sleep(0.05)
        assert not waiting.done()
        cancel.set("stop")
        await asyncio.wait_for(waiting, 2)

    run(main())
    writer.finish()
    assert [r.row_id for r in writer.records] == ["r3"]


def test_a_position_put_twice_is_an_error(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path)

    async def main() -> None:
        await writer.put(0, record(0))
        await writer.put(0, record(0))

    with pytest.raises(ValueError, match="put twice"):
        run(main())


def test_numbered_gives_positions_in_input_order(tmp_path: Path) -> None:
    from elspeth import Row

    writer = SpoolWriter(tmp_path)
    rows = [Row("a", {}, 10), Row("b", {}, 20), Row("c", {}, 2)]

    async def main() -> list[tuple[str, int]]:
        return [(row.id, row.index) async for row in writer.numbered(rows)]

    assert run(main()) == [("a", 0), ("b", 1), ("c", 2)]
    writer.close()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("sink", "options"),
    [
        (CsvSink, {"failures_path": "failures.csv"}),
        (JsonlSink, {}),
        (JsonSummarySink, {"include_records": True}),
    ],
)
def test_the_builtin_sinks_write_a_spool_exactly_as_a_list(sink: Any, options: dict[str, Any], tmp_path: Path) -> None:
    records = [record(i) for i in range(25)] + [Record("x", {"other": "=1+1"}, {}, {"deep": {"n": 1.5}})]
    failures = [Failure(f"f{i}", {"text": "t"}, "llm", "boom", [{"attempt": 1, "error": "boom"}]) for i in range(7)]
    spooled_records: Spool[Record] = Spool(tmp_path / "spools", chunk_size=4)
    spooled_records.extend(records)
    spooled_failures: Spool[Failure] = Spool(tmp_path / "spools", chunk_size=4)
    spooled_failures.extend(failures)
    outputs = []
    for name, result in (
        ("list", RunResult(records, failures, {"a": 1}, RunMetadata("r", "n", "batch"))),
        ("spool", RunResult(spooled_records, spooled_failures, {"a": 1}, RunMetadata("r", "n", "batch"))),
    ):
        ctx = PluginContext("r", "n", tmp_path, tmp_path / name)
        written = sink(sink.Options(**options)).write(result, ctx)
        outputs.append([(a.path.name, a.path.read_bytes()) for a in written])
    assert outputs[0] == outputs[1]
    assert b"r24" in outputs[1][0][1]
