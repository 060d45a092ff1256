"""run_batches: plans before submitting, never submits a tag twice, hands every item over once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from elspeth import (
    BatchedClient,
    BatchItem,
    BatchLimits,
    BatchResult,
    BatchStatus,
    LLMPipeline,
    LLMRateLimited,
    LLMRequest,
    LLMResponse,
    MemoryJournal,
    RetryPolicy,
    run_batches,
)


class Provider:
    """A provider in memory that drops every third item and can fail its first submissions."""

    batch_limits = BatchLimits(max_requests=2, max_bytes=100)

    def __init__(self, fail_submits: int = 0, takes_failed: bool = False) -> None:
        self.batches: dict[str, list[BatchItem]] = {}
        self.tags: dict[str, str] = {}
        self.submits = 0
        self.fail_submits = fail_submits
        self.takes_failed = takes_failed  # the provider kept a submission whose answer was lost

    def item_bytes(self, item: BatchItem) -> int:
        return len(item.request.user)

    async def submit(self, items: Sequence[BatchItem], tag: str) -> str:
        self.submits += 1
        if self.fail_submits:
            self.fail_submits -= 1
            if self.takes_failed:
                self.tags[tag] = self._keep(items)
            raise LLMRateLimited("slow down", status=429, retry_after=0)
        self.tags[tag] = batch_id = self._keep(items)
        return batch_id

    def _keep(self, items: Sequence[BatchItem]) -> str:
        batch_id = f"b{len(self.batches)}"
        self.batches[batch_id] = list(items)
        return batch_id

    async def find(self, tag: str) -> str | None:
        return self.tags.get(tag)

    async def poll(self, batch_id: str) -> BatchStatus:
        n = len(self.batches[batch_id])
        return BatchStatus(batch_id, "ended", terminal=True, submitted=n, done=n)

    async def results(self, batch_id: str) -> AsyncIterator[BatchResult]:
        for item in self.batches[batch_id]:
            if not item.custom_id.endswith("2"):
                yield BatchResult(item.custom_id, response=LLMResponse(item.request.user.upper()))
        yield BatchResult("not-ours", expired=True)

    async def cancel(self, batch_id: str) -> None:
        return None


def items(n: int) -> list[BatchItem]:
    return [BatchItem(f"r{i}", LLMRequest("", f"p{i}")) for i in range(n)]


def collect(provider: Provider, batch: list[BatchItem], journal: MemoryJournal) -> dict[str, BatchResult]:
    got: dict[str, BatchResult] = {}

    def keep(result: BatchResult) -> None:
        assert result.custom_id not in got
        got[result.custom_id] = result

    asyncio.run(run_batches(provider, batch, journal, run_tag="run", on_result=keep, poll_interval=0))
    return got


def test_each_item_once_and_a_missing_one_as_expired():
    provider, journal = Provider(), MemoryJournal()
    got = collect(provider, items(5), journal)
    assert sorted(got) == ["r0", "r1", "r2", "r3", "r4"]
    assert got["r2"].expired
    assert got["r4"].response is not None
    assert [e.tag for e in journal.entries()] == ["run/0", "run/1", "run/2"]
    assert all(e.collected for e in journal.entries())
    assert collect(provider, items(5), journal) == {}
    assert provider.submits == 3


def test_a_retried_submission_first_looks_for_the_one_the_provider_kept():
    provider = Provider(fail_submits=1, takes_failed=True)
    got = collect(provider, items(2), MemoryJournal())
    assert provider.submits == 1
    assert len(provider.batches) == 1
    assert sorted(got) == ["r0", "r1"]


def test_a_refused_submission_is_retried_after_its_retry_after():
    provider = Provider(fail_submits=2)
    collect(provider, items(2), MemoryJournal())
    assert provider.submits == 3
    assert len(provider.batches) == 1


def test_a_resume_whose_items_changed_is_refused_naming_the_batch():
    journal = MemoryJournal()
    journal.planned("run/0", ["r0", "gone"])
    with pytest.raises(ValueError, match=r"batch run/0 .*\(gone\)"):
        collect(Provider(), items(2), journal)


class SlowProvider(Provider):
    """Answers only after several polls, each slower than the pipeline's attempt timeout."""

    def __init__(self) -> None:
        super().__init__()
        self.polls = 0

    async def poll(self, batch_id: str) -> BatchStatus:
        self.polls += 1
        await asyncio.sleep(0.05)
        n = len(self.batches[batch_id])
        return BatchStatus(batch_id, "running", terminal=self.polls >= 3, submitted=n)

    async def results(self, batch_id: str) -> AsyncIterator[BatchResult]:
        for item in self.batches[batch_id]:
            if item.request.user != "p2":
                yield BatchResult(item.custom_id, response=LLMResponse(item.request.user.upper()))

    async def generate(self, request: LLMRequest) -> LLMResponse:
        return LLMResponse("live " + request.user)


def test_a_batched_attempt_outlasts_the_attempt_timeout_and_goes_live_on_retry():
    provider = SlowProvider()
    client = BatchedClient(provider, MemoryJournal(), run_tag="run", gather_s=0.01, poll_interval=0, retry_live=True)
    pipeline = LLMPipeline(client, retry=RetryPolicy(timeout_s=0.02, initial_delay_s=0))

    async def main() -> list[LLMResponse]:
        return await asyncio.gather(
            *(pipeline.call(LLMRequest("", f"p{i}", metadata={"row_id": str(i)})) for i in range(3))
        )

    answers = asyncio.run(main())
    assert [a.content for a in answers] == ["P0", "P1", "live p2"]  # p2 is dropped by the provider: expired
    assert provider.submits == 2  # three gathered at once, two a batch
    assert client.sent == 3
