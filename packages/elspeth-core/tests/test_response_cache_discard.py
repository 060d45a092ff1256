"""The response cache keeps only answers a caller accepted: ``refresh_cache`` re-asks live, ``discard`` evicts."""

from __future__ import annotations

import asyncio
from pathlib import Path

from elspeth import LLMPipeline, LLMRequest, LLMResponse, Usage
from elspeth.cache import CacheFile, ResponseCache


class Counter:
    """Replies 'answer N' for the N-th call."""

    def __init__(self) -> None:
        self.calls = 0

    async def generate(self, request: LLMRequest) -> LLMResponse:
        self.calls += 1
        return LLMResponse(content=f"answer {self.calls}", usage=Usage(4, 2))


def _cache(tmp_path: Path) -> ResponseCache:
    cache = ResponseCache(ResponseCache.Options())
    cache.file = CacheFile(tmp_path / "cache.sqlite")
    return cache


def _ask(pipeline: LLMPipeline, **metadata: object) -> tuple[LLMRequest, LLMResponse]:
    request = LLMRequest(system="s", user="u", metadata={"row_id": "1", **metadata})
    return request, asyncio.run(pipeline.call(request))


def test_refresh_cache_skips_the_lookup_and_replaces_the_cached_answer(tmp_path: Path) -> None:
    client, cache = Counter(), _cache(tmp_path)
    pipeline = LLMPipeline(client, cache=cache)
    assert _ask(pipeline)[1].content == "answer 1"
    assert _ask(pipeline)[1].cached
    _, fresh = _ask(pipeline, refresh_cache=True)
    assert (fresh.content, fresh.cached, client.calls) == ("answer 2", False, 2)
    _, again = _ask(pipeline)
    assert (again.content, again.cached) == ("answer 2", True)
    assert cache.summary() == {"hits": 2, "misses": 1}
    cache.close()


def test_discard_evicts_the_answer_so_no_later_call_replays_it(tmp_path: Path) -> None:
    client, cache = Counter(), _cache(tmp_path)
    pipeline = LLMPipeline(client, cache=cache)
    request, rejected = _ask(pipeline)
    assert len(str(request.metadata["cache_key"])) == 64
    asyncio.run(pipeline.discard(request))
    assert cache.file is not None
    assert cache.file.stats()["entries"] == 0
    _, next_time = _ask(pipeline)
    assert (rejected.content, next_time.content, next_time.cached) == ("answer 1", "answer 2", False)
    assert cache.summary() == {"hits": 0, "misses": 2, "discarded": 1}
    cache.close()


def test_discard_without_a_cache_does_nothing() -> None:
    pipeline = LLMPipeline(Counter())
    request, _ = _ask(pipeline)
    assert "cache_key" not in request.metadata
    asyncio.run(pipeline.discard(request))
