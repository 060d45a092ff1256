"""One client per running event loop, closed when that loop shuts down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

__all__ = ["LoopBoundSDK"]


async def _closer(sdk: Any, close: Callable[[Any], Awaitable[None]]) -> AsyncIterator[None]:
    # An async generator the event loop finalises in `shutdown_asyncgens()` (asyncio.run does this),
    # so the SDK's connections are closed on the loop that opened them, even if nobody calls aclose().
    try:
        yield
    finally:
        await close(sdk)


async def _close_sdk(sdk: Any) -> None:
    await sdk.close()


class LoopBoundSDK:
    """Holds one SDK (or HTTP) client per running event loop, built on first use and closed with its loop.

    Args:
        factory: builds the client; called inside the running loop.
        close: closes it (default: ``await client.close()``).

    """

    def __init__(self, factory: Callable[[], Any], close: Callable[[Any], Awaitable[None]] = _close_sdk) -> None:
        self._factory = factory
        self._close = close
        self._sdk: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closer: AsyncIterator[None] | None = None

    async def get(self) -> Any:
        """The SDK client for the running loop."""
        loop = asyncio.get_running_loop()
        if self._sdk is None or self._loop is not loop:
            sdk = self._factory()
            closer = _closer(sdk, self._close)
            await closer.__anext__()
            self._sdk, self._loop, self._closer = sdk, loop, closer
        return self._sdk

    async def aclose(self) -> None:
        """Close the SDK client now (idempotent)."""
        closer, self._closer, self._sdk, self._loop = self._closer, None, None, None
        if closer is not None:
            await closer.aclose()  # type: ignore[attr-defined]
