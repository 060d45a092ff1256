"""Real runs traced through the OpenTelemetry SDK's OTLP exporter, checked span by span at a receiver."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from elspeth import ConfigError, load_settings, run_settings
from elspeth.discovery import PluginSource
from elspeth_testing import build_registry
from elspeth_testing.services import free_port

SOURCES = [
    PluginSource("batch", "elspeth-orchestrator-batch", "0.1.0", "elspeth_batch.plugin"),
    PluginSource("experiment", "elspeth-orchestrator-experiment", "0.1.0", "elspeth_experiment.plugin"),
    PluginSource("openai", "elspeth-llm-openai", "0.1.0", "elspeth_llm_openai.plugin"),
    PluginSource("opentelemetry", "elspeth-observe-otel", "0.1.0", "elspeth_observe_otel.plugin"),
]


def project(tmp_path: Path, base_url: str, options: str, orchestrator: str = "{plugin: batch}") -> Path:
    (tmp_path / "data.csv").write_text("id,text\n" + "".join(f"r{i},review {i}\n" for i in range(6)))
    path = tmp_path / "settings.yaml"
    path.write_text(
        "name: traced\n"
        "datasource: {plugin: csv, options: {path: data.csv, id_column: id}}\n"
        f"llm: {{plugin: openai, options: {{model: test-model, base_url: '{base_url}'}}}}\n"
        "prompts: {user: 'Rate {{ text }}'}\n"
        "retry: {max_attempts: 3, initial_delay_s: 0.01, jitter: false}\n"
        f"orchestrator: {orchestrator}\n"
        f"observers: [{{plugin: opentelemetry, options: {options}}}]\n"
        "sinks: [{plugin: jsonl}]\n"
    )
    return path


def run(path: Path) -> Any:
    return run_settings(load_settings(path), build_registry(*SOURCES))


def row_span(otlp: Any, row_id: str) -> Any:
    (span,) = [s for s in otlp.named("elspeth.row") if s.attributes["elspeth.row_id"] == row_id]
    return span


def test_a_batch_run_is_one_trace_of_rows_stages_attempts_and_sinks(
    tmp_path: Path, llm_server: Any, otlp: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    llm_server.script(["503"], match="review 2")
    llm_server.script(["400"], match="review 4")
    result = run(project(tmp_path, llm_server.openai_base_url, f"{{endpoint: '{otlp.endpoint}'}}"))
    assert (result.metadata.succeeded, result.metadata.failed) == (5, 1)

    (run_span,) = otlp.named("elspeth.run")
    assert run_span.parent_id == ""
    assert run_span.attributes["elspeth.run_id"] == result.metadata.run_id
    assert (run_span.attributes["elspeth.succeeded"], run_span.attributes["elspeth.failed"]) == (5, 1)
    assert run_span.service == "elspeth"
    assert {s.trace_id for s in otlp.spans} == {run_span.trace_id}, "one run, one trace"

    rows = otlp.named("elspeth.row")
    assert sorted(s.attributes["elspeth.row_id"] for s in rows) == [f"r{i}" for i in range(6)]
    assert all(s.parent_id == run_span.span_id for s in rows)
    for row in rows:  # each row's stages lie under it, in its time
        stages = otlp.children(row)
        assert {s.name for s in stages} >= {"processors", "work", "commit", "llm.attempt"}
        assert all(row.start <= s.start <= s.end <= row.end for s in stages)

    retried = [s for s in otlp.children(row_span(otlp, "r2")) if s.name == "llm.attempt"]
    assert [(s.attributes["elspeth.attempt"], s.attributes["elspeth.outcome"]) for s in retried] == [
        (1, "retry"),
        (2, "ok"),
    ]
    assert retried[0].attributes["http.response.status_code"] == 503
    assert retried[0].attributes["error.type"] == "LLMServerError"
    assert retried[0].attributes["elspeth.retry_wait_s"] > 0
    assert retried[0].error == "LLMServerError"
    assert retried[1].error is None
    assert retried[1].attributes["gen_ai.usage.input_tokens"] > 0

    failed = row_span(otlp, "r4")
    assert failed.attributes["elspeth.row_outcome"] == "failed"
    assert failed.attributes["elspeth.failed_stage"] == "llm"
    assert failed.error == "llm"
    (rejected,) = [s for s in otlp.children(failed) if s.name == "llm.attempt"]
    assert rejected.attributes["http.response.status_code"] == 400
    assert rejected.attributes["elspeth.outcome"] == "failed"
    assert row_span(otlp, "r0").error is None

    assert len(otlp.named("llm.attempt")) == len(llm_server.requests("chat/completions")) == 7
    (sink,) = otlp.named("sink:jsonl")
    assert sink.parent_id == run_span.span_id
    text = repr([s.attributes for s in otlp.spans])
    assert "review 3" not in text, "no prompt or response text without include_text"


def test_an_experiment_traces_each_validator(tmp_path: Path, llm_server: Any, otlp: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    orchestrator = (
        "{plugin: experiment, options: {validators: [{plugin: regex_match, options: {pattern: 'NEVER', "
        "mode: search}}], experiments: [{name: base, baseline: true}]}}"
    )
    path = project(tmp_path, llm_server.openai_base_url, f"{{endpoint: '{otlp.endpoint}'}}", orchestrator)
    result = run(path)
    assert len(result.failures) == 6
    for failure in result.failures:
        row = row_span(otlp, failure.row_id)
        assert row.attributes["elspeth.failed_stage"] == failure.stage == "validation:regex_match"
        checks = [s for s in otlp.children(row) if s.name == "validation:regex_match"]
        assert checks
        assert all(s.error == "ValidationFailed" for s in checks)


def test_include_text_puts_the_prompt_and_response_on_the_attempt(
    tmp_path: Path, llm_server: Any, otlp: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    options = f"{{endpoint: '{otlp.endpoint}', include_text: true, text_limit: 9}}"
    run(project(tmp_path, llm_server.openai_base_url, options))
    prompts = sorted(s.attributes["elspeth.prompt"] for s in otlp.named("llm.attempt"))
    assert prompts == ["Rate revi"] * 6
    assert all(len(s.attributes["elspeth.response"]) <= 9 for s in otlp.named("llm.attempt"))


def test_trace_per_row_makes_each_row_a_trace_linked_to_the_run(
    tmp_path: Path, llm_server: Any, otlp: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    run(project(tmp_path, llm_server.openai_base_url, f"{{endpoint: '{otlp.endpoint}', trace_per_row: true}}"))
    (run_span,) = otlp.named("elspeth.run")
    rows = otlp.named("elspeth.row")
    assert len({s.trace_id for s in rows}) == 6
    assert run_span.trace_id not in {s.trace_id for s in rows}
    assert all(s.parent_id == "" and s.links == [run_span.span_id] for s in rows)
    assert all(c.trace_id == row.trace_id for row in rows for c in otlp.children(row))


def test_sample_rows_traces_the_same_share_of_rows_each_time(
    tmp_path: Path, llm_server: Any, otlp: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    path = project(tmp_path, llm_server.openai_base_url, f"{{endpoint: '{otlp.endpoint}', sample_rows: 0.5}}")
    run(path)
    first = sorted(s.attributes["elspeth.row_id"] for s in otlp.named("elspeth.row"))
    otlp.spans.clear()
    run(path)
    assert sorted(s.attributes["elspeth.row_id"] for s in otlp.named("elspeth.row")) == first
    assert 0 < len(first) < 6
    assert len(otlp.named("llm.attempt")) == len(first), "an unsampled row's attempts are not traced either"


def test_a_collector_that_is_not_there_loses_no_row(tmp_path: Path, llm_server: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    endpoint = f"http://127.0.0.1:{free_port()}/v1/traces"
    result = run(project(tmp_path, llm_server.openai_base_url, f"{{endpoint: '{endpoint}', timeout_s: 1}}"))
    assert result.metadata.succeeded == 6
    assert (tmp_path / "output" / "results.jsonl").read_text().count("\n") == 6


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("{endpoint: 'http://10.1.2.3:4318/v1/traces'}", "not a loopback address"),
        ("{endpoint: 'ftp://127.0.0.1/x'}", "not an http(s) URL"),
        ("{sample_rows: 2}", "sample_rows"),
        ("{colour: red}", "colour"),
    ],
)
def test_bad_options_name_the_field(tmp_path: Path, options: str, message: str) -> None:
    path = project(tmp_path, "http://127.0.0.1:9/v1", options)
    with pytest.raises(ConfigError) as caught:
        run(path)
    assert "observers[0].options" in str(caught.value) or "opentelemetry" in str(caught.value)
    assert message in str(caught.value)
