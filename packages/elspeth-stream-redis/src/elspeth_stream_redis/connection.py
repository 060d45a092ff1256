"""Connecting to Redis: the URL from the settings or the environment, checked once, and retries with backoff."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from elspeth import ConfigError

__all__ = ["RedisOptions", "connect", "with_retries"]

log = logging.getLogger("elspeth.redis_stream")
T = TypeVar("T")


class RedisOptions(BaseModel):
    """Where the Redis server is (shared by the source and the sink)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field("redis://127.0.0.1:6379/0", description="the server's URL (no password here: use url_env)")
    url_env: str | None = Field(None, description="an environment variable holding the URL (with its password)")
    stream: str = Field(min_length=1, description="the stream's key")
    retry_max_s: float = Field(
        5.0, gt=0, description="the longest wait between attempts to reach a server lost mid-stream"
    )


def _url(options: RedisOptions, kind: str) -> tuple[str, str]:
    if options.url_env is None:
        return options.url, f"{kind}.options.url"
    value = os.environ.get(options.url_env)
    if not value:
        raise ConfigError(f"{kind}.options.url_env: the environment variable {options.url_env} is not set")
    return value, f"{kind}.options.url_env ({options.url_env})"


async def connect(options: RedisOptions, kind: str) -> Any:
    """A client that has answered PING.

    Raises:
        ConfigError: the server cannot be reached, naming the setting (``datasource.options.url``).
    """
    import redis.asyncio as redis

    url, setting = _url(options, kind)
    client = redis.Redis.from_url(url, socket_connect_timeout=3, decode_responses=True)
    try:
        await client.ping()
    except (redis.RedisError, OSError) as exc:
        await client.aclose()
        raise ConfigError(f"{setting}: cannot reach the Redis server ({type(exc).__name__}: {exc})") from None
    return client


async def with_retries(what: str, call: Callable[[], Awaitable[T]], retry_max_s: float) -> T:
    """``call()``, again after a lost connection, waiting twice as long each time up to ``retry_max_s``."""
    import redis.asyncio as redis

    wait = 0.05
    while True:
        try:
            return await call()
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            log.warning("redis_stream: %s failed (%s); trying again in %.2f s", what, exc, wait)
            await asyncio.sleep(wait)
            wait = min(retry_max_s, wait * 2)
