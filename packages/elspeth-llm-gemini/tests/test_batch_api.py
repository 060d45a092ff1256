"""The ``gemini`` client as an :class:`elspeth.BatchingClient`, against the test server's Gemini batch mode."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from elspeth import (
    BatchItem,
    BatchResult,
    BatchStatus,
    LLMContentRefused,
    LLMRateLimited,
    LLMRequest,
    LLMRequestRejected,
    LLMServerError,
    split_batches,
    supports_batching,
)
from elspeth_llm_gemini import GeminiClient
from elspeth_testing.llm_server import LLMTestServer

SYSTEM = "Score the review from 0 to 1."


def client(options: dict[str, Any], **more: Any) -> GeminiClient:
    return GeminiClient(GeminiClient.Options.model_validate({**options, **more}))


def once(plugin: GeminiClient, method: str, *args: Any) -> Any:
    """One call of ``plugin.method(*args)`` on a loop of its own, its connections closed after."""

    async def call() -> Any:
        try:
            return await getattr(plugin, method)(*args)
        finally:
            await plugin.aclose()

    return asyncio.run(call())


def items(*users: str) -> list[BatchItem]:
    return [BatchItem(f"row-{n}", LLMRequest(SYSTEM, user)) for n, user in enumerate(users)]


async def run_batch(plugin: GeminiClient, batch: list[BatchItem]) -> tuple[BatchStatus, dict[str, BatchResult]]:
    batch_id = await plugin.submit(batch, "run-1/0")
    while not (status := await plugin.poll(batch_id)).terminal:
        await asyncio.sleep(0)
    found = {r.custom_id: r async for r in plugin.results(batch_id)}
    await plugin.aclose()
    return status, found


def test_it_is_a_batching_client_within_geminis_limits(options: dict[str, Any]) -> None:
    plugin = client(options)
    assert supports_batching(plugin)
    assert plugin.batch_limits.max_bytes == 2 * 1024**3
    with pytest.raises(ValueError, match="batch_inline_max_bytes"):
        client(options, batch_inline_max_bytes=21 * 1024**2)


@pytest.mark.parametrize("inline_bytes", [20 * 1024**2, 0], ids=["inline", "file"])
def test_a_batch_answers_each_row_as_generate_does(
    keyed_server: LLMTestServer, options: dict[str, Any], inline_bytes: int
) -> None:
    keyed_server.configure_batch_jobs(polls=2)
    plugin = client(options, max_tokens=64, temperature=0.5, batch_inline_max_bytes=inline_bytes)
    status, found = asyncio.run(run_batch(plugin, items("the kettle", "the toaster", "the lamp")))
    assert (status.state, status.submitted, status.in_progress) == ("JOB_STATE_SUCCEEDED", 3, 0)
    assert set(found) == {"row-0", "row-1", "row-2"}
    live = once(client(options, max_tokens=64, temperature=0.5), "generate", LLMRequest(SYSTEM, "the toaster"))
    batched = found["row-1"].response
    assert batched is not None
    assert (batched.content, batched.usage, batched.model) == (live.content, live.usage, live.model)
    uploads = keyed_server.requests("/upload/")
    assert bool(uploads) == (inline_bytes == 0)  # a file only when the batch is over the inline size


def test_item_errors_map_to_elspeths_and_expiry_is_its_own(
    keyed_server: LLMTestServer, options: dict[str, Any]
) -> None:
    keyed_server.configure_batch_jobs(polls=0)
    keyed_server.script(["500"], match="broken")
    keyed_server.script(["429"], match="limited")
    keyed_server.script(["hang"], match="slow")
    keyed_server.script(["403"], match="denied")
    status, found = asyncio.run(
        run_batch(client(options), items("fine", "broken", "limited", "slow", "denied", "FORBIDDEN"))
    )
    assert status.state == "JOB_STATE_EXPIRED"
    assert (status.done, status.failed, status.expired) == (2, 3, 1)  # the refusal is a response, blocked
    assert found["row-0"].response is not None
    assert isinstance(found["row-1"].error, LLMServerError)
    assert isinstance(found["row-2"].error, LLMRateLimited)
    assert found["row-3"].expired
    assert isinstance(found["row-4"].error, LLMRequestRejected)
    assert isinstance(found["row-5"].error, LLMContentRefused)
    assert "gemini gemini-test at http://127.0.0.1" in str(found["row-1"].error)


def test_a_file_batch_maps_errors_too(keyed_server: LLMTestServer, options: dict[str, Any]) -> None:
    keyed_server.configure_batch_jobs(polls=0)
    keyed_server.script(["503"], match="broken")
    _, found = asyncio.run(run_batch(client(options, batch_inline_max_bytes=0), items("fine", "broken")))
    assert found["row-0"].response is not None
    assert isinstance(found["row-1"].error, LLMServerError)


def test_find_recovers_a_job_by_its_tag(keyed_server: LLMTestServer, options: dict[str, Any]) -> None:
    plugin = client(options)

    async def submit_and_find() -> tuple[str, str | None, str | None]:
        batch_id = await plugin.submit(items("one"), "run-7/3")
        await plugin.submit(items("two"), "run-7/4")
        found, missing = await plugin.find("run-7/3"), await plugin.find("run-8/0")
        await plugin.aclose()
        return batch_id, found, missing

    batch_id, found, missing = asyncio.run(submit_and_find())
    assert found == batch_id
    assert missing is None


def test_a_cancelled_job_ends_without_results(keyed_server: LLMTestServer, options: dict[str, Any]) -> None:
    keyed_server.configure_batch_jobs(polls=10)
    plugin = client(options)

    async def cancelled() -> tuple[BatchStatus, list[BatchResult]]:
        batch_id = await plugin.submit(items("one", "two"), "t")
        await plugin.cancel(batch_id)
        status = await plugin.poll(batch_id)
        found = [r async for r in plugin.results(batch_id)]
        await plugin.aclose()
        return status, found

    status, found = asyncio.run(cancelled())
    assert (status.state, status.terminal) == ("JOB_STATE_CANCELLED", True)
    assert "without results" in status.message
    assert found == []


def test_split_batches_keep_within_the_servers_limits(keyed_server: LLMTestServer, options: dict[str, Any]) -> None:
    plugin = client(options, batch_max_bytes=4096, batch_max_requests=7)
    batch = items(*(f"review number {n} " * 8 for n in range(30)))
    parts = split_batches(batch, plugin.batch_limits, plugin.item_bytes)
    assert len(parts) > 4
    keyed_server.configure_batch_jobs(max_bytes=4096, max_requests=7)

    async def submit_all() -> None:
        for n, part in enumerate(parts):
            await plugin.submit(part, f"t{n}")
        await plugin.aclose()

    asyncio.run(submit_all())  # the server refuses any batch over its limits
    assert [b["items"] for b in keyed_server.batch_jobs()] == [[i.custom_id for i in p] for p in parts]


def test_failures_are_elspeths_errors(keyed_server: LLMTestServer, options: dict[str, Any]) -> None:
    keyed_server.script(["503"], path=":batchGenerateContent")
    with pytest.raises(LLMServerError, match="503"):
        once(client(options), "submit", items("one"), "t")
    with pytest.raises(LLMRequestRejected, match="404"):
        once(client(options), "poll", "batches/unknown")
    keyed_server.configure(api_key="another-key")
    with pytest.raises(LLMRequestRejected, match="400"):
        once(client(options), "submit", items("one"), "t")
    assert keyed_server.batch_jobs() == []


def test_vertex_ai_is_refused_clearly(vertex_options: dict[str, Any]) -> None:
    with pytest.raises(LLMRequestRejected, match="vertexai: false"):
        once(client(vertex_options), "submit", items("one"), "t")
