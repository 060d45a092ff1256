"""The validation orchestrator run in-process through ``elspeth.engine``: rules, rejects, order, streaming."""

from __future__ import annotations

import csv
import gc
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from elspeth import RunFailed, RunResult, Spool
from elspeth.registry import Registry
from elspeth_testing.plugin import RunSettings, WriteSettings

needs_processors = pytest.mark.skipif(
    importlib.util.find_spec("elspeth_processors") is None, reason="elspeth-processors is not installed"
)


RULES: dict[str, Any] = {
    "required": ["id", "name", "email"],
    "patterns": {"email": r"[^@\s]+@[^@\s]+"},
    "ranges": {"age": {"min": 18, "max": 130}},
    "allowed": {"country": ["GB", "FR"]},
    "unique": ["id"],
}


def settings(options: dict[str, Any], **top: Any) -> str:
    doc: dict[str, Any] = {
        "name": "people-check",
        "datasource": {"plugin": "csv", "options": {"path": "people.csv"}},
        "orchestrator": {"plugin": "validation", "options": options},
        "sinks": [
            {"plugin": "csv", "options": {"path": "valid.csv", "failures_path": "invalid.csv"}},
            {"plugin": "jsonl", "options": {"path": "all.jsonl"}},
        ],
        "store": {"enabled": False},
    }
    doc.update(top)
    return json.dumps(doc, indent=2)


@pytest.fixture
def run(write_settings: WriteSettings, run_settings: RunSettings, registry: Registry, people: str) -> Any:
    def go(text: str, data: str | None = None) -> RunResult:
        return run_settings(write_settings(text, {"people.csv": data if data is not None else people}), registry)

    return go


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def reasons(result: RunResult) -> dict[str, tuple[str, str]]:
    return {f.row_id: (f.stage, f.error) for f in result.failures}


def test_builtin_rules_split_valid_rows_from_rejects_with_every_reason(run: Any, tmp_path: Path) -> None:
    result = run(settings(RULES))
    assert [r.row_id for r in result.records] == ["1", "7"]
    assert reasons(result) == {
        "2": (
            "validation:pattern",
            r"'email' value 'bob-at-example' does not match /[^@\s]+@[^@\s]+/; 'age' value '17' is outside [18, 130]",
        ),
        "3": ("validation:allowed", "'country' value 'DE' is not one of: GB, FR"),
        "4": ("validation:range", "'age' value '290' is outside [18, 130]"),
        "5": ("validation:unique", "'id' value '1' repeats that of row 1"),
        "6": (
            "validation:required",
            "'name' is empty; 'email' value '=HYPERLINK(\"x\")' does not match /[^@\\s]+@[^@\\s]+/; "
            "'age' value '12' is outside [18, 130]",
        ),
        "8": ("validation:range", "'age' value 'abc' is not a number"),
    }
    assert [f.row_id for f in result.failures] == ["2", "3", "4", "5", "6", "8"], "rejects are in input order"
    violations = result.failures[0].output["violations"]
    assert violations == [
        {
            "rule": "pattern",
            "column": "email",
            "reason": r"'email' value 'bob-at-example' does not match /[^@\s]+@[^@\s]+/",
        },
        {"rule": "range", "column": "age", "reason": "'age' value '17' is outside [18, 130]"},
    ]
    assert [r["name"] for r in read_csv(tmp_path / "output/valid.csv")] == ["ann", "bad"]
    invalid = read_csv(tmp_path / "output/invalid.csv")
    assert [(r["row_id"], r["failure.stage"]) for r in invalid][:2] == [
        ("2", "validation:pattern"),
        ("3", "validation:allowed"),
    ]
    assert result.metadata.extra["rejected_by_rule"] == {
        "validation:allowed": 1,
        "validation:pattern": 1,
        "validation:range": 2,
        "validation:required": 1,
        "validation:unique": 1,
    }
    assert result.aggregates == {
        "rows": 8,
        "valid": 2,
        "rejected": 6,
        "rejected_by_rule": result.metadata.extra["rejected_by_rule"],
    }


def test_all_reasons_off_reports_the_first_broken_rule_only(run: Any) -> None:
    result = run(settings({**RULES, "all_reasons": False}))
    assert reasons(result)["2"] == (
        "validation:pattern",
        r"'email' value 'bob-at-example' does not match /[^@\s]+@[^@\s]+/",
    )
    assert reasons(result)["6"] == ("validation:required", "'name' is empty")


def test_pattern_search_mode_and_allowed_values_compared_as_text(run: Any) -> None:
    data = "code,level\nAB-12,1\nxx AB-9 yy,2\nnone,3\n"
    options = {"patterns": {"code": "AB-\\d+"}, "pattern_match": "search", "allowed": {"level": [1, 2]}}
    result = run(settings(options), data=data)
    assert [r.row_id for r in result.records] == ["1", "2"]
    assert reasons(result)["3"][0] == "validation:pattern"
    assert "'level' value '3' is not one of: 1, 2" in reasons(result)["3"][1]


