"""Entry point of ``elspeth-stream-redis``: the ``redis_stream`` datasource and sink (redis-py loads when used)."""

from __future__ import annotations

from elspeth import Registrar, hookimpl


@hookimpl
def register_datasources(register: Registrar) -> None:
    """Register the ``redis_stream`` datasource."""
    register(
        "elspeth_stream_redis.source:RedisStreamSource",
        name="redis_stream",
        description="Messages of a Redis stream read through a consumer group, acknowledged after their commit.",
    )


@hookimpl
def register_sinks(register: Registrar) -> None:
    """Register the ``redis_stream`` sink."""
    register(
        "elspeth_stream_redis.sink:RedisStreamSink",
        name="redis_stream",
        description="Each result added to a Redis stream as it finishes, keyed by message id.",
    )
