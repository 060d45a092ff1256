"""The ``redis_stream`` sink: each result added to a Redis stream as it finishes, keyed by message id.

Each group of results is one ``MULTI``/``EXEC``: the ``XADD`` of every result and the ``HSET`` of its
message id into ``ids_key``, so the stream and the record of what it holds never disagree, and
:meth:`RedisStreamSink.holds` answers a restart from that hash. An entry's ``kind`` is ``result``, or
``window`` for a streaming window's aggregates (a record of group ``window``, id ``window:NAME:SEQ``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field

from elspeth import Artifact, Failure, PluginContext, Record, RunResult, to_json
from elspeth_stream_redis.connection import RedisOptions, connect, with_retries

__all__ = ["RedisStreamSink"]

WINDOW_GROUP = "window"  # the group of a streaming window's record (elspeth-orchestrator-streaming's windows)


def _entry(item: Record | Failure) -> dict[str, str]:
    if isinstance(item, Record):
        doc: dict[str, Any] = {"inputs": item.inputs, "outputs": item.outputs, "metrics": item.metrics}
        kind = "window" if item.group == WINDOW_GROUP else "result"
        return {"row_id": item.row_id, "kind": kind, "status": "ok", "result": to_json(doc)}
    doc = {"inputs": item.inputs, "stage": item.stage, "error": item.error, "outputs": item.output}
    return {"row_id": item.row_id, "kind": "result", "status": "failed", "result": to_json(doc)}


class RedisStreamSink:
    """Each result added to a Redis stream as it finishes, keyed by message id."""

    name = "redis_stream"

    class Options(RedisOptions):
        """Options of the ``redis_stream`` sink."""

        ids_key: str | None = Field(None, description="the hash of message ids the stream holds (default STREAM:ids)")
        maxlen: int | None = Field(None, ge=1, description="trim the stream to about this many entries")
        include_failures: bool = Field(True, description="add failed messages too, with status 'failed'")
        results: bool = Field(True, description="add the messages' results (kind 'result')")
        windows: bool = Field(True, description="add the windows' aggregates (kind 'window')")

    def __init__(self, options: Options) -> None:
        self.options = options
        self._client: Any = None
        self.ids_key = options.ids_key or f"{options.stream}:ids"

    async def open(self, ctx: PluginContext) -> None:
        """Reach the server before the first result."""
        self._client = await connect(self.options, "sink 'redis_stream'")

    async def emit(self, items: Sequence[Record | Failure]) -> None:
        """One transaction: ``XADD`` each result and remember its id (a retry leaves out what arrived)."""
        wanted = [i for i in items if self._wanted(i)]
        opts = self.options
        first = True

        async def add() -> None:
            nonlocal first
            todo = wanted
            if not first:  # a lost reply may hide a transaction that was applied: add only what is not there
                held = await self.holds([i.row_id for i in wanted])
                todo = [i for i in wanted if i.row_id not in held]
            first = False
            pipe = self._client.pipeline(transaction=True)
            for item in todo:
                pipe.xadd(opts.stream, _entry(item), maxlen=opts.maxlen, approximate=True)
                pipe.hset(self.ids_key, item.row_id, "1")
            await pipe.execute()

        if wanted:
            await with_retries("XADD", add, opts.retry_max_s)

    def _wanted(self, item: Record | Failure) -> bool:
        if isinstance(item, Record) and item.group == WINDOW_GROUP:
            return self.options.windows
        return self.options.results and (self.options.include_failures or isinstance(item, Record))

    async def holds(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` the stream already holds (from ``ids_key``)."""
        if not ids:
            return set()
        found = await self._client.hmget(self.ids_key, list(ids))
        return {row_id for row_id, mark in zip(ids, found, strict=True) if mark is not None}

    async def write(self, result: RunResult, ctx: PluginContext) -> list[Artifact]:
        """At the run's end: close the connection (the results are in the stream already; no file)."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        return []
