"""A disk-backed, append-only sequence of records: how an orchestrator streams a run of any size.

A :class:`Spool` keeps at most one chunk of items in memory. Every ``chunk_size`` appended items are
pickled into a temporary file as one chunk; reading unpickles one chunk at a time. It is a
:class:`~collections.abc.Sequence`, so a :class:`~elspeth.RunResult` can hold spools as its ``records``
and ``failures``, and every sink that iterates them, calls ``len`` or takes ``failures[0]`` works
unchanged, with memory that stays flat however many rows the run had.

Example::

    from elspeth import Spool

    records: Spool[Record] = Spool(ctx.plugin_context.output_dir, prefix="records")
    for record in produced:
        records.append(record)
    records.finish()                       # no more appends; pending items reach the file
    assert len(records) == sum(1 for _ in records) == sum(1 for _ in records)  # iterable many times
    records.close()                        # or leave it to garbage collection or interpreter exit

The file is created with :func:`tempfile.mkstemp` (readable by its owner only) and removed by
:meth:`close`, when the spool is garbage-collected, or when the interpreter exits, whichever comes
first. Only a killed process leaves it behind; its name starts with ``.elspeth-spool-``.

The file holds pickles written by this process for this process, and is never read from anywhere else.
Items must be picklable (records and failures of plain values are).

:class:`SpoolWriter` is what a streaming orchestrator uses: rows finish out of order when several are
in flight, and it holds each finished row until every earlier one is stored, so the spools are in input
order, while a bounded window makes a row that is far ahead wait, so memory stays flat however slow one
row is. It orders the output only: report each row to the run store as it finishes, before handing it over.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import os
import pickle
import tempfile
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar, overload

from elspeth.datatypes import Failure, Record

if TYPE_CHECKING:
    from elspeth.orchestration.runner import Cancel

__all__ = ["Spool", "SpoolWriter"]

T = TypeVar("T")

_PROTOCOL = pickle.HIGHEST_PROTOCOL


def _discard(handle: IO[bytes], path: str) -> None:
    """Close the write handle and remove the file (the finalizer: it must not refer to the spool)."""
    try:
        handle.close()
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


class Spool(Sequence[T]):
    """An append-only sequence kept in a temporary file, one pickled chunk at a time.

    Args:
        directory: where the temporary file goes (created if missing); None for the system's temp folder.
        chunk_size: items per chunk; memory holds at most one chunk being written and one being read.
        prefix: a word in the file's name, to tell spools apart (``records``, ``failures``).

    Appending is for one writer; iterating, ``len`` and indexing may happen any number of times,
    also while items are still being appended (pending items are read from memory). Not thread-safe
    while appending.
    """

    def __init__(self, directory: str | Path | None = None, *, chunk_size: int = 1000, prefix: str = "") -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
        if directory is not None:
            Path(directory).mkdir(parents=True, exist_ok=True)
        name = f".elspeth-spool-{prefix}-" if prefix else ".elspeth-spool-"
        fd, path = tempfile.mkstemp(dir=directory, prefix=name, suffix=".pkl")
        self._path = path
        self._handle: IO[bytes] = os.fdopen(fd, "wb")
        self._finalizer = weakref.finalize(self, _discard, self._handle, path)
        self.chunk_size = chunk_size
        self._pending: list[T] = []
        self._offsets: list[int] = [0]  # byte offset where each chunk starts, plus the end of the last
        self._ends: list[int] = []  # items stored up to and including each chunk (cumulative)
        self._length = 0
        self._finished = False
        self._cache: tuple[int, list[T]] | None = None  # the last chunk read by index

    # writing ----------------------------------------------------------------------------------
    def append(self, item: T) -> None:
        """Add ``item`` at the end; a full chunk is written to the file.

        Raises:
            ValueError: the spool is finished or closed.

        """
        if self._finished:
            raise ValueError("cannot append to a finished or closed spool")
        self._pending.append(item)
        self._length += 1
        if len(self._pending) >= self.chunk_size:
            self._write_pending()

    def extend(self, items: Iterable[T]) -> None:
        """Append every item of ``items``."""
        for item in items:
            self.append(item)

    def _write_pending(self) -> None:
        if not self._pending:
            return
        blob = pickle.dumps(self._pending, protocol=_PROTOCOL)
        self._handle.write(blob)
        self._offsets.append(self._offsets[-1] + len(blob))
        self._ends.append(self._length)
        self._pending = []

    def finish(self) -> None:
        """Write what is pending and accept no more items. Reading is unaffected; calling twice is harmless."""
        if self._finished:
            return
        self._check_open()
        self._write_pending()
        self._handle.flush()
        self._finished = True

    def close(self) -> None:
        """Remove the file; the spool is empty and unusable afterwards. Calling twice is harmless."""
        self._finalizer()
        self._finished = True
        self._pending = []
        self._cache = None
        self._length = 0
        self._offsets = [0]
        self._ends = []

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run (explicitly, by garbage collection or at exit)."""
        return not self._finalizer.alive

    @property
    def finished(self) -> bool:
        """True once :meth:`finish` or :meth:`close` has run."""
        return self._finished

    @property
    def path(self) -> Path:
        """The temporary file (it no longer exists once the spool is closed)."""
        return Path(self._path)

    def __enter__(self) -> Spool[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # reading ----------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self.closed:
            raise ValueError(f"spool {self._path} is closed")

    def _chunks_on_disk(self) -> int:
        return len(self._ends)

    def _read_chunk(self, reader: IO[bytes], number: int) -> list[T]:
        start, end = self._offsets[number], self._offsets[number + 1]
        reader.seek(start)
        items: list[T] = pickle.loads(reader.read(end - start))  # our own file, written above
        return items

    def _open_reader(self) -> IO[bytes]:
        self._check_open()
        if not self._handle.closed:
            self._handle.flush()
        return open(self._path, "rb")  # closed by the callers' finally blocks

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[T]:
        """Every item in order: the chunks in the file, then the items not yet written."""
        chunks = self._chunks_on_disk()
        pending = list(self._pending)
        if chunks:
            reader = self._open_reader()
            try:
                for number in range(chunks):
                    yield from self._read_chunk(reader, number)
            finally:
                reader.close()
        else:
            self._check_open()
        yield from pending

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        """One item by position (reading only its chunk), or a list of items for a slice."""
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._length))]
        if index < 0:
            index += self._length
        if not 0 <= index < self._length:
            raise IndexError("spool index out of range")
        stored = self._ends[-1] if self._ends else 0
        if index >= stored:
            self._check_open()
            return self._pending[index - stored]
        number = bisect.bisect_right(self._ends, index)
        if self._cache is None or self._cache[0] != number:
            reader = self._open_reader()
            try:
                self._cache = (number, self._read_chunk(reader, number))
            finally:
                reader.close()
        first = self._ends[number - 1] if number else 0
        return self._cache[1][index - first]

    def __bool__(self) -> bool:
        return self._length > 0

    def __eq__(self, other: object) -> bool:
        """Equal to any sequence with the same items in the same order (a list, another spool)."""
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        if len(other) != self._length:
            return False
        return all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # mutable, like a list

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("finished" if self._finished else "open")
        return f"<Spool {self._length} items, {state}, {self._path}>"

    def __reduce__(self) -> Any:
        raise TypeError("a Spool cannot be pickled; iterate it into a list first")


