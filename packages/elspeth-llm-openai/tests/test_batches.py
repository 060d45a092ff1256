"""The `openai` client as a BatchingClient: Files and Batches over real HTTP through the openai SDK."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from elspeth import (
    BatchItem,
    BatchLimits,
    BatchResult,
    BatchStatus,
    LLMContentRefused,
    LLMRequest,
    LLMServerError,
    MemoryJournal,
    run_batches,
    supports_batching,
)
from elspeth_llm_openai import OpenAIClient
from elspeth_testing.llm_server import LLMTestServer


class SmallBatches(OpenAIClient):
    """The real client with a ceiling of 3 items per batch, so that a few rows make several batches."""

    @property
    def batch_limits(self) -> BatchLimits:
        return BatchLimits(max_requests=3, max_bytes=10_000)


def items(n: int, marker: dict[int, str] | None = None) -> list[BatchItem]:
    marker = marker or {}
    return [BatchItem(f"row-{i}", LLMRequest("You are terse.", f"review {i}{marker.get(i, '')}")) for i in range(n)]


def run(client: OpenAIClient, batch: list[BatchItem], journal: MemoryJournal | None = None) -> dict[str, BatchResult]:
    got: dict[str, BatchResult] = {}
    statuses: list[BatchStatus] = []

    def keep(result: BatchResult) -> None:
        assert result.custom_id not in got
        got[result.custom_id] = result

    async def main() -> None:
        await run_batches(
            client,
            batch,
            journal if journal is not None else MemoryJournal(),
            run_tag="run-1",
            on_result=keep,
            on_status=statuses.extend,
            poll_interval=0.01,
        )

    asyncio.run(main())
    assert statuses, "the batches were polled"
    return got


def test_every_item_answered_as_live_in_batches_within_the_limits(
    options: dict[str, Any], keyed_server: LLMTestServer
) -> None:
    client = SmallBatches(OpenAIClient.Options.model_validate({**options, "max_tokens": 40}))
    assert supports_batching(client)
    batch = items(7)
    got = run(client, batch)

    live = OpenAIClient(OpenAIClient.Options.model_validate({**options, "max_tokens": 40}))
    for item in batch:
        answer = got[item.custom_id].response
        assert answer is not None
        expected = asyncio.run(live.generate(item.request))
        assert answer.content == expected.content
        assert answer.usage.prompt_tokens == expected.usage.prompt_tokens
        assert answer.model == "gpt-test"
    creates = keyed_server.requests("/v1/batches")
    assert [r.method for r in creates].count("POST") == 3  # 7 items, 3 a batch
    uploads = [r for r in keyed_server.requests("/v1/files") if r.method == "POST"]
    assert len(uploads) == 3
    for create in (r for r in creates if r.method == "POST"):
        assert create.body["endpoint"] == "/v1/chat/completions"
        assert create.body["completion_window"] == "24h"
        assert create.body["metadata"]["elspeth_tag"].startswith("run-1/")


def test_line_bytes_are_what_is_uploaded(options: dict[str, Any], keyed_server: LLMTestServer) -> None:
    client = OpenAIClient(OpenAIClient.Options.model_validate(options))
    batch = items(2)
    batch_id = asyncio.run(client.submit(batch, "t/0"))
    assert batch_id.startswith("batch_")
    [upload] = [r for r in keyed_server.requests("/v1/files") if r.method == "POST"]
    assert upload.status == 200
    size = sum(client.item_bytes(item) for item in batch)
    book_file = asyncio.run(_file_size(client, "file-000001"))
    assert book_file == size


async def _file_size(client: OpenAIClient, file_id: str) -> int:
    sdk = await client._batch_sdk()
    return int((await sdk.files.retrieve(file_id)).bytes)


def test_failed_and_expired_items_are_reported_each(options: dict[str, Any], keyed_server: LLMTestServer) -> None:
    client = OpenAIClient(OpenAIClient.Options.model_validate(options))
    keyed_server.script(["500"], match="review 1")
    keyed_server.script(["400"], match="review 3")
    got = run(client, items(5, {2: " EXPIRE-IN-BATCH", 4: " FORBIDDEN"}))

    assert got["row-0"].response is not None
    assert isinstance(got["row-1"].error, LLMServerError)
    assert got["row-1"].error.retryable
    assert got["row-2"].expired
    assert got["row-3"].error is not None
    assert not got["row-3"].error.retryable
    assert isinstance(got["row-4"].error, LLMContentRefused)


def test_poll_reports_the_steps_and_the_expired_count(options: dict[str, Any], keyed_server: LLMTestServer) -> None:
    client = OpenAIClient(OpenAIClient.Options.model_validate(options))

    async def main() -> list[BatchStatus]:
        batch_id = await client.submit(items(3, {0: " EXPIRE-IN-BATCH"}), "t/0")
        seen = [await client.poll(batch_id)]
        while not seen[-1].terminal:
            seen.append(await client.poll(batch_id))
        return seen

    seen = asyncio.run(main())
    assert [s.state for s in seen] == ["in_progress", "finalizing", "expired"]
    assert seen[0].in_progress == 3
    final = seen[-1]
    assert (final.submitted, final.done, final.failed, final.expired, final.in_progress) == (3, 2, 0, 1, 0)


def test_a_batch_submitted_before_a_crash_is_found_by_its_tag_not_sent_again(
    options: dict[str, Any], keyed_server: LLMTestServer
) -> None:
    client = OpenAIClient(OpenAIClient.Options.model_validate(options))
    batch = items(2)
    journal = MemoryJournal()
    journal.planned("run-1/0", [i.custom_id for i in batch])  # planned, submitted, then the process died
    asyncio.run(client.submit(batch, "run-1/0"))

    got = run(client, batch, journal)
    assert sorted(got) == ["row-0", "row-1"]
    assert [r.method for r in keyed_server.requests("/v1/batches")].count("POST") == 1
    assert journal.entries()[0].batch_id == "batch_000001"
    assert journal.entries()[0].collected


def test_a_collected_journal_submits_and_hands_over_nothing(
    options: dict[str, Any], keyed_server: LLMTestServer
) -> None:
    client = OpenAIClient(OpenAIClient.Options.model_validate(options))
    batch = items(2)
    journal = MemoryJournal()
    run(client, batch, journal)
    got: list[BatchResult] = []
    asyncio.run(run_batches(client, batch, journal, run_tag="run-1", on_result=got.append, poll_interval=0.01))
    assert got == []
    assert [r.method for r in keyed_server.requests("/v1/batches")].count("POST") == 1


def test_cancel_ends_the_batch_cancelled(options: dict[str, Any], keyed_server: LLMTestServer) -> None:
    client = OpenAIClient(OpenAIClient.Options.model_validate(options))

    async def main() -> BatchStatus:
        batch_id = await client.submit(items(2), "t/0")
        await client.cancel(batch_id)
        return await client.poll(batch_id)

    status = asyncio.run(main())
    assert status.state == "cancelled"
    assert status.terminal


def test_a_wrong_key_is_a_clear_rejection(options: dict[str, Any], keyed_server: LLMTestServer) -> None:
    keyed_server.configure(api_key="another-key")
    client = OpenAIClient(OpenAIClient.Options.model_validate(options))
    with pytest.raises(Exception, match=r"file upload.*HTTP 401"):
        asyncio.run(client.submit(items(1), "t/0"))


def test_the_server_refuses_a_file_with_a_bad_line_naming_it(
    options: dict[str, Any], keyed_server: LLMTestServer
) -> None:
    client = OpenAIClient(OpenAIClient.Options.model_validate(options))

    async def upload() -> None:
        sdk = await client._batch_sdk()
        good = client._line(items(1)[0])
        await sdk.files.create(file=("x.jsonl", good + b'{"custom_id": "row-0"}\n'), purpose="batch")

    with pytest.raises(Exception, match=r"line 2: `custom_id` missing or repeated"):
        asyncio.run(upload())
