"""The ``junit`` sink: gates and the run's outcome as JUnit XML, read back with a real XML parser."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from typing import Any

from elspeth import GateResult, PluginContext, RunOutcome, RunResult, invoke
from elspeth.builtins.junit import JUnitSink
from elspeth_testing import SinkContract, run_async, sample_run_result


class TestJUnitSinkContract(SinkContract):
    plugin_class = JUnitSink
    writes_records = False


def _write(result: RunResult, ctx: PluginContext, **options: Any) -> ET.Element:
    (artifact,) = run_async(invoke(JUnitSink(JUnitSink.Options(**options)).write, result, ctx))
    assert artifact.media_type == "application/xml"
    return ET.parse(artifact.path).getroot()


def _gated(result: RunResult) -> RunResult:
    result.metadata.gates = [
        GateResult("mean >= 3.5", True, "variant: mean 3.9 >= 3.5", {"variant.mean": 3.9, "at_least": 3.5}, "g[0]"),
        GateResult("cost <= 1", False, 'cost 1.2 > 1 <&"> over 8 rows', {"cost": 1.2, "at_most": 1.0}, "g[1]"),
    ]
    return result


def test_each_gate_is_a_test_case_and_a_failed_one_carries_its_figures(plugin_context: PluginContext) -> None:
    root = _write(_gated(sample_run_result("g", records=3, failures=1)), plugin_context)
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures")) == ("3", "1")
    gates, run = root.findall("testsuite")
    assert (gates.get("name"), gates.get("tests"), gates.get("failures")) == ("gates", "2", "1")
    passed, failed = gates.findall("testcase")
    assert passed.get("name") == "mean >= 3.5"
    assert passed.find("failure") is None
    assert '"variant.mean": 3.9' in (passed.findtext("system-out") or "")
    failure = failed.find("failure")
    assert failure is not None
    assert failure.get("message") == 'cost 1.2 > 1 <&"> over 8 rows', "XML special characters survive escaping"
    assert failure.get("type") == "gate"
    assert '"cost": 1.2' in (failure.text or "")
    assert '"where": "g[1]"' in (failure.text or "")
    (outcome,) = run.findall("testcase")
    assert outcome.get("name") == "outcome: completed"
    assert outcome.find("failure") is None
    text = outcome.findtext("system-out") or ""
    assert "3 records, 1 failures" in text
    # failed rows are listed for a reviewer without failing the report
    assert "failed row g-failed-0 at llm: TimeoutError" in text


def test_a_failed_run_fails_the_run_suite(plugin_context: PluginContext) -> None:
    result = sample_run_result("f", records=0, failures=2)
    result.metadata.outcome = RunOutcome("failed", "every row failed (2)")
    root = _write(result, plugin_context, max_failed_rows=1)
    gates, run = root.findall("testsuite")
    assert gates.get("tests") == "0"
    (outcome,) = run.findall("testcase")
    failure = outcome.find("failure")
    assert failure is not None
    assert failure.get("message") == "failed: every row failed (2)"
    assert "... and 1 more failed rows" in (failure.text or "")


def test_a_run_without_gates_writes_an_empty_gates_suite(plugin_context: PluginContext) -> None:
    result = sample_run_result("n", records=1, failures=0)
    result.metadata = replace(result.metadata, gates=[])
    root = _write(result, plugin_context)
    assert [s.get("name") for s in root.findall("testsuite")] == ["gates", "run"]
    assert root.get("failures") == "0"
