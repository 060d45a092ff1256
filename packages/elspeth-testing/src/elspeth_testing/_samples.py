"""Sample data for contract tests: run results with awkward content, and LLM requests."""

from __future__ import annotations

from elspeth import Failure, LLMRequest, LLMResponse, Record, RunMetadata, RunResult, Usage

__all__ = ["UNICODE_TEXT", "EchoClient", "sample_request", "sample_run_result"]

UNICODE_TEXT = "naïve café — 日本語 ✓ 🙂"
"""Text no sink may mangle: accents, a dash, CJK, a check mark and an emoji outside the BMP."""


def sample_run_result(marker: str = "first", *, records: int = 3, failures: int = 1) -> RunResult:
    """A run result with ``records`` records and ``failures`` failures.

    Each row id starts with ``marker``, inputs hold :data:`UNICODE_TEXT`, a comma, a quote and a
    newline, and metrics nest one level of dicts, so a sink sees what real runs produce.

    Args:
        marker: a word found in every row id, to tell two results apart in written files.
        records: how many records.
        failures: how many failures.

    """
    recs = [
        Record(
            row_id=f"{marker}-{i}",
            inputs={"text": f"{UNICODE_TEXT} #{i}", "note": 'a, "quoted"\nsecond line'},
            outputs={"response": f"reply {i}: {UNICODE_TEXT}"},
            metrics={"score": 0.25 * i, "tokens": {"prompt": 10 + i, "completion": 5}, "cost": None},
        )
        for i in range(records)
    ]
    fails = [
        Failure(
            row_id=f"{marker}-failed-{i}",
            inputs={"text": f"{UNICODE_TEXT} failed #{i}", "note": ""},
            stage="llm",
            error=f"TimeoutError: no reply after 30 s ({UNICODE_TEXT})",
            attempts=[{"attempt": 1, "error": "TimeoutError"}, {"attempt": 2, "error": "TimeoutError"}],
        )
        for i in range(failures)
    ]
    metadata = RunMetadata(
        run_id=f"run-{marker}",
        name="contract",
        orchestrator="rows",
        rows=records + failures,
        succeeded=records,
        failed=failures,
        cost={"total": 0.0125, "currency": "USD"},
    )
    aggregates = {"score": {"mean": 0.25, "by_group": {"a": 0.5, "b": None}}}
    return RunResult(records=recs, failures=fails, aggregates=aggregates, metadata=metadata)


def sample_request(user: str = "Summarise: the kettle boils fast.", **metadata: object) -> LLMRequest:
    """An LLM request with the metadata a run attaches (run id, row id, attempt) plus ``metadata``."""
    meta: dict[str, object] = {"run_id": "run-contract", "row_id": "r1", "attempt": 1, **metadata}
    return LLMRequest(system="You are terse.", user=user, params={"temperature": 0.0}, metadata=meta)


class EchoClient:
    """Replies with the user prompt; a real client for middleware tests."""

    name = "echo"

    def __init__(self) -> None:
        self.requests: list[LLMRequest] = []

    async def generate(self, request: LLMRequest) -> LLMResponse:
        """Return the user prompt as the reply, with token counts."""
        self.requests.append(request)
        return LLMResponse(content=request.user, usage=Usage(len(request.user.split()), 1), model="echo")
