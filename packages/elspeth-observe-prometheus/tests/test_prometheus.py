"""A real batch run against the LLM test server, its /metrics scraped over HTTP and parsed with prometheus_client."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, ConfigDict

from elspeth import ConfigError, Registrar, hookimpl, load_settings, run_settings
from elspeth.discovery import PluginSource
from elspeth_testing import build_registry, plugin_module
from elspeth_testing.services import free_port

SOURCES = [
    PluginSource("batch", "elspeth-orchestrator-batch", "0.1.0", "elspeth_batch.plugin"),
    PluginSource("openai", "elspeth-llm-openai", "0.1.0", "elspeth_llm_openai.plugin"),
    PluginSource("prometheus", "elspeth-observe-prometheus", "0.1.0", "elspeth_observe_prometheus.plugin"),
]


def project(tmp_path: Path, base_url: str, observer: str) -> Path:
    (tmp_path / "data.csv").write_text("id,text\n" + "".join(f"r{i},review {i}\n" for i in range(6)))
    path = tmp_path / "settings.yaml"
    path.write_text(
        "name: observed\n"
        "datasource: {plugin: csv, options: {path: data.csv, id_column: id}}\n"
        f"llm: {{plugin: openai, options: {{model: test-model, base_url: '{base_url}'}}}}\n"
        "prompts: {user: 'Rate {{ text }}'}\n"
        "retry: {max_attempts: 3, initial_delay_s: 0.01, jitter: false}\n"
        "orchestrator: {plugin: batch}\n"
        f"observers: [{observer}]\n"
        "sinks: [{plugin: jsonl}]\n"
        "store: {enabled: false}\n"
    )
    return path


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: dict[Any, float], name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= set(lab))


def test_a_batch_run_with_a_retry_and_a_failed_row(tmp_path: Path, llm_server: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    llm_server.script(["503"], match="review 2")
    llm_server.script(["400"], match="review 4")
    port = free_port()
    path = project(
        tmp_path, llm_server.openai_base_url, f"{{plugin: prometheus, options: {{port: {port}, linger_s: 5}}}}"
    )
    result = run_settings(load_settings(path), build_registry(*SOURCES))
    samples = scrape(port)  # after the run: still served for linger_s
    assert total(samples, "elspeth_run_finished") == 1
    assert total(samples, "elspeth_rows_total", outcome="succeeded") == result.metadata.succeeded == 5
    assert total(samples, "elspeth_rows_total", outcome="failed") == result.metadata.failed == 1
    assert total(samples, "elspeth_row_failures_total", stage="llm") == 1
    assert total(samples, "elspeth_llm_retries_total") == 1
    assert total(samples, "elspeth_llm_attempts_total", status="503", outcome="retry") == 1
    assert total(samples, "elspeth_llm_attempts_total", status="400", outcome="failed") == 1
    assert total(samples, "elspeth_llm_latency_seconds_count") == len(llm_server.requests("chat/completions")) == 7
    tokens = result.metadata.extra["tokens"]
    assert total(samples, "elspeth_llm_tokens_total", kind="prompt") == tokens["prompt"] > 0
    assert total(samples, "elspeth_llm_tokens_total", kind="completion") == tokens["completion"]
    assert total(samples, "elspeth_in_flight") == 0
    assert total(samples, "elspeth_stage_duration_seconds_count", stage="work") == 6
    assert total(samples, "elspeth_stage_duration_seconds_count", stage="sink:jsonl") == 1
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert "review 3" not in text, "no prompt text without include_text"


def test_include_text_exports_the_last_exchange(tmp_path: Path, llm_server: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    port = free_port()
    options = f"{{port: {port}, linger_s: 5, include_text: true}}"
    path = project(tmp_path, llm_server.openai_base_url, f"{{plugin: prometheus, options: {options}}}")
    run_settings(load_settings(path), build_registry(*SOURCES))
    infos = [lab for (n, lab), _ in scrape(port).items() if n == "elspeth_last_exchange_info"]
    assert len(infos) == 1
    assert dict(infos[0])["prompt"].startswith("Rate review ")


@pytest.mark.parametrize(
    ("options", "field"),
    [("{host: 10.1.2.3}", "observers[0].options.host"), ("{colour: red}", "observers[0].options.colour")],
)
def test_bad_options_name_the_field(tmp_path: Path, options: str, field: str) -> None:
    path = project(tmp_path, "http://127.0.0.1:9/v1", f"{{plugin: prometheus, options: {options}}}")
    with pytest.raises(ConfigError) as caught:
        run_settings(load_settings(path), build_registry(*SOURCES))
    assert field in str(caught.value) or field.rsplit(".", 1)[-1] in str(caught.value)


SEEN: list[tuple[str, Any]] = []


class Recording:
    """Records what it observes."""

    name = "recording"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, options: Options) -> None:
        SEEN.clear()

    @hookimpl
    def llm_attempt_finished(self, row_id: str | None, attempt: int, outcome: str, wait_s: float) -> None:
        SEEN.append(("attempt", (row_id, attempt, outcome, wait_s > 0)))

    @hookimpl
    def stage_finished(self, row_id: str | None, stage: str) -> None:
        SEEN.append(("stage", (row_id, stage)))

    @hookimpl
    def gauge_reported(self, name: str, value: float) -> None:
        SEEN.append(("gauge", (name, value)))


@hookimpl
def register_observers(register: Registrar) -> None:
    register(Recording)


def test_every_attempt_stage_and_gauge_is_observed(tmp_path: Path, llm_server: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    llm_server.script(["503"], match="review 2")
    path = project(tmp_path, llm_server.openai_base_url, "{plugin: recording}")
    registry = build_registry(*SOURCES, plugin_module("recording_observer", register_observers))
    run_settings(load_settings(path), registry)
    attempts = [v for k, v in SEEN if k == "attempt"]
    assert ("r2", 1, "retry", True) in attempts
    assert ("r2", 2, "ok", False) in attempts
    assert len(attempts) == 7
    stages = [v for k, v in SEEN if k == "stage"]
    assert {s for r, s in stages if r == "r0"} == {"processors", "work", "commit", "row"}
    assert [s for r, s in stages if r == "r0"][-1] == "row", "a row's whole span is its last stage"
    assert (None, "sink:jsonl") in stages
    gauges = [v for k, v in SEEN if k == "gauge"]
    assert max(v for n, v in gauges if n == "in_flight") >= 1
    assert gauges[-1] == ("in_flight", 0.0)
