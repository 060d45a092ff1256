from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from elspeth import Failure, PluginContext, Record, RunMetadata, RunResult
from elspeth_sink_excel import ExcelSink

WriteBook = Callable[..., tuple[Path, Workbook]]


@pytest.fixture
def ctx(tmp_path: Path) -> PluginContext:
    return PluginContext(run_id="run-1", name="excel-test", base_dir=tmp_path, output_dir=tmp_path / "out")


@pytest.fixture
def write_book(ctx: PluginContext) -> WriteBook:
    """Write ``result`` with the excel sink built from ``options`` and read the workbook back."""

    def write(result: RunResult, **options: Any) -> tuple[Path, Workbook]:
        sink = ExcelSink(ExcelSink.Options.model_validate(options))
        (artifact,) = sink.write(result, ctx)
        return artifact.path, load_workbook(artifact.path)

    return write


@pytest.fixture
def experiment_result() -> RunResult:
    """A result shaped as the experiment orchestrator makes it: two experiments, a comparison, a failure."""
    records = [
        Record(
            row_id=f"r{i}",
            inputs={"id": f"r{i}", "product": product, "review": f"review {i}"},
            outputs={"response": f"Score: 0.{i + 4}"},
            metrics={
                "latency_s": 0.01 * (i + 1),
                "prompt_tokens": 50 + i,
                "scores": {"default": 0.4 + i / 10},
                "score_flags": {"default": i > 0},
            },
            group=group,
        )
        for group in ("baseline", "variant")
        for i, product in enumerate(["kettle", "toaster"])
    ]
    failures = [
        Failure(
            row_id="r9",
            inputs={"id": "r9", "product": "fridge", "review": "cold"},
            stage="llm",
            error="TimeoutError: no reply after 30 s",
            attempts=[{"attempt": 1, "error": "TimeoutError"}, {"attempt": 2, "error": "TimeoutError"}],
            group="variant",
        )
    ]
    stats = {"criteria": {"default": {"mean": 0.45, "count": 2}}, "overall": {"mean": 0.45, "pass_rate": 0.5}}
    aggregates = {
        "baseline": "baseline",
        "experiments": {
            name: {
                "baseline": name == "baseline",
                "rows": 2 + (name == "variant"),
                "succeeded": 2,
                "failed": int(name == "variant"),
                "not_run": 0,
                "early_stop": None,
                "aggregates": {"score_stats": stats},
            }
            for name in ("baseline", "variant")
        },
        "comparisons": {"variant": {"mean_diff": {"default": {"diff": -0.05, "p_value": 0.31}, "verdict": "same"}}},
    }
    metadata = RunMetadata(
        run_id="run-1",
        name="excel-test",
        orchestrator="experiment",
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:00:02+00:00",
        duration_s=2.5,
        rows=3,
        succeeded=4,
        failed=1,
        plugins=[
            {"domain": "sink", "name": "excel", "distribution": "elspeth-sink-excel", "version": "0.1.0"},
            {"domain": "llm_client", "name": "mock", "distribution": "elspeth-core", "version": "0.1.0"},
        ],
        extra={"experiments": ["baseline", "variant"]},
        security_level="OFFICIAL",
        cost={"total": 0.02},
    )
    return RunResult(records=records, failures=failures, aggregates=aggregates, metadata=metadata)
