"""The shapes of streaming sources and sinks, so that a broker plugin (Kafka, NATS, Redis Streams) needs no core change.

A *streaming datasource* is an ordinary datasource whose ``load`` returns a :class:`~elspeth.Table` whose
``rows`` never end (or end with the stream: end of file, end of standard input). Each item is a
:class:`~elspeth.Row` whose ``id`` is the message's id (stable across restarts: a broker's offset or
entry id, a file's line number), or a :class:`Malformed` for a message that could not be read, which
the streaming orchestrator records as a failure and goes on. If the rows also have ``ack(ids)``
(:class:`Acknowledges`), the orchestrator calls it with the ids of messages whose results are
committed to the run store and emitted to every streaming sink, never before.

A *streaming sink* is an ordinary sink with ``emit(items)`` (:class:`StreamSink`): results are handed
to it as they finish, in small groups; ``write(result, ctx)`` at the end of the run then closes what it
has open and returns its files. Results are keyed by message id, and the run store remembers which
were emitted, so after a kill a sink is asked (``holds(ids)``) only about the few results whose
emission the kill may have cut short.

Example (the shape of a Kafka source)::

    class KafkaMessages:
        def __init__(self, consumer): self.consumer = consumer

        async def __aiter__(self):
            async for msg in self.consumer:
                key = f"{msg.topic}:{msg.partition}:{msg.offset}"
                try:
                    yield Row(key, json.loads(msg.value), 0)
                except ValueError as exc:
                    yield Malformed(key, f"not JSON: {exc}")

        async def ack(self, ids):
            await self.consumer.commit()  # offsets of the messages handed out and acknowledged
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from elspeth.datatypes import Failure, Record

__all__ = ["Acknowledges", "Malformed", "StreamSink"]


@dataclass(frozen=True, slots=True)
class Malformed:
    """A message a streaming source could not read: recorded as a failure at stage ``source``, and the stream goes on.

    Attributes:
        id: the message's id (a line number for a file: ``"line 12"``).
        reason: why it could not be read, in one line.
        raw: the message as received (its start), kept in the failure's output.

    """

    id: str
    reason: str
    raw: str = ""


@runtime_checkable
class Acknowledges(Protocol):
    """Rows of a streaming source that tell the broker a message is done (Redis ``XACK``, a Kafka offset commit)."""

    async def ack(self, ids: Sequence[str]) -> None:
        """Acknowledge these messages: their results are committed and emitted, the broker may forget them."""
        ...


@runtime_checkable
class StreamSink(Protocol):
    """A sink that takes results as they finish (``emit``), besides the run's end (``write``).

    It may also have ``open(ctx)`` (a :class:`~elspeth.PluginContext`), called once before the first emit.
    """

    async def emit(self, items: Sequence[Record | Failure]) -> None:
        """Write these results now (flushed when it returns: the run store then marks them emitted)."""
        ...

    async def holds(self, ids: Sequence[str]) -> set[str]:
        """Which of these message ids this sink already holds a result for (asked on restart only)."""
        ...