def test_rule_plugins_reject_by_raising_or_by_their_verdict(run: Any) -> None:
    rules = [
        {"plugin": "no_spaces", "options": {"column": "name"}},
        {"plugin": "shouting", "options": {"column": "name"}},
        {"plugin": "falsy", "options": {"column": "name"}},
    ]
    result = run(settings({"rules": rules}))
    assert [r.row_id for r in result.records] == ["1", "4", "5", "6"]
    assert reasons(result) == {
        "2": ("validation:no_spaces", "'name' has a space"),
        "3": ("validation:shouting", "'CAROL' is shouting"),
        "7": ("validation:falsy", "rejected by falsy"),
        "8": ("validation:falsy", "worse is not allowed"),
    }
    assert result.failures[0].output["violations"] == [
        {"rule": "no_spaces", "column": "name", "reason": "'name' has a space"}
    ]


def test_a_rule_that_raises_by_mistake_rejects_the_row_naming_the_error(run: Any) -> None:
    result = run(settings({"rules": ["buggy"]}))
    assert len(result.records) == 0
    assert {f.stage for f in result.failures} == {"validation:buggy"}
    assert result.failures[0].error == "KeyError: 'oops'"


def test_builtin_and_plugin_reasons_are_combined(run: Any) -> None:
    result = run(settings({**RULES, "rules": [{"plugin": "falsy", "options": {"column": "name"}}]}))
    assert [r.row_id for r in result.records] == ["1"]
    assert reasons(result)["8"] == ("validation:range", "'age' value 'abc' is not a number; worse is not allowed")
    assert reasons(result)["7"] == ("validation:falsy", "rejected by falsy")


def test_processors_run_first_and_their_fields_can_be_checked(run: Any) -> None:
    options = {"allowed": {"domain": ["example.org"]}}
    data = "name,email\na,a@example.org\nb,b@other.net\nc,crash\n"
    result = run(settings(options, processors=["add_domain"]), data=data)
    assert [r.row_id for r in result.records] == ["1"]
    assert result.records[0].inputs["domain"] == "example.org"
    assert reasons(result) == {
        "2": ("validation:allowed", "'domain' value 'other.net' is not one of: example.org"),
        "3": ("processor", "RuntimeError: cannot split 'crash'"),
    }


def test_rows_finishing_out_of_order_are_written_in_order_and_unique_keeps_the_first(run: Any) -> None:
    lines = ["key,n"] + [f"k{i % 150},{i}" for i in range(400)]
    options = {"unique": ["key"], "rules": [{"plugin": "slow", "options": {"column": "n"}}], "reorder_window": 16}
    result = run(settings(options, concurrency=32), data="\n".join(lines) + "\n")
    assert [r.row_id for r in result.records] == [str(i) for i in range(1, 151)]
    assert [f.row_id for f in result.failures] == [str(i) for i in range(151, 401)]
    assert result.failures[0].error == "'key' value 'k0' repeats that of row 1"
    assert result.metadata.extra["reorder_buffer_peak"] <= 16


def test_rejects_path_lists_each_rejected_row_with_its_rule_and_reason(run: Any, tmp_path: Path) -> None:
    result = run(settings({**RULES, "rejects_path": "rejects/people.csv"}))
    rejects = read_csv(tmp_path / "output/rejects/people.csv")
    assert list(rejects[0]) == ["row_id", "id", "name", "email", "age", "country", "rule", "reason"]
    assert [(r["row_id"], r["rule"]) for r in rejects] == [
        ("2", "pattern, range"),
        ("3", "allowed"),
        ("4", "range"),
        ("5", "unique"),
        ("6", "required, pattern, range"),
        ("8", "range"),
    ]
    assert rejects[3]["reason"] == "'id' value '1' repeats that of row 1"
    assert rejects[4]["email"] == '\'=HYPERLINK("x")', "a formula is neutralised"
    listed = [a["path"] for a in result.metadata.to_dict()["artifacts"]]
    assert str(tmp_path / "output/rejects/people.csv") in listed
    assert str(tmp_path / "output/valid.csv") in listed
    assert not [p for p in (tmp_path / "output/rejects").iterdir() if p.name.startswith(".")]


def test_formulas_can_be_left_alone_in_the_rejects_file(run: Any, tmp_path: Path) -> None:
    run(settings({**RULES, "rejects_path": "rejects.csv", "sanitize_formulas": False}))
    rejects = read_csv(tmp_path / "output/rejects.csv")
    assert rejects[4]["email"] == '=HYPERLINK("x")'


def test_no_llm_is_needed_and_one_configured_is_never_called(run: Any) -> None:
    result = run(settings({"required": ["name"]}, llm={"plugin": "mock", "options": {"failure_rate": 1.0}}))
    assert len(result.records) == 7
    assert result.metadata.extra["timings"]["rows_per_s"] > 0


def test_results_stream_through_spools_removed_with_the_result(run: Any, tmp_path: Path) -> None:
    result = run(settings({**RULES, "chunk_size": 2}))
    assert isinstance(result.records, Spool)
    assert list(result.failures) == list(result.failures)
    files = [result.records.path, result.failures.path]
    del result
    gc.collect()
    assert not any(p.exists() for p in files)
    assert sorted(p.name for p in (tmp_path / "output").iterdir()) == ["all.jsonl", "invalid.csv", "valid.csv"]


