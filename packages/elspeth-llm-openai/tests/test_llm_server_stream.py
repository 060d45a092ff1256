"""The `openai` SDK consumes the test server's streams, `n` choices and model list as it would the real API's."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest

from elspeth_testing.llm_server import LLMTestServer

MESSAGES: Any = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "rate this review"}]


def sdk(server: LLMTestServer, key: str, transport: str) -> openai.AsyncOpenAI:
    http = openai.DefaultAioHttpClient() if transport == "aiohttp" else openai.DefaultAsyncHttpxClient()
    return openai.AsyncOpenAI(base_url=server.openai_base_url, api_key=key, max_retries=0, timeout=5, http_client=http)


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
def test_the_sdk_streams_chunks_and_a_final_usage_chunk(
    keyed_server: LLMTestServer, api_key: str, transport: str
) -> None:
    async def main() -> tuple[Any, list[Any]]:
        async with sdk(keyed_server, api_key, transport) as client:
            plain = await client.chat.completions.create(model="gpt-test", messages=MESSAGES)
            stream = await client.chat.completions.create(
                model="gpt-test", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
            return plain, [chunk async for chunk in stream]

    plain, chunks = asyncio.run(main())
    assert len(chunks) > 3
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == plain.usage.completion_tokens
    assert chunks[-1].usage.prompt_tokens == plain.usage.prompt_tokens


def test_n_choices_and_the_model_list_through_the_sdk(llm_server_factory: Any, api_key: str) -> None:
    server = llm_server_factory(api_key=api_key, models=["gpt-a", "gpt-b"])

    async def main() -> tuple[Any, list[str], str]:
        async with sdk(server, api_key, "httpx") as client:
            reply = await client.chat.completions.create(model="gpt-a", messages=MESSAGES, n=3)
            models = [m.id async for m in client.models.list()]
            one = await client.models.retrieve("gpt-b")
            return reply, models, one.id

    reply, models, retrieved = asyncio.run(main())
    assert [c.index for c in reply.choices] == [0, 1, 2]
    assert models == ["gpt-a", "gpt-b"]
    assert retrieved == "gpt-b"


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("429", openai.RateLimitError),
        ("500", openai.InternalServerError),
        ("drop", openai.APIConnectionError),
        ("hang", openai.APITimeoutError),
    ],
)
def test_faults_reach_a_streaming_caller_as_the_sdk_errors(
    keyed_server: LLMTestServer, api_key: str, fault: str, error: type[Exception]
) -> None:
    keyed_server.configure(hang_s=3)
    keyed_server.script([fault])

    async def main() -> None:
        async with sdk(keyed_server, api_key, "httpx") as client:
            client = client.with_options(timeout=0.5)
            stream = await client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
            async for _ in stream:
                pass

    with pytest.raises(error):
        asyncio.run(main())


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
def test_a_stream_cut_off_mid_chunk_fails_the_iteration(
    keyed_server: LLMTestServer, api_key: str, transport: str
) -> None:
    keyed_server.script(["malformed"])
    received: list[Any] = []

    async def main() -> None:
        async with sdk(keyed_server, api_key, transport) as client:
            stream = await client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
            async for chunk in stream:
                received.append(chunk)

    with pytest.raises(openai.APIConnectionError):
        asyncio.run(main())
    assert received  # the chunks before the cut arrived
