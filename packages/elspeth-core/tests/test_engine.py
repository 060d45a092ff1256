"""The run engine: everything checked before the first row, sinks isolated, observers told, never crashed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ConfigDict

from elspeth import ConfigError, LLMRequest, LLMResponse, RunFailed, RunResult, hookimpl
from elspeth.config import load_settings
from elspeth.engine import prepare
from elspeth_testing import plugin_module
from elspeth_testing.plugin import MakeRegistry, RunSettings, WriteSettings


class Opts(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CountingClient:
    """Replies 'ok: <user prompt>' and counts its calls; fails on prompts containing FAIL."""

    name = "counting"
    Options = Opts
    calls: ClassVar[list[str]] = []

    def __init__(self, options: Opts) -> None:
        self.options = options

    async def generate(self, request: LLMRequest) -> LLMResponse:
        CountingClient.calls.append(request.user)
        if "FAIL" in request.user:
            raise ConnectionError("upstream refused")
        return LLMResponse(content=f"ok: {request.user}")


class ExplodingSink:
    """Always fails to write."""

    name = "explode"
    Options = Opts

    def __init__(self, options: Opts) -> None:
        self.options = options

    def write(self, result: RunResult, ctx: Any) -> None:
        raise OSError("disk full")


class FragileSink:
    """Cannot even start."""

    name = "fragile"
    Options = Opts

    def __init__(self, options: Opts) -> None:
        raise RuntimeError("no licence")


@hookimpl
def register_llm_clients(register: Any) -> None:
    register(CountingClient)


@hookimpl
def register_sinks(register: Any) -> None:
    register(ExplodingSink)
    register(FragileSink)


PLUGINS = plugin_module("engine_test_plugins", register_llm_clients, register_sinks)

SETTINGS = """\
name: engine-test
datasource:
  plugin: csv
  options:
    path: data.csv
    id_column: id
llm: counting
prompts:
  system: Be brief.
  user: "{{ review }}"
orchestrator: rows
concurrency: 2
sinks:
  - plugin: jsonl
    options:
      path: results.jsonl
