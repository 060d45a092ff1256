"""The `azure_openai` client against the test server's Azure OpenAI deployment path, with a key and with a token."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from elspeth import ConfigError, LLMPipeline, LLMRequest
from elspeth.config import load_settings
from elspeth.engine import run_settings
from elspeth.llm_errors import LLMCallFailed, LLMContentRefused, LLMRequestRejected
from elspeth.orchestration.retry import RetryPolicy
from elspeth_llm_azure import AzureOpenAIClient
from elspeth_llm_azure.client import ENTRA_SCOPE
from elspeth_testing import build_registry
from elspeth_testing.llm_server import LLMTestServer
from elspeth_testing.plugin import WriteSettings


def make(options: dict[str, Any], credential: Any = None, **changes: Any) -> AzureOpenAIClient:
    return AzureOpenAIClient(AzureOpenAIClient.Options.model_validate({**options, **changes}), credential)


def test_key_auth_calls_the_deployment_path(client_options: dict[str, Any], azure_server: LLMTestServer) -> None:
    client = make(client_options, api_version="2024-10-21", temperature=0.1, response_format="json_object")
    response = asyncio.run(client.generate(LLMRequest("You are terse.", "Rate: fine")))

    [sent] = azure_server.requests()
    assert sent.path == "/openai/deployments/gpt-4o-mini/chat/completions"
    assert sent.query == {"api-version": "2024-10-21"}
    assert sent.credential == "api-key"
    assert sent.credential_ok
    assert sent.headers["api-key"] == "<redacted>"
    assert "authorization" not in sent.headers
    assert sent.body["temperature"] == 0.1
    assert sent.body["response_format"] == {"type": "json_object"}
    assert response.model == "gpt-4o-mini-2024-07-18"  # Azure reports the model behind the deployment
    assert response.usage.prompt_tokens > 0
    assert response.content.startswith("{")
    assert client.endpoint == azure_server.url


def test_entra_token_is_sent_as_bearer(
    client_options: dict[str, Any], azure_server: LLMTestServer, monkeypatch: pytest.MonkeyPatch, token_credential: Any
) -> None:
    monkeypatch.delenv("AZURE_OPENAI_TEST_KEY")  # no key needed with Entra ID
    credential = token_credential()
    client = make(client_options, credential, auth="entra")
    asyncio.run(client.generate(LLMRequest("s", "hello")))

    [sent] = azure_server.requests()
    assert sent.credential == "bearer"
    assert sent.credential_ok, "the server did not receive `Authorization: Bearer <the credential's token>`"
    assert "api-key" not in sent.headers
    assert credential.scopes == [(ENTRA_SCOPE,)]


def test_a_token_the_service_refuses_is_not_retried(
    client_options: dict[str, Any], azure_server: LLMTestServer, token_credential: Any
) -> None:
    client = make(client_options, token_credential("stale-token"), auth="entra")
    pipeline = LLMPipeline(client, retry=RetryPolicy(max_attempts=5, initial_delay_s=0.01))
    with pytest.raises(LLMCallFailed, match="not retryable after 1 attempt") as caught:
        asyncio.run(pipeline.call(LLMRequest("s", "hello")))
    assert isinstance(caught.value.cause, LLMRequestRejected)
    assert caught.value.cause.status == 401
    assert len(azure_server.requests()) == 1
    assert "stale-token" not in str(caught.value)


def test_missing_key_names_the_variable(client_options: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_OPENAI_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match=r"AZURE_OPENAI_TEST_KEY \(option `api_key_env`\) is not set.*auth: entra"):
        make(client_options)


def test_retries_through_faults_until_answered(client_options: dict[str, Any], azure_server: LLMTestServer) -> None:
    azure_server.script(["429:0.05", "503", "drop"], match="retry me")
    pipeline = LLMPipeline(make(client_options), retry=RetryPolicy(max_attempts=5, initial_delay_s=0.01))
    response = asyncio.run(pipeline.call(LLMRequest("s", "retry me")))

    assert response.attempts == 4
    assert [r.outcome for r in azure_server.requests()] == ["429", "503", "drop", "ok"]


def test_azure_content_filter_is_a_refusal_never_retried(
    client_options: dict[str, Any], azure_server: LLMTestServer
) -> None:
    pipeline = LLMPipeline(make(client_options), retry=RetryPolicy(max_attempts=5, initial_delay_s=0.01))
    with pytest.raises(LLMCallFailed) as caught:
        asyncio.run(pipeline.call(LLMRequest("s", "say the FORBIDDEN word")))
    assert isinstance(caught.value.cause, LLMContentRefused)
    assert len(azure_server.requests()) == 1


ENTRA_SETTINGS = """\
datasource: {plugin: csv, options: {path: rows.csv, id_column: id}}
llm:
  plugin: azure_openai
  options: {endpoint: ENDPOINT, deployment: gpt-4o-mini, auth: entra}
allowed_endpoints: [ENDPOINT]
prompts: {user: 'Say {{ word }}'}
orchestrator: rows
output_dir: out
"""


def test_auth_entra_from_the_settings_uses_default_azure_credential(
    azure_server: LLMTestServer,
    write_settings: WriteSettings,
    monkeypatch: pytest.MonkeyPatch,
    token_credential: Any,
) -> None:
    import azure.identity.aio

    monkeypatch.delenv("AZURE_OPENAI_TEST_KEY")
    credential = token_credential()
    closed: list[bool] = []

    async def close() -> None:
        closed.append(True)

    credential.close = close
    made: list[Any] = []

    def default_credential(*args: Any, **kwargs: Any) -> Any:
        made.append(credential)
        return credential

    monkeypatch.setattr(azure.identity.aio, "DefaultAzureCredential", default_credential)
    settings = write_settings(
        ENTRA_SETTINGS.replace("ENDPOINT", azure_server.url), {"rows.csv": "id,word\na,hi\nb,yo\n"}
    )
    result = run_settings(load_settings(settings), build_registry("elspeth_llm_azure.plugin"))

    assert [f.error for f in result.failures] == []
    assert len(result.records) == 2
    assert len(made) == 1, "DefaultAzureCredential was not what the client signed in with"
    sent = azure_server.requests()
    assert [(r.credential, r.credential_ok) for r in sent] == [("bearer", True)] * 2, (
        "the server did not receive `Authorization: Bearer <the credential's token>`"
    )
    assert all("api-key" not in r.headers for r in sent)
    assert credential.scopes
    assert all(scopes == (ENTRA_SCOPE,) for scopes in credential.scopes)
    assert closed == [True], "the credential the client made was not closed when the run ended"


def test_key_identity_is_the_keys_hash_or_entra(
    client_options: dict[str, Any], azure_server: LLMTestServer, token_credential: Any
) -> None:
    keyed = make(client_options)
    assert keyed.key_id.startswith("key-")
    assert "azure-test-key" not in keyed.key_id
    assert make(client_options, token_credential(), auth="entra").key_id == "entra"
