"""The ``junit`` sink: a run's quality gates and outcome as JUnit XML, the format every CI system shows.

One ``testsuite`` named ``gates`` holds a ``testcase`` per gate (a ``failure`` with the figures when
it was not met); a ``testsuite`` named ``run`` holds one ``testcase`` for how the run ended, a
``failure`` when it failed (every row failed, a sink could not write) or was interrupted. So the
report is red exactly when ``elspeth run`` exits non-zero without ``--strict``; failed rows (up to
``max_failed_rows``) are listed in that case's output, for a reviewer, without failing it. Written
with the standard library's ``xml.etree``, which escapes every value.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import IO

from pydantic import BaseModel, ConfigDict, Field

from elspeth.datatypes import Artifact, RunResult
from elspeth.files import write_atomically
from elspeth.orchestration.plugin_context import PluginContext
from elspeth.outputs import DeclaredPath, output_target

__all__ = ["JUnitSink"]


def _suite(parent: ET.Element, name: str, cases: list[ET.Element], duration_s: float) -> None:
    failures = sum(1 for case in cases if case.find("failure") is not None)
    suite = ET.SubElement(
        parent, "testsuite", name=name, tests=str(len(cases)), failures=str(failures), errors="0", skipped="0"
    )
    suite.set("time", f"{duration_s:.3f}")
    suite.extend(cases)


def _case(classname: str, name: str, failure: tuple[str, str] | None, text: str = "") -> ET.Element:
    case = ET.Element("testcase", classname=classname, name=name, time="0")
    if failure is not None:
        message, kind = failure
        ET.SubElement(case, "failure", message=message, type=kind).text = text
    elif text:
        ET.SubElement(case, "system-out").text = text
    return case


class JUnitSink:
    """The run's gates and outcome as JUnit XML (``gates`` and ``run`` test suites)."""

    name = "junit"

    class Options(BaseModel):
        """Options of the ``junit`` sink."""

        model_config = ConfigDict(extra="forbid")

        path: str = Field("junit.xml", description="the XML file, relative to the output folder")
        max_failed_rows: int = Field(
            20, ge=0, description="failed rows listed in the output of the `run` test case (0: none)"
        )

    def __init__(self, options: Options) -> None:
        self.options = options

    def output_paths(self, ctx: PluginContext) -> list[DeclaredPath]:
        """The file this sink writes."""
        return [DeclaredPath("path", output_target(ctx, self.options.path))]

    def write(self, result: RunResult, ctx: PluginContext) -> list[Artifact]:
        """Write the document: ``testsuites`` with the run's name, ``gates`` first."""
        meta = result.metadata
        root = ET.Element("testsuites", name=meta.name)
        gates = [
            _case(
                "elspeth.gates",
                gate.name,
                None if gate.passed else (gate.detail, "gate"),
                json.dumps({"detail": gate.detail, "figures": dict(gate.figures), "where": gate.where}, default=str),
            )
            for gate in meta.gates
        ]
        _suite(root, "gates", gates, meta.duration_s)
        _suite(root, "run", self._run_cases(result), meta.duration_s)
        total = root.findall("testsuite")
        root.set("tests", str(sum(int(s.get("tests", "0")) for s in total)))
        root.set("failures", str(sum(int(s.get("failures", "0")) for s in total)))
        ET.indent(root)
        path = ctx.output_path(self.options.path)

        def dump(handle: IO[str]) -> None:
            handle.write('<?xml version="1.0" encoding="utf-8"?>\n')
            handle.write(ET.tostring(root, encoding="unicode"))
            handle.write("\n")

        write_atomically(path, dump)
        return [Artifact(path, "application/xml", self.name)]

    def _run_cases(self, result: RunResult) -> list[ET.Element]:
        meta = result.metadata
        outcome = meta.outcome
        lines = [f"{meta.succeeded} records, {meta.failed} failures in {meta.duration_s:.2f} s (run {meta.run_id})"]
        for n, row in enumerate(result.failures):
            if n >= self.options.max_failed_rows:
                lines.append(f"... and {max(meta.failed, len(result.failures)) - n} more failed rows")
                break
            where = f"{row.group}/{row.row_id}" if row.group else str(row.row_id)
            lines.append(f"failed row {where} at {row.stage}: {row.error}")
        bad = outcome.status in ("failed", "interrupted")
        failure = (f"{outcome.status}: {outcome.reason}", "run") if bad else None
        return [_case("elspeth.run", f"outcome: {outcome.status}", failure, "\n".join(lines))]
