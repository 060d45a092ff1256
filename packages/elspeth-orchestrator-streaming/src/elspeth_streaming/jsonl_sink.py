"""The ``jsonl_stream`` sink: each result as a JSON line the moment it is emitted, in files rotated by size or time.

Files are ``<prefix>-000001.jsonl``, ``-000002``, ... in ``directory`` (under the output folder). A run
never appends to a file an earlier process wrote: it starts the next number, after cutting a last line
that a kill left without its newline from the newest file. Lines have the shape of the ``jsonl``
sink's (``status``, ``row_id``, ``inputs``, ``outputs``, ``metrics``; ``stage``, ``error`` for a
failure), so ``row_id`` is the message id, and :meth:`JsonlStreamSink.holds` reads it back on restart.
Each line also has ``kind``: ``result`` for a message's result, ``window`` for a window's aggregates
(``row_id`` ``window:NAME:SEQ``, the figures in ``outputs``); ``results: false`` or ``windows: false``
leaves one kind out, so windows can go to a sink of their own.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, Field

from elspeth import Artifact, DeclaredPath, Failure, PluginContext, Record, RunResult, output_target, to_json
from elspeth_streaming.windows import WINDOW_GROUP

__all__ = ["JsonlStreamSink"]


def _line(item: Record | Failure) -> str:
    if isinstance(item, Record):
        kind = "window" if item.group == WINDOW_GROUP else "result"
        doc: dict[str, Any] = {"kind": kind, "status": "ok", "row_id": item.row_id, "inputs": item.inputs}
        doc |= {"outputs": item.outputs, "metrics": item.metrics}
    else:
        doc = {"kind": "result", "status": "failed", "row_id": item.row_id, "inputs": item.inputs, "stage": item.stage}
        doc |= {"error": item.error, "attempts": item.attempts, "outputs": item.output, "metrics": item.metrics}
    return to_json(doc) + "\n"


class JsonlStreamSink:
    """Each result as a JSON line as soon as it is emitted, in files rotated by size or time."""

    name = "jsonl_stream"

    class Options(BaseModel):
        """Options of the ``jsonl_stream`` sink."""

        model_config = ConfigDict(extra="forbid")

        directory: str = Field("stream", description="the folder of the files, relative to the output folder")
        prefix: str = Field("results", min_length=1, pattern=r"^[A-Za-z0-9_.-]+$", description="the files' names")
        rotate_bytes: int | None = Field(
            64 * 1024 * 1024, ge=1, description="start a new file once the current one holds this many bytes"
        )
        rotate_seconds: float | None = Field(
            None, gt=0, description="start a new file once the current one is this many seconds old"
        )
        include_failures: bool = Field(True, description="write failed messages too, with status 'failed'")
        results: bool = Field(True, description="write the messages' results (kind 'result')")
        windows: bool = Field(True, description="write the windows' aggregates (kind 'window')")
        fsync: bool = Field(False, description="fsync after each emit (survives a power cut, not only a kill)")

    def __init__(self, options: Options) -> None:
        self.options = options
        self._folder: Path | None = None
        self._handle: IO[bytes] | None = None
        self._opened_at = 0.0
        self._number = 0
        self._written: list[Path] = []

    def output_paths(self, ctx: PluginContext) -> list[DeclaredPath]:
        """The first of the files this sink writes (no input of the run may be one of them)."""
        first = f"{self.options.directory}/{self.options.prefix}-000001.jsonl"
        return [DeclaredPath("directory", output_target(ctx, first))]

    def _files(self) -> list[Path]:
        assert self._folder is not None
        return sorted(self._folder.glob(f"{self.options.prefix}-[0-9][0-9][0-9][0-9][0-9][0-9].jsonl"))

    def _start(self) -> None:
        """Find the folder (from ``write``'s context, or the output folder on first use) and the next number."""
        assert self._folder is not None
        self._folder.mkdir(parents=True, exist_ok=True)
        files = self._files()
        if files:
            _cut_partial_line(files[-1])
            self._number = int(files[-1].stem.rsplit("-", 1)[1])

    def open(self, ctx: PluginContext) -> None:
        """Before the first emit: the files go in ``directory`` under the run's output folder."""
        if self._folder is None:
            self._folder = ctx.output_path(self.options.directory)
            self._start()

    def _current(self) -> IO[bytes]:
        opts = self.options
        handle = self._handle
        if handle is not None:
            too_big = opts.rotate_bytes is not None and handle.tell() >= opts.rotate_bytes
            too_old = opts.rotate_seconds is not None and time.monotonic() - self._opened_at >= opts.rotate_seconds
            if not (too_big or too_old):
                return handle
            handle.close()
        assert self._folder is not None
        self._number += 1
        path = self._folder / f"{opts.prefix}-{self._number:06d}.jsonl"
        self._handle = path.open("xb")  # never a file that exists: a restart starts the next number
        self._opened_at = time.monotonic()
        self._written.append(path)
        return self._handle

    async def emit(self, items: Sequence[Record | Failure]) -> None:
        """Append one line per result and flush them to the file (with ``fsync``, to the disk)."""
        if self._folder is None:
            raise RuntimeError("jsonl_stream: emit before open()")
        lines = [_line(i) for i in items if self._wanted(i)]
        if not lines:
            return
        handle = self._current()
        handle.write("".join(lines).encode("utf-8"))
        handle.flush()
        if self.options.fsync:
            os.fsync(handle.fileno())

    def _wanted(self, item: Record | Failure) -> bool:
        if isinstance(item, Record) and item.group == WINDOW_GROUP:
            return self.options.windows
        return self.options.results and (self.options.include_failures or isinstance(item, Record))

    async def holds(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` a file of this sink already has a line for (read on restart, for a few ids)."""
        wanted, found = set(ids), set()
        for path in self._files() if self._folder is not None else []:
            with path.open("rb") as handle:
                for raw in handle:
                    try:
                        row_id = json.loads(raw).get("row_id")
                    except ValueError:
                        continue
                    if row_id in wanted:
                        found.add(row_id)
        return found

    def write(self, result: RunResult, ctx: PluginContext) -> list[Artifact]:
        """At the run's end: close the current file and list the files this run wrote."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        return [Artifact(path, "application/jsonl", self.name) for path in self._written]


def _cut_partial_line(path: Path) -> None:
    """Drop a last line a kill left without its newline (its result was never marked emitted)."""
    with path.open("rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        end = size
        while end > 0:  # back from the end, a block at a time, to the last newline
            start = max(0, end - (1 << 16))
            handle.seek(start)
            block = handle.read(end - start)
            if end == size and block.endswith(b"\n"):
                return
            cut = block.rfind(b"\n")
            if cut >= 0:
                handle.truncate(start + cut + 1)
                return
            end = start
        handle.truncate(0)
