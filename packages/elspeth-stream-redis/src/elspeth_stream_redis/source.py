"""The ``redis_stream`` datasource: a Redis stream read through a consumer group, acked after each commit.

A restarted consumer first reads again its own pending entries (delivered before a kill, never
acknowledged), then new ones; the streaming orchestrator takes over those whose results the run
store already has. ``XACK`` is sent only for messages whose results are committed and emitted. A
connection lost mid-stream is retried with backoff and reading goes on where it was.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from typing import Any, cast

from pydantic import Field

from elspeth import Malformed, PluginContext, Row, Table
from elspeth_stream_redis.connection import RedisOptions, connect, with_retries

__all__ = ["RedisStreamSource"]


class RedisStreamSource:
    """Messages of a Redis stream read through a consumer group, acknowledged after their commit."""

    name = "redis_stream"

    class Options(RedisOptions):
        """Options of the ``redis_stream`` datasource."""

        group: str = Field("elspeth", min_length=1, description="the consumer group (made, with the stream, if new)")
        consumer: str = Field("elspeth-1", min_length=1, description="this consumer's name within the group")
        fields: list[str] = Field(default_factory=list, description="the fields messages carry, for the prompts")
        data_field: str | None = Field(
            "data", description="the entry's field holding the message as a JSON object (None: the entry's fields)"
        )
        count: int = Field(100, ge=1, le=10_000, description="entries asked for per read")
        block_ms: int = Field(1000, ge=1, description="how long one read waits for new entries")
        end_when_idle_s: float | None = Field(
            None, gt=0, description="end the stream once no entry has come for this long (default: never)"
        )

    def __init__(self, options: Options) -> None:
        self.options = options
        self._client: Any = None

    async def load(self, ctx: PluginContext) -> Table:
        """Reach the server (exit 2 naming the setting if it cannot), make the group if it is new."""
        import redis.asyncio as redis

        opts = self.options
        self._client = await connect(opts, "datasource")
        try:
            await self._client.xgroup_create(opts.stream, opts.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):  # the group exists already: carry on where it is
                raise
        rows = cast(AsyncIterable[Row], _Entries(self._client, opts))  # Malformed among the rows (elspeth.streams)
        return Table(columns=list(opts.fields), rows=rows, source=f"redis stream {opts.stream}")

    async def aclose(self) -> None:
        """Close the connection."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class _Entries:
    """The group's entries for this consumer: its pending ones first, then new ones as they come."""

    lag_unit = "messages"

    def __init__(self, client: Any, options: RedisStreamSource.Options) -> None:
        self.client, self.options = client, options

    async def lag(self) -> int | None:
        """The entries of the stream not yet delivered to the group (``XINFO GROUPS``' lag), None if Redis cannot say.

        Redis cannot say (before 7.0, or after entries were deleted in between); the progress display then shows
        no lag rather than a wrong one. A lost server raises, and the display leaves the lag out until it is back.
        """
        for group in await self.client.xinfo_groups(self.options.stream):
            if group.get("name") == self.options.group:
                lag = group.get("lag")
                return None if lag is None else int(lag)
        return None

    async def __aiter__(self) -> AsyncIterator[Row | Malformed]:
        opts = self.options
        after = "0"  # our own pending entries, oldest first, until none is left
        idle_since = time.monotonic()
        while True:
            entries = await self._read(after)
            if after != ">":
                if not entries:
                    after = ">"
                    continue
                after = entries[-1][0]
            elif not entries:
                if opts.end_when_idle_s is not None and time.monotonic() - idle_since >= opts.end_when_idle_s:
                    return
                continue
            idle_since = time.monotonic()
            for entry_id, values in entries:
                yield self._message(entry_id, values)

    async def _read(self, after: str) -> list[tuple[str, dict[str, str] | None]]:
        opts = self.options
        block = opts.block_ms if after == ">" else None

        async def read() -> Any:
            return await self.client.xreadgroup(
                opts.group, opts.consumer, {opts.stream: after}, count=opts.count, block=block
            )

        found = await with_retries("XREADGROUP", read, opts.retry_max_s)
        return list(found[0][1]) if found else []

    def _message(self, entry_id: str, values: dict[str, str] | None) -> Row | Malformed:
        where = f"entry {entry_id}"
        key = self.options.data_field
        if values is None:
            return Malformed(entry_id, f"{where}: deleted from the stream before it was read")
        if key is None:
            return Row(entry_id, dict(values), 0)
        raw = values.get(key)
        if raw is None:
            return Malformed(entry_id, f"{where}: no field '{key}' (data_field)", json.dumps(values)[:200])
        try:
            data = json.loads(raw)
        except ValueError as exc:
            return Malformed(entry_id, f"{where}: field '{key}' is not JSON ({exc})", raw[:200])
        if not isinstance(data, dict):
            return Malformed(
                entry_id, f"{where}: field '{key}' is a JSON {type(data).__name__}, not an object", raw[:200]
            )
        return Row(entry_id, data, 0)

    async def ack(self, ids: Sequence[str]) -> None:
        """``XACK`` these entries: their results are committed and emitted."""
        opts = self.options

        async def xack() -> Any:
            return await self.client.xack(opts.stream, opts.group, *ids)

        if ids:
            await with_retries("XACK", xack, opts.retry_max_s)
