"""An experiment variant that sends the data elsewhere is checked like the run's own client, before any row.

Two LLM test servers on 127.0.0.1: the run's client is cleared (PROTECTED) for the first; a variant
that moves ``base_url`` to the second keeps no clearance it did not declare, and an endpoint off
``allowed_endpoints`` is refused; in both cases no request reaches either server.
"""

from __future__ import annotations

import importlib.util

import pytest

from elspeth_testing.llm_fixtures import LLMServerFactory
from elspeth_testing.plugin import ElspethCli, WriteSettings

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("elspeth_llm_openai") is None or importlib.util.find_spec("elspeth_experiment") is None,
    reason="needs elspeth-llm-openai and elspeth-orchestrator-experiment",
)

SETTINGS = """\
datasource: {plugin: csv, options: {path: data.csv, id_column: id}, security_level: PROTECTED}
llm:
  plugin: openai
  options: {model: gpt-test, base_url: 'BASE_A', allow_missing_key: true}
  security_level: PROTECTED
allowed_endpoints: ALLOWED
prompts: {user: 'Q: {{ q }}'}
orchestrator:
  plugin: experiment
  options:
    experiments:
      - {name: base, baseline: true}
      - name: moved
        llm_options: {base_url: 'BASE_B'}
sinks:
  - {plugin: jsonl, options: {path: results.jsonl}, security_level: PROTECTED}
"""


def _settings(write_settings: WriteSettings, a: str, b: str, allowed: str) -> str:
    text = SETTINGS.replace("BASE_A", a).replace("BASE_B", b).replace("ALLOWED", allowed)
    return str(write_settings(text, {"data.csv": "id,q\n1,hi\n2,there\n"}))


def test_a_variant_moving_base_url_keeps_no_clearance_it_did_not_declare(
    llm_server_factory: LLMServerFactory, write_settings: WriteSettings, elspeth_cli: ElspethCli
) -> None:
    a, b = llm_server_factory(), llm_server_factory()
    settings = _settings(write_settings, a.openai_base_url, b.openai_base_url, f"['{a.url}', '{b.url}']")

    done = elspeth_cli("run", settings)

    assert done.returncode == 2, done.stderr
    assert "orchestrator.options.experiments[1].llm_options" in done.stderr
    assert "settings.yaml:14" in done.stderr  # the variant's `llm_options` line
    assert f"sends to {b.openai_base_url}" in done.stderr
    assert "llm_client 'openai' is cleared for UNOFFICIAL but the data is PROTECTED" in done.stderr
    assert "Traceback" not in done.stderr
    assert a.requests() == []
    assert b.requests() == []


def test_a_variant_cleared_on_its_own_llm_runs(
    llm_server_factory: LLMServerFactory, write_settings: WriteSettings, elspeth_cli: ElspethCli
) -> None:
    a, b = llm_server_factory(), llm_server_factory()
    text = SETTINGS.replace(
        "llm_options: {base_url: 'BASE_B'}",
        "llm: {plugin: openai, options: {model: gpt-test, base_url: 'BASE_B', allow_missing_key: true}, "
        "security_level: PROTECTED}",
    )
    text = text.replace("BASE_A", a.openai_base_url).replace("BASE_B", b.openai_base_url)
    settings = write_settings(text.replace("ALLOWED", f"['{a.url}', '{b.url}']"), {"data.csv": "id,q\n1,hi\n"})

    done = elspeth_cli("run", str(settings))

    assert done.returncode == 0, done.stderr
    assert len(a.requests("chat/completions")) == 1
    assert len(b.requests("chat/completions")) == 1


def test_a_variant_moving_base_url_off_the_allowlist_is_refused_at_its_line(
    llm_server_factory: LLMServerFactory, write_settings: WriteSettings, elspeth_cli: ElspethCli
) -> None:
    a, b = llm_server_factory(), llm_server_factory()
    settings = _settings(write_settings, a.openai_base_url, b.openai_base_url, f"['{a.url}']")

    done = elspeth_cli("run", settings)

    assert done.returncode == 2, done.stderr
    assert f"LLM endpoint {b.openai_base_url} is not in allowed_endpoints" in done.stderr
    assert "orchestrator.options.experiments[1].llm_options" in done.stderr
    assert "settings.yaml:14" in done.stderr
    assert a.requests() == []
    assert b.requests() == []


@pytest.mark.parametrize("key", ["endpoint", "deployment"])
def test_a_variant_changing_an_endpoint_option_of_azure_keeps_no_clearance(
    key: str, llm_server_factory: LLMServerFactory, write_settings: WriteSettings, elspeth_cli: ElspethCli
) -> None:
    if importlib.util.find_spec("elspeth_llm_azure") is None:
        pytest.skip("needs elspeth-llm-azure")
    a = llm_server_factory()
    value = a.url.replace("127.0.0.1", "localhost") if key == "endpoint" else "other-deployment"
    text = SETTINGS.replace(
        "plugin: openai\n  options: {model: gpt-test, base_url: 'BASE_A', allow_missing_key: true}",
        "plugin: azure_openai\n  options: {endpoint: 'BASE_A', deployment: gpt-test, api_key_env: H2_TEST_KEY}",
    ).replace("llm_options: {base_url: 'BASE_B'}", f"llm_options: {{{key}: '{value}'}}")
    text = text.replace("BASE_A", a.url).replace("ALLOWED", f"['{a.url}']")
    settings = write_settings(text, {"data.csv": "id,q\n1,hi\n"})

    done = elspeth_cli("run", str(settings), env={"H2_TEST_KEY": "k"})

    assert done.returncode == 2, done.stderr
    assert "orchestrator.options.experiments[1].llm_options" in done.stderr
    assert "llm_client 'azure_openai' is cleared for UNOFFICIAL but the data is PROTECTED" in done.stderr
    assert a.requests() == []


def test_a_variant_respelling_the_same_endpoint_keeps_the_clearance(
    llm_server_factory: LLMServerFactory, write_settings: WriteSettings, elspeth_cli: ElspethCli
) -> None:
    a = llm_server_factory()
    settings = _settings(write_settings, a.openai_base_url, a.openai_base_url + "/", f"['{a.url}']")

    done = elspeth_cli("run", settings)

    assert done.returncode == 0, done.stderr
    assert len(a.requests("chat/completions")) == 4


def test_validate_refuses_the_moved_variant_too(
    llm_server_factory: LLMServerFactory, write_settings: WriteSettings, elspeth_cli: ElspethCli
) -> None:
    a, b = llm_server_factory(), llm_server_factory()
    settings = _settings(write_settings, a.openai_base_url, b.openai_base_url, f"['{a.url}', '{b.url}']")

    done = elspeth_cli("validate", settings)

    assert done.returncode == 2, done.stderr
    assert "orchestrator.options.experiments[1].llm_options: this variant sends to" in done.stderr
    assert "settings.yaml:14" in done.stderr
    assert a.requests() == []
    assert b.requests() == []
