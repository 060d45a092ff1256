"""The provider-neutral batch protocol: limits, splitting, results, and pricing at the batch rates."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from elspeth import (
    BATCH_ID_KEY,
    BatchItem,
    BatchLimits,
    BatchResult,
    BatchStatus,
    LLMRequest,
    LLMResponse,
    LLMServerError,
    Usage,
    split_batches,
    supports_batching,
)
from elspeth.builtins.controls import PriceTable


def item(n: int, text: str = "x") -> BatchItem:
    return BatchItem(f"r{n}", LLMRequest(system="", user=text))


def test_split_keeps_every_batch_within_count_and_bytes_in_order():
    items = [item(i, "x" * (i % 7 + 1)) for i in range(40)]
    size = lambda it: len(it.request.user)  # noqa: E731
    batches = split_batches(items, BatchLimits(max_requests=6, max_bytes=15), size)
    assert [it for b in batches for it in b] == items
    for batch in batches:
        assert len(batch) <= 6
        assert sum(size(it) for it in batch) <= 15
    # each batch is as full as the next item allows: no cut where the next item still fitted
    for batch, following in itertools.pairwise(batches):
        assert len(batch) == 6 or sum(size(it) for it in batch) + size(following[0]) > 15


def test_split_refuses_an_item_larger_than_a_batch_naming_it():
    with pytest.raises(ValueError, match=r"'r3' is 20 bytes, over the provider's 10"):
        split_batches([item(1), item(3, "y" * 20)], BatchLimits(5, 10), lambda it: len(it.request.user))


def test_limits_and_results_refuse_nonsense():
    with pytest.raises(ValueError, match="positive"):
        BatchLimits(0, 10)
    with pytest.raises(ValueError, match="exactly one"):
        BatchResult("a")
    with pytest.raises(ValueError, match="exactly one"):
        BatchResult("a", response=LLMResponse("x"), error=LLMServerError("boom"))
    assert BatchResult("a", expired=True).expired
    assert not BatchStatus("b", "validating", terminal=False, submitted=3).terminal


def test_supports_batching_needs_every_member():
    class Live:
        async def generate(self, request):
            return LLMResponse("x")

    class Batching(Live):
        batch_limits = BatchLimits(10, 100)

        def item_bytes(self, item):
            return 1

        async def submit(self, items, tag):
            return "b"

        async def find(self, tag):
            return None

        async def poll(self, batch_id):
            return BatchStatus(batch_id, "done", True, 0)

        async def results(self, batch_id):
            yield BatchResult("x", expired=True)

        async def cancel(self, batch_id):
            return None

    class NoCancel(Batching):
        cancel = None  # type: ignore[assignment]

    assert supports_batching(Batching())
    assert not supports_batching(Live())
    assert not supports_batching(NoCancel())


def test_price_table_prices_batch_calls_at_batch_rates_or_half():
    table = PriceTable(
        PriceTable.Options(
            prices={
                "a": {"input": 2, "output": 8, "batch_input": 1.5, "batch_output": 3},
                "b": {"input": 2, "output": 8},
            }
        )
    )
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=1_000_000)

    def cost(model: str, batch: bool) -> float | None:
        meta = {BATCH_ID_KEY: "batch_1"} if batch else {}
        req = LLMRequest(system="", user="u", metadata=meta)
        return asyncio.run(table.record(req, LLMResponse("x", usage=usage, model=model)))

    assert cost("a", batch=False) == 10
    assert cost("a", batch=True) == 4.5
    assert cost("b", batch=True) == 5
