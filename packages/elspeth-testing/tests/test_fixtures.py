"""The fixtures and helpers plugin authors use: registries, contexts, settings files, runs and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from elspeth import ConfigError, PluginContext, hookimpl
from elspeth.builtins.sinks import JsonlSink
from elspeth_testing import UNICODE_TEXT, plugin_module, sample_request, sample_run_result
from elspeth_testing.plugin import ElspethCli, MakeRegistry, RunSettings, WriteSettings


@hookimpl
def register_sinks(register: Any) -> None:
    register(JsonlSink, name="jsonl2", description="the jsonl sink under another name")


def test_make_registry_holds_exactly_what_it_is_given(make_registry: MakeRegistry) -> None:
    registry = make_registry(plugin_module("extra_sinks", register_sinks), builtins=False, testing=False)
    assert [(i.name, i.domain, i.distribution) for i in registry] == [("jsonl2", "sink", "test-plugins")]
    assert "experiment" not in registry.names("orchestrator")  # installed entry points are never read


def test_make_registry_adds_builtins_and_the_rows_orchestrator_by_default(make_registry: MakeRegistry) -> None:
    registry = make_registry()
    assert "csv" in registry.names("datasource")
    assert registry.get("orchestrator", "rows").distribution == "elspeth-testing"


def test_make_registry_ignores_the_callers_environment(
    make_registry: MakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ELSPETH_LOAD_PLUGINS", "")
    monkeypatch.setenv("ELSPETH_DISABLE_PLUGINS", "extra_sinks,test-plugins")
    registry = make_registry(plugin_module("extra_sinks", register_sinks))
    assert registry.get("sink", "jsonl2").status == "ok"
    blocked = make_registry(plugin_module("extra_sinks", register_sinks), environ={"ELSPETH_LOAD_PLUGINS": ""})
    assert "jsonl2" not in blocked.names("sink")


def test_plugin_context_is_rooted_in_tmp_path(plugin_context: PluginContext, tmp_path: Path) -> None:
    assert plugin_context.input_path("in.csv") == tmp_path.resolve() / "in.csv"
    target = plugin_context.output_path("deep/er/out.csv")
    assert target == (tmp_path / "output" / "deep" / "er" / "out.csv").resolve()
    assert target.parent.is_dir()


def test_write_settings_dedents_and_writes_data_files(write_settings: WriteSettings, tmp_path: Path) -> None:
    path = write_settings(
        """
        name: x
        datasource: csv
        """,
        {"data/in.csv": "a\n1\n", "blob.bin": b"\x00\x01"},
    )
    assert path == tmp_path / "settings.yaml"
    assert path.read_text(encoding="utf-8") == "name: x\ndatasource: csv\n"
    assert (tmp_path / "data" / "in.csv").read_text(encoding="utf-8") == "a\n1\n"
    assert (tmp_path / "blob.bin").read_bytes() == b"\x00\x01"
    assert write_settings("name: y\n", name="other.yaml") == tmp_path / "other.yaml"


SETTINGS = """
name: fixture-run
datasource: {plugin: csv, options: {path: in.csv, id_column: id}}
llm: {plugin: static, options: {content: fine}}
prompts: {user: "Judge {{ text }}"}
orchestrator: rows
sinks: [{plugin: jsonl, options: {path: out.jsonl}}]
"""


def test_run_settings_runs_in_process_and_returns_the_result(
    write_settings: WriteSettings, run_settings: RunSettings, tmp_path: Path
) -> None:
    result = run_settings(write_settings(SETTINGS, {"in.csv": f"id,text\na,{UNICODE_TEXT}\nb,plain\n"}))
    assert [(r.row_id, r.outputs["response"]) for r in result.records] == [("a", "fine"), ("b", "fine")]
    assert result.records[0].metrics["prompt_tokens"] > 0
    lines = (tmp_path / "output" / "out.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["inputs"]["text"] == UNICODE_TEXT


def test_run_settings_raises_what_a_run_raises(write_settings: WriteSettings, run_settings: RunSettings) -> None:
    with pytest.raises(ConfigError, match=r"prompts.user: template uses 'text'"):
        run_settings(write_settings(SETTINGS, {"in.csv": "id,body\na,x\n"}))


def test_rows_orchestrator_without_prompts_records_inputs_only(
    write_settings: WriteSettings, run_settings: RunSettings
) -> None:
    text = "datasource: {plugin: csv, options: {path: in.csv}}\norchestrator: {plugin: rows, options: {}}\n"
    result = run_settings(write_settings(text, {"in.csv": "v\n1\n2\n"}))
    assert [(r.row_id, dict(r.inputs), r.outputs) for r in result.records] == [
        ("1", {"v": "1"}, {}),
        ("2", {"v": "2"}, {}),
    ]


def test_rows_orchestrator_needs_an_llm_for_prompts(write_settings: WriteSettings, run_settings: RunSettings) -> None:
    text = SETTINGS.replace("llm: {plugin: static, options: {content: fine}}\n", "")
    with pytest.raises(ConfigError, match=r"prompts: prompts need an LLM client: set `llm` in the settings"):
        run_settings(write_settings(text, {"in.csv": "id,text\na,x\n"}))


def test_elspeth_cli_runs_in_tmp_path_with_a_clean_environment(
    elspeth_cli: ElspethCli, write_settings: WriteSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ELSPETH_TRACE", "1")  # the developer's own switch must not leak into the command
    quiet = elspeth_cli("plugins", "list", "--json")
    assert quiet.returncode == 0, quiet.stderr
    assert "[elspeth trace]" not in quiet.stderr
    assert ("sink", "jsonl") in {(p["domain"], p["name"]) for p in json.loads(quiet.stdout)}

    write_settings("name: x\nconcurrency: -1\n")
    done = elspeth_cli("validate", "settings.yaml", env={"ELSPETH_TRACE": "1"})  # relative to tmp_path
    assert done.returncode == 2
    assert "[elspeth trace]" in done.stderr
    assert "concurrency: input should be greater than or equal to 1 (settings.yaml:2)" in done.stderr
    assert "Traceback" not in done.stderr


def test_sample_run_result_is_awkward_on_purpose() -> None:
    result = sample_run_result("m", records=2, failures=3)
    assert [r.row_id for r in result.records] == ["m-0", "m-1"]
    assert len(result.failures) == 3
    assert UNICODE_TEXT in result.records[0].inputs["text"]
    assert isinstance(result.records[1].metrics["tokens"], dict)
    request = sample_request("hi", experiment="b")
    assert (request.user, request.metadata["experiment"], request.metadata["run_id"]) == ("hi", "b", "run-contract")
