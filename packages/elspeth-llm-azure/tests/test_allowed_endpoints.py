"""`allowed_endpoints` covers the Content Safety services too: checked before any row, at the middleware's line."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from elspeth import ConfigError
from elspeth.config import load_settings
from elspeth.engine import prepare, run_settings
from elspeth_llm_azure import ContentSafety, PromptShield
from elspeth_testing.llm_server import LLMTestServer
from elspeth_testing.plugin import MakeRegistry, WriteSettings

SETTINGS = """\
datasource: {plugin: csv, options: {path: data.csv, id_column: id}}
llm: mock
allowed_endpoints: ALLOWED
prompts: {user: '{{ q }}'}
orchestrator: rows
middleware:
  - plugin: azure_content_safety
    options: {endpoint: 'SERVER', api_key_env: AZURE_CONTENT_SAFETY_TEST_KEY}
  - plugin: azure_prompt_shield
    options: {endpoint: 'SERVER', api_key_env: AZURE_CONTENT_SAFETY_TEST_KEY}
"""


def _settings(write_settings: WriteSettings, server: LLMTestServer, allowed: str) -> Any:
    text = SETTINGS.replace("SERVER", server.url).replace("ALLOWED", allowed)
    return load_settings(write_settings(text, {"data.csv": "id,q\n1,a calm question\n2,another\n"}))


def test_both_services_declare_the_endpoint_they_call(safety_options: dict[str, Any]) -> None:
    root = safety_options["endpoint"]
    safety = ContentSafety(ContentSafety.Options.model_validate(safety_options))
    assert safety.endpoints == (f"{root}/contentsafety/text:analyze",)
    shield = PromptShield(PromptShield.Options.model_validate(safety_options))
    assert shield.endpoints == (f"{root}/contentsafety/text:shieldPrompt",)


def test_a_service_off_the_list_is_refused_at_its_line_before_any_request(
    azure_server: LLMTestServer, write_settings: WriteSettings, make_registry: MakeRegistry
) -> None:
    loaded = _settings(write_settings, azure_server, "['http://127.0.0.1:9/v1']")
    with pytest.raises(ConfigError) as caught:
        asyncio.run(prepare(loaded, make_registry("elspeth_llm_azure.plugin")))
    problems = caught.value.problems
    assert [p.path for p in problems] == ["middleware[0]", "middleware[1]"]
    assert [p.line for p in problems] == [7, 9]
    for problem, name in zip(problems, ["azure_content_safety", "azure_prompt_shield"], strict=True):
        assert f"llm_middleware '{name}' endpoint {azure_server.url}/contentsafety/text:" in problem.message
        assert "is not in allowed_endpoints (http://127.0.0.1:9/v1)" in problem.message
    assert azure_server.requests() == []


def test_a_service_on_the_list_is_called(
    azure_server: LLMTestServer, write_settings: WriteSettings, make_registry: MakeRegistry
) -> None:
    loaded = _settings(write_settings, azure_server, f"['{azure_server.url}/contentsafety']")
    result = run_settings(loaded, make_registry("elspeth_llm_azure.plugin"))
    assert [f.error for f in result.failures] == []
    assert len(azure_server.requests("text:analyze")) == 2
    assert len(azure_server.requests("text:shieldPrompt")) == 2