Finished = Record | Failure


class SpoolWriter:
    """Stores finished rows in a records spool and a failures spool, in input order, with bounded memory.

    Each row is put with its position (0, 1, 2, ... in input order). A row is stored once every row
    before it has been stored; until then it waits in a reorder buffer. A row more than ``window``
    positions ahead of the oldest unstored one makes its ``put`` wait, which holds back its worker,
    so the buffer never holds more than ``window`` rows however slow one row is. Put ``None`` for a
    position that produced nothing, so later rows are not held back by it.

    Args:
        directory: where the spools' files go (None: the system's temp folder).
        window: how far ahead of the oldest unstored row a row may finish without waiting.
        cancel: when it is set, waiting stops: rows taken but never begun leave gaps, and
            :meth:`finish` stores what arrived, in order.
        chunk_size: the spools' chunk size.
        on_ordered: called with each row in input order just before it is stored; returns what to
            store (a record may become a failure here, as a uniqueness check needs). Report rows
            (``ctx.commit_rows``, which commits them to the run store) as they finish, before ``put``,
            so that a killed run loses none of the rows waiting here; report them from ``on_ordered``
            only when it decides their outcome, and then a kill repeats the rows that were waiting.

    Example::

        writer = SpoolWriter(ctx.plugin_context.output_dir, window=4 * ctx.concurrency, cancel=ctx.cancel)

        async def handle(row: Row) -> None:
            item = None
            try:
                item = await make_record_or_failure(row)
                report(item)  # ctx.commit_rows(...): in the run store now, not when its turn comes
            finally:
                await writer.put(row.index, item)

        await run_rows(writer.numbered(table.rows), handle, concurrency=ctx.concurrency, cancel=ctx.cancel)
        writer.finish()
        result = RunResult(writer.records, writer.failures, {}, metadata)

    """

    def __init__(
        self,
        directory: str | Path | None = None,
        *,
        window: int = 256,
        cancel: Cancel | None = None,
        chunk_size: int = 1000,
        on_ordered: Callable[[Finished], Finished] | None = None,
    ) -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        self.records: Spool[Record] = Spool(directory, chunk_size=chunk_size, prefix="records")
        self.failures: Spool[Failure] = Spool(directory, chunk_size=chunk_size, prefix="failures")
        self.window = window
        self.cancel = cancel
        self.on_ordered = on_ordered
        self.peak_buffered = 0
        """The most rows the reorder buffer ever held at once."""
        self._next = 0
        self._buffer: dict[int, Finished | None] = {}
        self._moved = asyncio.Event()
        self._error: BaseException | None = None

    async def numbered(self, rows: Iterable[Any] | Any) -> Any:
        """``rows`` (sync or async) with each row's ``index`` set to its position: 0, 1, 2, ... in input order."""
        from elspeth._sync import iterate_rows
        from elspeth.datatypes import Row

        position = 0
        async for row in iterate_rows(rows):
            yield row if row.index == position else Row(row.id, row.data, position)
            position += 1

    def _held_back(self, position: int) -> bool:
        if position < self._next + self.window or self._error is not None:
            return False
        return self.cancel is None or not self.cancel.is_set()

    async def put(self, position: int, item: Finished | None) -> None:
        """Hand over the row at ``position``; waits while it is ``window`` or more ahead of the oldest unstored row.

        Raises:
            ValueError: ``position`` was put before.
            OSError: a spool could not be written (the disk is full); later puts stop waiting.

        """
        while self._held_back(position):
            self._moved.clear()
            # a short timeout, so that a cancel (which leaves gaps) is noticed without a signal
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._moved.wait(), 0.1)
        if position < self._next or position in self._buffer:
            raise ValueError(f"row position {position} was put twice")
        self._buffer[position] = item
        self.peak_buffered = max(self.peak_buffered, len(self._buffer))
        if position == self._next:
            self._drain()

    def _drain(self) -> None:
        while self._next in self._buffer:
            self._store(self._buffer.pop(self._next))
            self._next += 1
        self._moved.set()

    def _store(self, item: Finished | None) -> None:
        if item is None:
            return
        if self.on_ordered is not None:
            item = self.on_ordered(item)
        try:
            if isinstance(item, Failure):
                self.failures.append(item)
            else:
                self.records.append(item)
        except BaseException as exc:
            self._error = exc
            raise

    def finish(self) -> None:
        """Store the rows still buffered (in order, skipping gaps a cancel left) and finish both spools."""
        for position in sorted(self._buffer):
            self._store(self._buffer.pop(position))
            self._next = position + 1
        self.records.finish()
        self.failures.finish()

    def close(self) -> None:
        """Remove both spools' files."""
        self.records.close()
        self.failures.close()
