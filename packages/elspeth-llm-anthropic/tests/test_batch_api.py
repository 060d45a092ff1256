"""The ``anthropic`` client as an :class:`elspeth.BatchingClient`, against the test server's Message Batches."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from elspeth import (
    BatchItem,
    BatchResult,
    LLMContentRefused,
    LLMRateLimited,
    LLMRequest,
    LLMRequestRejected,
    LLMServerError,
    split_batches,
    supports_batching,
)
from elspeth_llm_anthropic import AnthropicClient
from elspeth_testing.llm_server import LLMTestServer

SYSTEM = "Score the review from 0 to 1."


def client(options: dict[str, Any], **more: Any) -> AnthropicClient:
    return AnthropicClient(AnthropicClient.Options.model_validate({**options, **more}))


def once(plugin: AnthropicClient, method: str, *args: Any) -> Any:
    """One call of ``plugin.method(*args)`` on a loop of its own, its connections closed after."""

    async def call() -> Any:
        try:
            return await getattr(plugin, method)(*args)
        finally:
            await plugin.aclose()

    return asyncio.run(call())


def items(*users: str) -> list[BatchItem]:
    return [BatchItem(f"row-{n}", LLMRequest(SYSTEM, user)) for n, user in enumerate(users)]


async def run_batch(plugin: AnthropicClient, batch: list[BatchItem], tag: str = "t") -> dict[str, BatchResult]:
    batch_id = await plugin.submit(batch, tag)
    while not (status := await plugin.poll(batch_id)).terminal:
        await asyncio.sleep(0)
    assert status.submitted == len(batch)
    found = {r.custom_id: r async for r in plugin.results(batch_id)}
    await plugin.aclose()
    return found


def test_it_is_a_batching_client_within_anthropics_limits(options: dict[str, Any]) -> None:
    plugin = client(options)
    assert supports_batching(plugin)
    assert (plugin.batch_limits.max_requests, plugin.batch_limits.max_bytes) == (100_000, 256 * 1024 * 1024)
    with pytest.raises(ValueError, match="batch_max_requests"):
        client(options, batch_max_requests=100_001)


def test_a_batch_answers_each_row_as_generate_does(keyed_server: LLMTestServer, options: dict[str, Any]) -> None:
    keyed_server.configure_batch_jobs(polls=2)
    plugin = client(options, max_tokens=64, temperature=0.5)
    found = asyncio.run(run_batch(plugin, items("the kettle", "the toaster", "the lamp")))
    assert set(found) == {"row-0", "row-1", "row-2"}
    live = once(client(options, max_tokens=64, temperature=0.5), "generate", LLMRequest(SYSTEM, "the toaster"))
    batched = found["row-1"].response
    assert batched is not None
    assert (batched.content, batched.usage, batched.model) == (live.content, live.usage, live.model)
    sent = keyed_server.requests("/v1/messages/batches")[0].body["requests"][1]["params"]
    assert sent == {**keyed_server.requests("/v1/messages")[-1].body}  # the same body as the live call
    assert (
        keyed_server.batch_jobs("anthropic")[0]["polls"] == 3 + 1
    )  # two in progress, the end, the SDK's read for results


def test_item_errors_map_to_elspeths_and_expiry_is_its_own(
    keyed_server: LLMTestServer, options: dict[str, Any]
) -> None:
    keyed_server.configure_batch_jobs(polls=0)
    keyed_server.script(["500"], match="broken")
    keyed_server.script(["429"], match="limited")
    keyed_server.script(["hang"], match="slow")
    keyed_server.script(["401"], match="denied")
    found = asyncio.run(run_batch(client(options), items("fine", "broken", "limited", "slow", "denied", "FORBIDDEN")))
    assert found["row-0"].response is not None
    assert isinstance(found["row-1"].error, LLMServerError)
    assert found["row-1"].error.retryable
    assert isinstance(found["row-2"].error, LLMRateLimited)
    assert found["row-3"].expired
    assert isinstance(found["row-4"].error, LLMRequestRejected)
    assert not found["row-4"].error.retryable
    assert isinstance(found["row-5"].error, LLMContentRefused)
    assert "anthropic claude-test at http://127.0.0.1" in str(found["row-1"].error)


def test_the_status_counts_what_the_provider_counts(keyed_server: LLMTestServer, options: dict[str, Any]) -> None:
    keyed_server.configure_batch_jobs(polls=1)
    keyed_server.script(["500"], match="broken")
    keyed_server.script(["hang"], match="slow")
    plugin = client(options)

    async def statuses() -> list[Any]:
        batch_id = await plugin.submit(items("fine", "broken", "slow"), "t")
        seen = [await plugin.poll(batch_id), await plugin.poll(batch_id)]
        await plugin.aclose()
        return seen

    running, ended = asyncio.run(statuses())
    assert (running.state, running.terminal, running.in_progress) == ("in_progress", False, 3)
    assert (ended.state, ended.terminal) == ("ended", True)
    assert (ended.submitted, ended.done, ended.failed, ended.expired, ended.in_progress) == (3, 1, 1, 1, 0)


def test_a_cancelled_batch_gives_retryable_errors(keyed_server: LLMTestServer, options: dict[str, Any]) -> None:
    keyed_server.configure_batch_jobs(polls=10)
    plugin = client(options)

    async def cancelled() -> list[BatchResult]:
        batch_id = await plugin.submit(items("one", "two"), "t")
        await plugin.cancel(batch_id)
        assert (await plugin.poll(batch_id)).terminal
        found = [r async for r in plugin.results(batch_id)]
        await plugin.aclose()
        return found

    found = asyncio.run(cancelled())
    assert all(isinstance(r.error, LLMServerError) and r.error.retryable for r in found)
    assert keyed_server.successes_per_prompt() == {}


def test_item_bytes_are_what_the_server_counts(keyed_server: LLMTestServer, options: dict[str, Any]) -> None:
    plugin = client(options, batch_max_bytes=4096)
    batch = items(*(f"review number {n} " * 8 for n in range(40)))
    parts = split_batches(batch, plugin.batch_limits, plugin.item_bytes)
    assert len(parts) > 2
    keyed_server.configure_batch_jobs(max_bytes=4096, polls=0)

    async def submit_all() -> None:
        for n, part in enumerate(parts):
            await plugin.submit(part, f"t{n}")
        await plugin.aclose()

    asyncio.run(submit_all())  # the server refuses (413) any batch over 4096 bytes
    sizes = [len(json.dumps(r.body).encode()) for r in keyed_server.requests("/v1/messages/batches")]
    assert max(sizes) <= 4096
    assert [b["items"] for b in keyed_server.batch_jobs()] == [[i.custom_id for i in p] for p in parts]


def test_submit_failures_are_elspeths_errors(keyed_server: LLMTestServer, options: dict[str, Any]) -> None:
    keyed_server.script(["529"], path="/v1/messages/batches")
    with pytest.raises(LLMServerError, match="HTTP 529"):
        once(client(options), "submit", items("one"), "t")
    with pytest.raises(LLMRequestRejected, match="404"):
        once(client(options), "poll", "msgbatch_unknown")
    keyed_server.configure(api_key="another-key")
    with pytest.raises(LLMRequestRejected, match="401"):
        once(client(options), "submit", items("one"), "t")
    assert keyed_server.batch_jobs() == []


def test_find_says_it_cannot_tell(options: dict[str, Any]) -> None:
    assert once(client(options), "find", "run-1/0") is None
