"""Redis Streams for Elspeth's streaming orchestrator: a consumer-group source and a sink, through redis-py.

The entry point ``redis_stream = "elspeth_stream_redis.plugin"`` registers the ``redis_stream``
datasource (a consumer group; each message acknowledged only once its result is committed and
emitted) and sink (``XADD``, with each message id remembered in the same transaction).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
