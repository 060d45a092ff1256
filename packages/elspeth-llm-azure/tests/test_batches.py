"""The `azure_openai` client as a BatchingClient: Azure's global batch (deployment in the lines, api-version)."""

from __future__ import annotations

import asyncio
from typing import Any

from elspeth import BatchItem, BatchResult, LLMRequest, LLMServerError, MemoryJournal, run_batches, supports_batching
from elspeth_llm_azure import AzureOpenAIClient
from elspeth_testing.llm_server import LLMTestServer


def test_a_global_batch_names_the_deployment_and_answers_every_row(
    client_options: dict[str, Any], azure_server: LLMTestServer
) -> None:
    client = AzureOpenAIClient(AzureOpenAIClient.Options.model_validate(client_options))
    assert supports_batching(client)
    azure_server.script(["503"], match="review 2")
    batch = [BatchItem(f"row-{i}", LLMRequest("Be brief.", f"review {i}")) for i in range(4)]
    got: dict[str, BatchResult] = {}
    asyncio.run(
        run_batches(
            client,
            batch,
            MemoryJournal(),
            run_tag="r",
            on_result=lambda r: got.update({r.custom_id: r}),
            poll_interval=0,
        )
    )

    live = asyncio.run(client.generate(batch[0].request))
    first = got["row-0"].response
    assert first is not None
    assert first.content == live.content
    assert first.model == azure_server.config.azure_model
    assert isinstance(got["row-2"].error, LLMServerError)
    assert sum(r.response is not None for r in got.values()) == 3
    posted = [r for r in azure_server.requests("/openai/") if r.method == "POST"]
    assert [r.path for r in posted] == [
        "/openai/files",
        "/openai/batches",
        "/openai/deployments/gpt-4o-mini/chat/completions",
    ]
    assert all("api-version" in r.query for r in azure_server.requests("/openai/"))
    assert posted[1].body["endpoint"] == "/chat/completions"
    assert all(r.credential == "api-key" for r in posted)


def test_lines_carry_the_deployment_as_model(client_options: dict[str, Any], azure_server: LLMTestServer) -> None:
    client = AzureOpenAIClient(AzureOpenAIClient.Options.model_validate(client_options))
    line = client._line(BatchItem("a", LLMRequest("", "hi")))
    assert b'"model": "gpt-4o-mini"' in line
    assert b'"url": "/chat/completions"' in line
    assert client.item_bytes(BatchItem("a", LLMRequest("", "hi"))) == len(line)
