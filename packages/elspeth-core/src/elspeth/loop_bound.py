"""One SDK (or HTTP) client per running event loop, closed when that loop shuts down.

In core because every provider client needs it (``elspeth-llm-openai``, ``-azure`` for its Content
Safety ``httpx`` client, ``-anthropic``): one copy of the loop binding instead of one per SDK.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

__all__ = ["LoopBoundSDK"]


async def _close_sdk(sdk: Any) -> None:
    await sdk.close()


async def _closer(sdk: Any, close: Callable[[Any], Awaitable[None]]) -> AsyncIterator[None]:
    # An async generator the event loop finalises in `shutdown_asyncgens()` (asyncio.run does this),
    # so the SDK's connections are closed on the loop that opened them, even if nobody calls aclose().
    try:
        yield
    finally:
        await close(sdk)


class LoopBoundSDK:
    """Holds one client per running event loop, built on first use and closed with its loop.

    Args:
        factory: builds the client; called inside the running loop.
        close: closes it (default: ``await client.close()``; an ``httpx.AsyncClient`` wants ``aclose``).

    Example::

        self._http = LoopBoundSDK(lambda: httpx.AsyncClient(timeout=10), close=lambda c: c.aclose())
        http = await self._http.get()
    """

    def __init__(self, factory: Callable[[], Any], close: Callable[[Any], Awaitable[None]] = _close_sdk) -> None:
        self._factory = factory
        self._close = close
        self._sdk: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closer: AsyncIterator[None] | None = None

    async def get(self) -> Any:
        """The client for the running loop."""
        loop = asyncio.get_running_loop()
        if self._sdk is None or self._loop is not loop:
            sdk = self._factory()
            closer = _closer(sdk, self._close)
            await closer.__anext__()
            self._sdk, self._loop, self._closer = sdk, loop, closer
        return self._sdk

    async def aclose(self) -> None:
        """Close the client now (idempotent)."""
        closer, self._closer, self._sdk, self._loop = self._closer, None, None, None
        if closer is not None:
            await closer.aclose()  # type: ignore[attr-defined]
