"""``reference_match``: every method on the hard cases, then in a real run; a broken reference is missing, not wrong."""

from __future__ import annotations

from typing import Any

import pytest

from elspeth import ConfigError, LLMResponse, Row, Usage
from elspeth_judges.reference import ReferenceMatch, normalize


def _score(method: str, response: str, reference: Any, **options: Any) -> dict[str, Any]:
    plugin = ReferenceMatch(ReferenceMatch.Options(reference_column="ref", method=method, **options))
    row = Row(id="r1", index=0, data={"ref": reference})
    return plugin.process_row(row, {"default": LLMResponse(content=response, usage=Usage(1, 1))})


@pytest.mark.parametrize(
    ("method", "response", "reference", "options", "score"),
    [
        ("exact", "Paris", "Paris", {}, 1.0),
        ("exact", "  Paris\n", "Paris", {}, 1.0),
        ("exact", "paris", "Paris", {}, 0.0),
        ("exact", "paris", "Paris", {"case_sensitive": False}, 1.0),
        ("exact", "Paris.", "Paris", {}, 0.0),
        ("normalized", "The  Eiffel-Tower!", "eiffel tower", {}, 1.0),
        ("normalized", "\uff30\uff41\uff52\uff49\uff53", "paris", {}, 1.0),
        ("normalized", "Straße", "STRASSE", {}, 1.0),
        ("normalized", "Paris, France", "Paris", {}, 0.0),
        ("regex", "The answer is 42.", r"\b42\b", {}, 1.0),
        ("regex", "The answer is 420.", r"\b42\b", {}, 0.0),
        ("regex", "42 and more", r"42", {"fullmatch": True}, 0.0),
        ("regex", " 42 ", r"42", {"fullmatch": True}, 1.0),
        ("numeric", "About 3.14159 I think", "3.14", {"tolerance": 0.01}, 1.0),
        ("numeric", "About 3.16", "3.14", {"tolerance": 0.01}, 0.0),
        ("numeric", "It costs 1,250 pounds", "1250", {}, 1.0),
        ("numeric", "from 10 to 104", "100", {"relative_tolerance": 0.05, "number": "last"}, 1.0),
        ("numeric", "from 10 to 104", "100", {"relative_tolerance": 0.05}, 0.0),
        ("numeric", "-2.5e3 metres", "-2500", {}, 1.0),
        ("numeric", "no number here", "7", {}, 0.0),
    ],
)
def test_each_method(method: str, response: str, reference: Any, options: dict[str, Any], score: float) -> None:
    out = _score(method, response, reference, **options)
    assert out["scores"] == {"default": score}
    assert out["score_flags"] == {"default": score == 1.0}
    assert "reference_errors" not in out


@pytest.mark.parametrize(
    ("method", "reference", "error"),
    [
        ("exact", "", "row has no reference in 'ref'"),
        ("numeric", "seven", "reference 'seven' is not a number"),
        ("regex", "(unclosed", "reference '(unclosed' is not a regular expression"),
    ],
)
def test_a_broken_reference_is_a_missing_score_with_the_reason(method: str, reference: str, error: str) -> None:
    out = _score(method, "anything 7", reference)
    assert out["scores"] == {"default": None}
    assert out["score_flags"] == {}, "a missing score is neither a pass nor a fail"
    assert out["reference_errors"]["default"].startswith(error)


def test_normalize_follows_squad() -> None:
    assert normalize("The Cat, an  animal!") == "cat animal"


def test_in_a_run_through_the_openai_client(run_judged: Any) -> None:
    # the server replies "Score: 0.xx" and a second line
    rows = [
        {"id": f"r{i}", "text": f"item {i}", "ref": r"^Score: 0\.\d\d\n" if i % 2 else r"^Score: 9"} for i in range(6)
    ]
    options = {
        "row_plugins": [{"plugin": "reference_match", "options": {"reference_column": "ref", "method": "regex"}}],
        "aggregators": ["score_stats"],
    }
    result = run_judged(options, rows=rows)
    scores = {r.row_id: r.metrics["scores"]["default"] for r in result.records}
    assert scores == {"r0": 0.0, "r1": 1.0, "r2": 0.0, "r3": 1.0, "r4": 0.0, "r5": 1.0}
    stats = result.aggregates["experiments"]["default"]["aggregates"]["score_stats"]["overall"]
    assert stats["pass_rate"] == 0.5
    numeric = {"reference_column": "ref", "method": "numeric", "tolerance": 0.25}
    rows = [{"id": f"r{i}", "text": f"item {i}", "ref": "0.5"} for i in range(8)]
    result = run_judged({"row_plugins": [{"plugin": "reference_match", "options": numeric}]}, rows=rows)
    for record in result.records:
        first = float(record.outputs["response"].split()[1])
        assert record.metrics["scores"]["default"] == (1.0 if abs(first - 0.5) <= 0.25 else 0.0)


def test_a_reference_column_the_data_lacks_is_refused_naming_the_field(run_judged: Any) -> None:
    options = {"row_plugins": [{"plugin": "reference_match", "options": {"reference_column": "answer"}}]}
    with pytest.raises(ConfigError) as caught:
        run_judged(options, rows=2)
    text = str(caught.value)
    assert "orchestrator.options.row_plugins[0].options.reference_column: the datasource has no column 'answer'" in text