"""
DATA = {"data.csv": "id,review\na,good kettle\nb,FAIL please\nc,nice fan\n"}


@pytest.fixture(autouse=True)
def _fresh_calls() -> None:
    CountingClient.calls = []


@pytest.fixture
def registry(make_registry: MakeRegistry) -> Any:
    return make_registry(PLUGINS)


def problems_of(path: Path, registry: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        asyncio.run(prepare(load_settings(path), registry))
    return [str(p) for p in caught.value.problems]


def test_a_run_records_every_row_and_writes_its_sinks(
    write_settings: WriteSettings, run_settings: RunSettings, registry: Any
) -> None:
    result = run_settings(write_settings(SETTINGS, DATA), registry)
    assert [(r.row_id, r.outputs["response"]) for r in result.records] == [
        ("a", "ok: good kettle"),
        ("c", "ok: nice fan"),
    ]
    (failure,) = result.failures
    assert (failure.row_id, failure.stage) == ("b", "llm")
    assert "ConnectionError: upstream refused" in failure.error
    meta = result.metadata
    assert (meta.name, meta.orchestrator, meta.rows, meta.succeeded, meta.failed) == ("engine-test", "rows", 3, 2, 1)
    assert meta.duration_s >= 0
    assert meta.started_at <= meta.finished_at
    used = {(p["domain"], p["name"]): p["distribution"] for p in meta.plugins}
    assert used[("llm_client", "counting")] == "test-plugins"
    assert used[("datasource", "csv")] == "elspeth-core"
    (artifact,) = meta.to_dict()["artifacts"]
    assert artifact["sink"] == "jsonl"
    assert artifact["media_type"] == "application/jsonl"
    lines = Path(artifact["path"]).read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["status"] for line in lines] == ["ok", "ok", "failed"]


def test_prepare_reports_every_problem_at_once(write_settings: WriteSettings, registry: Any) -> None:
    text = (
        SETTINGS.replace("    id_column: id\n", "    id_colum: id\n")
        .replace("llm: counting", "llm: countng")
        .replace("      path: results.jsonl\n", "      path: 5\n      compress: true\n")
        + "middleware:\n  - zzz_not_installed\n"
    )
    found = problems_of(write_settings(text, DATA), registry)
    assert found[:2] == [
        "datasource.options.id_colum: unknown key; did you mean 'id_column'? (settings.yaml:6)",
        "llm.plugin: unknown llm_client 'countng'; did you mean 'counting'? Installed llm_clients: "
        f"{', '.join(registry.names('llm_client'))}. (settings.yaml:7)",
    ]
    assert found[2].startswith("middleware[0].plugin: unknown llm_middleware 'zzz_not_installed'")
    assert found[2].endswith("(settings.yaml:19)")
    assert found[3:] == [
        "sinks[0].options.path: input should be a valid string (settings.yaml:16)",
        "sinks[0].options.compress: unknown key (known keys: path, include_failures) (settings.yaml:17)",
    ]
    assert CountingClient.calls == []


def test_a_template_field_missing_from_the_columns_fails_before_any_llm_call(
    write_settings: WriteSettings, run_settings: RunSettings, registry: Any, tmp_path: Path
) -> None:
    path = write_settings(SETTINGS.replace("{{ review }}", "{{ reveiw }} by {{ author }}"), DATA)
    with pytest.raises(ConfigError) as caught:
        run_settings(path, registry)
    assert [str(p) for p in caught.value.problems] == [
        "prompts.user: template uses 'author', 'reveiw', which the datasource does not have "
        "(its columns: id, review) (settings.yaml:10)"
    ]
    assert CountingClient.calls == []
    assert not (tmp_path / "output").exists()


def test_a_datasource_that_cannot_read_is_reported_at_its_place(write_settings: WriteSettings, registry: Any) -> None:
    (message,) = problems_of(write_settings(SETTINGS), registry)
    assert message.startswith("datasource: datasource 'csv': file not found: ")
    assert message.endswith("data.csv (settings.yaml:2)")


def test_a_plugin_that_cannot_start_is_named_with_its_distribution(
    write_settings: WriteSettings, registry: Any
) -> None:
    text = SETTINGS + "  - fragile\n"
    assert problems_of(write_settings(text, DATA), registry) == [
        "sinks[1]: sink 'fragile' (test-plugins) could not start: RuntimeError: no licence (settings.yaml:17)"
    ]


def test_a_broken_plugin_fails_the_run_with_its_reason_before_any_work(
    write_settings: WriteSettings, make_registry: MakeRegistry
) -> None:
    registry = make_registry(PLUGINS, plugin_module("engine_test_plugins_again", register_llm_clients))
    (message,) = problems_of(write_settings(SETTINGS, DATA), registry)
    assert message.startswith("llm.plugin: llm_client 'counting' from test-plugins 0.0.0 is broken: ")
    assert "claimed by both" in message
    assert CountingClient.calls == []


def test_a_failing_sink_does_not_stop_the_others_and_the_result_is_kept(
    write_settings: WriteSettings, run_settings: RunSettings, registry: Any, tmp_path: Path
) -> None:
    text = SETTINGS.replace("sinks:\n", "sinks:\n  - explode\n")
    with pytest.raises(RunFailed) as caught:
        run_settings(write_settings(text, DATA), registry)
    assert str(caught.value) == "sinks[0] (explode) failed: OSError: disk full"
    assert caught.value.exit_code == 1
    result = caught.value.result
    assert isinstance(result, RunResult)
    assert [r.row_id for r in result.records] == ["a", "c"]
    assert (tmp_path / "output" / "results.jsonl").is_file()


def test_an_orchestrator_that_raises_is_a_run_failure_naming_it(
    write_settings: WriteSettings, run_settings: RunSettings, make_registry: MakeRegistry
) -> None:
    class Broken:
        """Raises in run."""

        name = "broken"
        Options = Opts

        def __init__(self, options: Opts) -> None:
            pass

        def check(self, columns: Any, ctx: Any) -> None:
            pass

        async def run(self, table: Any, ctx: Any) -> RunResult:
            raise ZeroDivisionError("division by zero")

    @hookimpl
    def register_orchestrators(register: Any) -> None:
        register(Broken)

    registry = make_registry(PLUGINS, plugin_module("orch", register_orchestrators))
    path = write_settings(SETTINGS.replace("orchestrator: rows", "orchestrator: broken"), DATA)
    with pytest.raises(RunFailed, match=r"^orchestrator 'broken' failed: ZeroDivisionError: division by zero$"):
        run_settings(path, registry)


def test_reported_artifacts_splits_local_files_from_uploads_and_lists_each_once(tmp_path: Path) -> None:
    from elspeth import Artifact, RunMetadata, RunResult, reported_artifacts

    (tmp_path / "a.csv").write_text("x", encoding="utf-8")
    listed = [
        Artifact(tmp_path / "a.csv", "text/csv", "csv"),
        Artifact(Path("c/run/a.csv"), "text/csv", "azure_blob", url="https://acct.blob.example/c/run/a.csv"),
        Artifact(tmp_path / "sub" / ".." / "a.csv", "text/csv", "signed"),  # the same file, written another way
    ]
    result = RunResult([], [], {}, RunMetadata("r", "n", "o", artifacts=listed))
    local, remote = reported_artifacts(result)
    assert local == [(tmp_path / "a.csv").resolve()]
    assert remote == ["https://acct.blob.example/c/run/a.csv"]
