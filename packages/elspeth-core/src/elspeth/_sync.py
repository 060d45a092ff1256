"""Calling plugin methods that may be sync or async, without ever blocking the event loop."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any, TypeVar

__all__ = ["invoke", "inline", "iterate_rows"]
# Public as ``elspeth.invoke`` and ``elspeth.iterate_rows``.

F = TypeVar("F", bound=Callable[..., Any])
_INLINE = "__elspeth_inline__"


def inline(func: F) -> F:
    """Mark a sync plugin method as cheap and non-blocking, so the runner calls it on the event loop.

    Without the mark a sync method runs in a worker thread. Use it for pure computations that take
    microseconds, never for anything that does I/O.
    """
    setattr(func, _INLINE, True)
    return func


async def invoke(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Await ``func(*args, **kwargs)`` whether it is a coroutine function or a plain one.

    Plain functions run in a worker thread unless marked :func:`inline`.
    """
    import asyncio  # here, not at the top: `import elspeth` must stay cheap for `elspeth plugins list`

    if inspect.iscoroutinefunction(func):
        return await func(*args, **kwargs)
    if getattr(func, _INLINE, False):
        result = func(*args, **kwargs)
    else:
        result = await asyncio.to_thread(func, *args, **kwargs)
    if inspect.isawaitable(result):
        return await result
    return result


_END = object()


async def iterate_rows(rows: Iterable[Any] | Any, chunk: int = 256) -> AsyncIterator[Any]:
    """Iterate a sync or async iterable from async code; a sync iterator is read in a worker thread in chunks."""
    if hasattr(rows, "__aiter__"):
        async for item in rows:
            yield item
        return
    iterator: Iterator[Any] = iter(rows)
    if isinstance(rows, list | tuple):
        for item in iterator:
            yield item
        return

    def take() -> list[Any]:
        out = []
        for _ in range(chunk):
            item = next(iterator, _END)
            if item is _END:
                break
            out.append(item)
        return out

    import asyncio

    while True:
        batch = await asyncio.to_thread(take)
        for item in batch:
            yield item
        if len(batch) < chunk:
            return