@needs_processors
def test_a_returned_row_passes_even_with_a_column_named_valid(run: Any) -> None:
    pytest.importorskip("jsonschema")
    # schema_validation hands back the row with `valid` coerced to the boolean false: that is data, not a verdict
    data = "id,name,valid\n1,ann,false\n2,bob smith,true\n"
    schema = {"type": "object", "properties": {"valid": {"type": "boolean"}}}
    rules = [{"plugin": "schema_validation", "options": {"schema": schema}}, {"plugin": "no_spaces", "options": {}}]
    result = run(settings({"rules": rules}), data=data)
    assert [r.row_id for r in result.records] == ["1"]
    assert reasons(result) == {"2": ("validation:no_spaces", "'name' has a space")}


SCHEMA = {
    "type": "object",
    "properties": {"age": {"type": "integer", "minimum": 18}, "email": {"type": "string", "pattern": "@"}},
}


@needs_processors
def test_rule_plugins_are_opened_before_the_first_row_and_closed_after_the_last(run: Any, tmp_path: Path) -> None:
    pytest.importorskip("jsonschema")
    rules = [
        {"plugin": "schema_validation", "options": {"schema_path": "schema.json"}},
        {"plugin": "tracked", "options": {"column": "name"}},
    ]
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA), encoding="utf-8")
    result = run(settings({"rules": rules}))
    assert [r.row_id for r in result.records] == ["1", "4", "5", "7"]
    assert [f.row_id for f in result.failures] == ["2", "3", "6", "8"]
    assert reasons(result)["2"] == (
        "validation:schema_validation",
        "SchemaViolation: row does not match the schema: field 'age': 17 is less than the minimum of 18 "
        "(rule: minimum); field 'email': 'bob-at-example' does not match '@' (rule: pattern)",
    )
    assert (tmp_path / "output/closed-name.txt").is_file(), "the rule was closed when the run ended"


@needs_processors
def test_a_rule_that_cannot_open_stops_the_run_naming_it(run: Any, tmp_path: Path) -> None:
    pytest.importorskip("jsonschema")
    rules = ["no_spaces", {"plugin": "schema_validation", "options": {"schema_path": "missing.json"}}]
    with pytest.raises(RunFailed, match=r"rule 'schema_validation' \(orchestrator.options.rules\[1\]\) could not open"):
        run(settings({"rules": rules}))


@needs_processors
def test_every_rule_plugin_summary_reaches_the_metadata_even_when_listed_twice(run: Any) -> None:
    pytest.importorskip("jsonschema")
    rules = [
        {"plugin": "schema_validation", "options": {"schema": {"properties": {"age": {"type": "integer"}}}}},
        {
            "plugin": "schema_validation",
            "options": {"schema": {"properties": {"age": {"type": "integer", "minimum": 18}}}},
        },
    ]
    result = run(settings({"rules": rules, "all_reasons": False}))
    assert result.metadata.extra["rules"] == {
        # rows 3 (no age) and 8 ('abc') fail the first; without all_reasons the second sees the six others,
        # of whom 2 (17) and 6 (12) are too young
        "schema_validation[0]": {"checked": 8, "failed": 2},
        "schema_validation[1]": {"checked": 6, "failed": 2},
    }


PII_PEOPLE = (
    "id,name,note,age\n"
    "1,ann,reach me at ann@example.org,34\n"
    "2,bob,card 5555 5555 5555 4444 or bob@example.net,-3\n"
    "3,cat,cat@example.com,16\n"
)


@needs_processors
def test_personal_data_redacted_before_a_failing_step_stays_out_of_every_output_and_the_store(
    run: Any, tmp_path: Path
) -> None:
    pytest.importorskip("jsonschema")
    schema = {"type": "object", "properties": {"age": {"type": "integer", "minimum": 0}}}
    processors = [
        {"plugin": "pii_redaction", "options": {"columns": ["note"]}},
        {"plugin": "schema_validation", "options": {"schema": schema}},
    ]
    options = {"ranges": {"age": {"min": 18}}, "rejects_path": "rejects.csv"}
    sinks = [
        {"plugin": "csv", "options": {"path": "valid.csv", "failures_path": "invalid.csv"}},
        {"plugin": "json", "options": {"path": "summary.json"}},
    ]
    result = run(settings(options, processors=processors, store={"enabled": True}, sinks=sinks), data=PII_PEOPLE)
    assert reasons(result)["2"][0] == "processor"
    assert result.failures[0].inputs["note"] == "card [CARD] or [EMAIL]"
    assert reasons(result)["3"][0] == "validation:range"
    written = {p.name: p.read_bytes() for p in (tmp_path / "output").iterdir() if p.is_file()}
    assert {"invalid.csv", "rejects.csv", "summary.json", "elspeth-runs.sqlite"} <= set(written)
    for name, content in written.items():
        for value in ("ann@example.org", "bob@example.net", "cat@example.com", "5555 5555 5555 4444"):
            assert value.encode() not in content, f"{value} is in {name}"
