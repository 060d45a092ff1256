"""The `utility` domain's capabilities are declared protocols: the run's cache is found by type, not by guesswork."""

from __future__ import annotations

from typing import Any

import pytest

from elspeth import protocols
from elspeth.cache import ResponseCache
from elspeth.planning import run_cache
from elspeth.resume import RunOptions


class HalfCache:
    """Has ``lookup`` but no ``store``: not a response cache."""

    def lookup(self, key: str) -> None:
        return None


def test_the_builtins_are_what_they_declare() -> None:
    cache = ResponseCache(ResponseCache.Options())
    assert isinstance(cache, protocols.ResponseCache)
    assert not isinstance(cache, protocols.Enricher)
    retrieval_module = pytest.importorskip("elspeth_retrieval.retrieval")
    retrieval = retrieval_module.Retrieval.__new__(
        retrieval_module.Retrieval
    )  # its constructor needs a corpus; the shape is the class's
    assert isinstance(retrieval, protocols.Enricher)
    assert not isinstance(retrieval, protocols.ResponseCache)
    assert isinstance(retrieval, protocols.CallsServices)


def test_the_runs_cache_is_the_first_response_cache_unless_no_cache() -> None:
    first, second = ResponseCache(ResponseCache.Options()), ResponseCache(ResponseCache.Options())
    utilities: list[Any] = [HalfCache(), object(), first, second]
    assert run_cache(utilities, RunOptions()) is first
    assert run_cache(utilities, RunOptions(use_cache=False)) is None
    assert run_cache([HalfCache()], RunOptions()) is None
