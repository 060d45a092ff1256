"""Security levels: the data's level, each recipient's clearance, refusal before any work, and the record of it."""

from __future__ import annotations

import asyncio
import json

import pytest

from elspeth import ConfigError
from elspeth.config import load_settings
from elspeth.discovery import load_registry
from elspeth.engine import prepare, run_settings
from elspeth.security import SecurityLevel, clearance, parse_level

BASE = """
name: sec
{run_level}
datasource: {{plugin: csv, options: {{path: data.csv}}{source_level}}}
llm: {{plugin: mock{llm_level}}}
prompts: {{user: "{{{{ text }}}}"}}
middleware: [{{plugin: health_monitor{mw_level}}}]
orchestrator:
  plugin: experiment
  options:
    experiments:
      - {{name: a, baseline: true}}
      - {{name: b, llm: {{plugin: static, options: {{content: "Score: 1"}}{variant_level}}}}}
sinks:
  - {{plugin: jsonl{sink_level}}}
  - {{plugin: json{sink_level}}}
"""


def write(tmp_path, **levels: str):
    fields = {k: "" for k in ("run_level", "source_level", "llm_level", "mw_level", "variant_level", "sink_level")}
    for key, level in levels.items():
        fields[key] = f"security_level: {level}" if key == "run_level" else f", security_level: {level}"
    (tmp_path / "data.csv").write_text("text\nfirst\nsecond\n")
    path = tmp_path / "settings.yaml"
    path.write_text(BASE.format(**fields))
    return load_settings(path)


def check(loaded):
    return asyncio.run(prepare(loaded, load_registry(environ={})))


def test_levels_are_ordered_and_parsed_from_names_and_aliases():
    assert SecurityLevel.UNOFFICIAL < SecurityLevel.OFFICIAL < SecurityLevel.OFFICIAL_SENSITIVE
    assert SecurityLevel.OFFICIAL_SENSITIVE < SecurityLevel.PROTECTED < SecurityLevel.SECRET
    assert parse_level("official-sensitive") is SecurityLevel.OFFICIAL_SENSITIVE
    assert parse_level("Official Sensitive") is SecurityLevel.OFFICIAL_SENSITIVE
    assert parse_level("OFFICIAL:SENSITIVE") is SecurityLevel.OFFICIAL_SENSITIVE
    assert parse_level("confidential") is SecurityLevel.PROTECTED
    assert parse_level("public") is SecurityLevel.UNOFFICIAL
    with pytest.raises(ValueError, match="use one of UNOFFICIAL, OFFICIAL, OFFICIAL_SENSITIVE, PROTECTED, SECRET"):
        parse_level("top-secret")


def test_undeclared_clearance_is_the_lowest_unless_the_plugin_says_otherwise():
    class Anything:
        pass

    class Offline:
        default_clearance = "SECRET"

    assert clearance(None, Anything) is SecurityLevel.UNOFFICIAL
    assert clearance(None, Offline) is SecurityLevel.SECRET
    assert clearance(SecurityLevel.OFFICIAL, Offline) is SecurityLevel.OFFICIAL


def test_unofficial_data_needs_no_declarations(tmp_path):
    check(write(tmp_path))


def test_a_sink_cleared_below_the_data_is_refused_before_any_work(tmp_path):
    loaded = write(tmp_path, source_level="PROTECTED", mw_level="PROTECTED")
    with pytest.raises(ConfigError) as caught:
        check(loaded)
    problems = caught.value.problems
    assert [p.path for p in problems] == ["sinks[0]", "sinks[1]"]
    assert "sink 'jsonl' is cleared for UNOFFICIAL but the data is PROTECTED (from datasource 'csv')" in str(
        problems[0]
    )
    assert problems[0].line == 15  # the "- {plugin: jsonl...}" line
    assert not (tmp_path / "output").exists()


def test_the_settings_level_raises_the_data_level_and_middleware_is_checked(tmp_path):
    loaded = write(tmp_path, run_level="OFFICIAL", mw_level="UNOFFICIAL", sink_level="OFFICIAL")
    with pytest.raises(ConfigError) as caught:
        check(loaded)
    (problem,) = caught.value.problems
    assert problem.path == "middleware[0].security_level"
    assert "llm_middleware 'health_monitor' is cleared for UNOFFICIAL but the data is OFFICIAL" in problem.message
    assert "(from the settings' security_level)" in problem.message


def test_an_experiment_variants_client_is_checked_where_it_is_declared(tmp_path):
    loaded = write(tmp_path, source_level="SECRET", mw_level="SECRET", sink_level="SECRET", variant_level="PROTECTED")
    with pytest.raises(ConfigError) as caught:
        check(loaded)
    (problem,) = caught.value.problems
    assert problem.path == "orchestrator.options.experiments[1].llm"
    assert "llm_client 'static' is cleared for PROTECTED but the data is SECRET" in problem.message


def test_an_unknown_level_in_the_file_names_its_place(tmp_path):
    path = tmp_path / "settings.yaml"
    (tmp_path / "data.csv").write_text("text\nx\n")
    path.write_text(
        BASE.format(
            run_level="",
            source_level=", security_level: TOPSECRET",
            llm_level="",
            mw_level="",
            variant_level="",
            sink_level="",
        )
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    (problem,) = caught.value.problems
    assert problem.path == "datasource.security_level"
    assert problem.line == 4
    assert "unknown security level 'TOPSECRET'" in problem.message


def test_the_level_is_recorded_in_the_metadata_and_on_every_artifact(tmp_path):
    loaded = write(tmp_path, source_level="OFFICIAL_SENSITIVE", mw_level="PROTECTED", sink_level="PROTECTED")
    result = run_settings(loaded, load_registry(environ={}))
    assert result.metadata.to_dict()["security_level"] == "OFFICIAL_SENSITIVE"
    artifacts = result.metadata.to_dict()["artifacts"]
    assert [a["sink"] for a in artifacts] == ["jsonl", "json"]
    assert {a["security_level"] for a in artifacts} == {"OFFICIAL_SENSITIVE"}
    summary = json.loads((tmp_path / "output" / "summary.json").read_text())
    assert summary["metadata"]["security_level"] == "OFFICIAL_SENSITIVE"
