"""The engine decides one typed run outcome; orchestrators declare, the CLI and the store read it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from elspeth import LLMRequest, LLMResponse, RunFailed, RunMetadata, RunOutcome, RunResult, hookimpl
from elspeth.outcome import decide_outcome
from elspeth_testing import plugin_module
from elspeth_testing.plugin import MakeRegistry, RunSettings, WriteSettings


class Opts(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RefusingClient:
    """Replies 'ok'; fails on prompts containing FAIL."""

    name = "refusing"
    Options = Opts

    def __init__(self, options: Opts) -> None:
        self.options = options

    async def generate(self, request: LLMRequest) -> LLMResponse:
        if "FAIL" in request.user:
            raise ConnectionError("upstream refused")
        return LLMResponse(content="ok")


class ExplodingSink:
    """Always fails to write."""

    name = "explode"
    Options = Opts

    def __init__(self, options: Opts) -> None:
        self.options = options

    def write(self, result: RunResult, ctx: Any) -> None:
        raise OSError("disk full")


@hookimpl
def register_llm_clients(register: Any) -> None:
    register(RefusingClient)


@hookimpl
def register_sinks(register: Any) -> None:
    register(ExplodingSink)


PLUGINS = plugin_module("outcome_test_plugins", register_llm_clients, register_sinks)
SETTINGS = """\
name: outcome-test
datasource:
  plugin: csv
  options:
    path: data.csv
    id_column: id
llm: refusing
prompts:
  system: Be brief.
  user: "{{ review }}"
orchestrator: rows
sinks:
  - plugin: jsonl
    options:
      path: results.jsonl
"""
DATA = {"data.csv": "id,review\na,good kettle\nb,FAIL please\n"}


@pytest.fixture
def registry(make_registry: MakeRegistry) -> Any:
    return make_registry(PLUGINS)


def test_the_cancel_reason_decides_first_then_early_stops_then_failures() -> None:
    ctrl_c = decide_outcome(cancel_reason="interrupted (SIGINT)", early_stop=None, succeeded=0, failed=3)
    assert ctrl_c == RunOutcome("interrupted", "interrupted (SIGINT)", "interrupted (SIGINT)")
    assert ctrl_c.resumable
    budget = decide_outcome(cancel_reason="budget of 1 USD reached", early_stop={"v": {}}, succeeded=2, failed=0)
    assert (budget.status, budget.stop_reason, budget.resumable) == ("stopped", "budget of 1 USD reached", True)
    early = decide_outcome(cancel_reason=None, early_stop={"v": {"plugin": "threshold"}}, succeeded=0, failed=4)
    assert (early.status, early.reason, early.stop_reason) == ("stopped", "early stop by threshold (v)", None)
    assert not early.resumable, "resuming an early stop would take over the finished rows and stop again"
    failed = decide_outcome(cancel_reason=None, early_stop={}, succeeded=0, failed=4)
    assert (failed.status, failed.reason, failed.resumable) == ("failed", "every row failed (4)", True)
    verdicts = decide_outcome(cancel_reason=None, early_stop=None, succeeded=0, failed=4, failures_are_verdicts=True)
    assert verdicts == RunOutcome()
    assert not verdicts.resumable
    assert decide_outcome(cancel_reason=None, early_stop=None, succeeded=0, failed=0) == RunOutcome("completed")


def test_a_sink_error_fails_the_outcome_naming_the_sink_and_keeps_the_stop_reason() -> None:
    stopped = RunOutcome.of_cancel("budget reached")
    assert stopped.sinks_failed([]) is stopped
    failed = stopped.sinks_failed(["sinks[0] (csv) failed: OSError: disk full"])
    assert failed == RunOutcome("failed", "sinks[0] (csv) failed: OSError: disk full", "budget reached")


def test_metadata_status_and_its_json_are_derived_from_the_outcome() -> None:
    meta = RunMetadata("r", "n", "o", outcome=RunOutcome.of_cancel("budget reached"))
    assert meta.status == "stopped"
    out = meta.to_dict()
    assert (out["status"], out["stop_reason"], out["status_reason"]) == ("stopped", "budget reached", "budget reached")
    plain = RunMetadata("r", "n", "o").to_dict()
    assert plain["status"] == "completed"
    assert {"stop_reason", "status_reason", "early_stop"}.isdisjoint(plain)
    assert RunMetadata("r", "n", "o", early_stop={}).to_dict()["early_stop"] == {}


def test_every_row_failed_is_a_failed_run_in_the_result_the_summary_and_the_store(
    write_settings: WriteSettings, run_settings: RunSettings, registry: Any, tmp_path: Path
) -> None:
    text = SETTINGS + "  - plugin: json\n    options:\n      path: summary.json\n"
    result = run_settings(write_settings(text, {"data.csv": "id,review\na,FAIL 1\nb,FAIL 2\n"}), registry)
    assert result.metadata.outcome == RunOutcome("failed", "every row failed (2)")
    summary = json.loads((tmp_path / "output" / "summary.json").read_text(encoding="utf-8"))
    assert summary["metadata"]["status"] == "failed"
    assert summary["metadata"]["status_reason"] == "every row failed (2)"


def test_a_failing_sink_leaves_the_result_failed_naming_it(
    write_settings: WriteSettings, run_settings: RunSettings, registry: Any
) -> None:
    with pytest.raises(RunFailed) as caught:
        run_settings(write_settings(SETTINGS.replace("sinks:\n", "sinks:\n  - explode\n"), DATA), registry)
    result = caught.value.result
    assert isinstance(result, RunResult)
    assert result.metadata.outcome == RunOutcome("failed", "sinks[0] (explode) failed: OSError: disk full")
    assert result.metadata.to_dict()["status"] == "failed"
