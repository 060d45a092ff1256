"""The ``jsonl_stream`` datasource: JSON Lines messages from standard input, or from a file followed as it grows.

Each line is one message whose id is its line number (or the value of ``id_field``), so a restart
reading the same input from the start finds each message under the same id and the run store's
results are taken over instead of being run again. A line that is not a JSON object is a
:class:`~elspeth.Malformed` message: a failure record with its line number, and the stream goes on.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO, cast

from pydantic import BaseModel, ConfigDict, Field

from elspeth import DeclaredPath, Malformed, PluginContext, Row, Table, inline

__all__ = ["JsonlStream"]

_CHUNK = 1 << 16


class JsonlStream:
    """JSON Lines messages from standard input or from a file, optionally followed as it grows."""

    name = "jsonl_stream"

    class Options(BaseModel):
        """Options of the ``jsonl_stream`` datasource."""

        model_config = ConfigDict(extra="forbid")

        path: str = Field("-", description="the JSON Lines file, relative to the settings file; '-' is standard input")
        follow: bool = Field(
            False, description="at the end of the file, wait for more lines (as `tail -f`) instead of ending"
        )
        fields: list[str] = Field(
            default_factory=list, description="the fields messages carry, which prompts and processors may use"
        )
        id_field: str | None = Field(
            None, description="the field holding each message's id (default: its line number)", min_length=1
        )
        poll_seconds: float = Field(0.2, gt=0, le=10, description="with follow, how often to look for new lines")

    def __init__(self, options: Options) -> None:
        self.options = options

    def input_paths(self, ctx: PluginContext) -> list[DeclaredPath]:
        """The file read, which no output of the run may replace (none for standard input)."""
        return [] if self.options.path == "-" else [DeclaredPath("path", ctx.input_path(self.options.path))]

    def load(self, ctx: PluginContext) -> Table:
        """The declared fields and the messages, read lazily (the file must exist unless followed)."""
        opts = self.options
        path = None if opts.path == "-" else ctx.input_path(opts.path)
        if path is not None and not opts.follow and not path.is_file():
            raise FileNotFoundError(f"file not found: {path}")
        # a streaming source's rows may hold Malformed messages among the rows (elspeth.streams)
        rows = cast(AsyncIterable[Row], _Lines(path, opts))
        return Table(columns=list(opts.fields), rows=rows, source=str(path or "standard input"))


class _Lines:
    """The messages of one input, read on each pass from its start."""

    lag_unit = "bytes"

    def __init__(self, path: Path | None, options: JsonlStream.Options) -> None:
        self.path, self.options = path, options
        self._handle: BinaryIO | None = None
        self._left: int | None = None  # the unread bytes when the file was closed

    @inline
    def lag(self) -> int | None:
        """The file's bytes not read yet (for the progress display); None for standard input, which cannot say."""
        handle = self._handle
        if handle is None or handle.closed:
            return self._left
        return max(0, os.fstat(handle.fileno()).st_size - handle.tell())

    async def __aiter__(self) -> AsyncIterator[Row | Malformed]:
        number = 0
        async for line in self._raw_lines():
            number += 1
            if line.strip():
                yield self._message(number, line)

    def _message(self, number: int, line: bytes) -> Row | Malformed:
        where = f"line {number}"
        try:
            data = json.loads(line)
        except ValueError as exc:
            return Malformed(where, f"{where}: not JSON ({exc})", line[:200].decode("utf-8", "replace"))
        if not isinstance(data, dict):
            return Malformed(where, f"{where}: a JSON {type(data).__name__}, not an object", line[:200].decode())
        key = self.options.id_field
        if key is None:
            return Row(str(number), data, number - 1)
        if data.get(key) in (None, ""):
            return Malformed(where, f"{where}: no id in field '{key}' (id_field)", line[:200].decode())
        return Row(str(data[key]), data, number - 1)

    async def _raw_lines(self) -> AsyncIterator[bytes]:
        if self.path is None:
            async for line in _split(_read_stdin, follow=False, poll=0):
                yield line
            return
        while self.options.follow and not self.path.exists():
            await asyncio.sleep(self.options.poll_seconds)
        handle = self._handle = self.path.open("rb")
        try:
            async for line in _split(
                lambda: handle.read(_CHUNK), follow=self.options.follow, poll=self.options.poll_seconds
            ):
                yield line
        finally:
            self._left = self.lag()
            handle.close()


async def _read_stdin() -> bytes:
    stream: BinaryIO = sys.stdin.buffer
    return await asyncio.to_thread(stream.read1, _CHUNK)  # type: ignore[attr-defined]


async def _split(read: Any, *, follow: bool, poll: float) -> AsyncIterator[bytes]:
    """Complete lines of what ``read()`` returns; a last line without its newline waits for it when following."""
    rest = b""
    while True:
        chunk = read()
        if asyncio.iscoroutine(chunk):
            chunk = await chunk
        if not chunk:
            if not follow:
                break
            await asyncio.sleep(poll)
            continue
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            yield line
    if rest:
        yield rest
