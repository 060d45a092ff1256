"""Bad settings for the validation orchestrator are reported before any row, each with its line."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from elspeth import ConfigError
from elspeth.registry import Registry
from elspeth_testing.plugin import RunSettings, WriteSettings

needs_processors = pytest.mark.skipif(
    importlib.util.find_spec("elspeth_processors") is None, reason="elspeth-processors is not installed"
)


BASE = """\
name: bad-validation
datasource:
  plugin: csv
  options: {path: people.csv}
orchestrator:
  plugin: validation
  options:
    required: [id, name]
sinks:
  - plugin: csv
"""


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.fixture
def problems(write_settings: WriteSettings, run_settings: RunSettings, registry: Registry, people: str) -> Any:
    def go(text: str) -> list[str]:
        path = write_settings(text, {"people.csv": people})
        with pytest.raises(ConfigError) as caught:
            run_settings(path, registry)
        assert not (path.parent / "output").exists(), "nothing is written before the settings are sound"
        return [str(p) for p in caught.value.problems]

    return go


COLUMNS = "its columns: id, name, email, age, country"


def test_a_rule_on_an_unknown_column_is_reported_at_its_line(problems: Any) -> None:
    text = BASE.replace(
        "    required: [id, name]\n",
        "    required:\n      - id\n      - nmae\n"
        "    patterns:\n      emial: '.+@.+'\n"
        "    ranges:\n      aeg: {min: 0}\n"
        "    allowed:\n      county: [GB]\n"
        "    unique: [ID]\n",
    )
    assert problems(text) == [
        f"orchestrator.options.required[1]: column 'nmae' is not in the datasource ({COLUMNS}); "
        f"did you mean 'name'? (settings.yaml:{line_of(text, '- nmae')})",
        f"orchestrator.options.patterns.emial: column 'emial' is not in the datasource ({COLUMNS}); "
        f"did you mean 'email'? (settings.yaml:{line_of(text, 'emial')})",
        f"orchestrator.options.ranges.aeg: column 'aeg' is not in the datasource ({COLUMNS}); "
        f"did you mean 'age'? (settings.yaml:{line_of(text, 'aeg')})",
        f"orchestrator.options.allowed.county: column 'county' is not in the datasource ({COLUMNS}); "
        f"did you mean 'country'? (settings.yaml:{line_of(text, 'county')})",
        f"orchestrator.options.unique[0]: column 'ID' is not in the datasource ({COLUMNS}) "
        f"(settings.yaml:{line_of(text, 'unique')})",
    ]


def test_a_column_a_processor_adds_is_known(
    write_settings: WriteSettings, run_settings: RunSettings, registry: Registry, people: str
) -> None:
    text = BASE.replace("    required: [id, name]\n", "    required: [domain]\n") + "processors: [add_domain]\n"
    result = run_settings(write_settings(text, {"people.csv": people}), registry)
    assert len(result.records) == 6  # two rows have an email without an @, so no domain


def test_a_bad_regex_and_a_bad_range_are_reported(problems: Any) -> None:
    text = BASE.replace(
        "    required: [id, name]\n",
        "    patterns:\n      email: '[unclosed'\n    ranges:\n      age: {min: 10, max: 1}\n",
    )
    found = problems(text)
    assert found[0].startswith("orchestrator.options.ranges.age: min (10) is greater than max (1)")
    assert found[0].endswith(f"(settings.yaml:{line_of(text, 'age:')})")
    text = text.replace("{min: 10, max: 1}", "{min: 1}")
    (problem,) = problems(text)
    assert problem.startswith("orchestrator.options.patterns.email: not a valid regular expression: ")
    assert problem.endswith(f"(settings.yaml:{line_of(text, 'unclosed')})")


def test_no_rule_at_all_is_an_error(problems: Any) -> None:
    text = BASE.replace("  options:\n    required: [id, name]\n", "")
    (problem,) = problems(text)
    assert problem == (
        "orchestrator: the validation orchestrator has no rule to check: set `required`, `patterns`, `ranges`, "
        f"`allowed`, `unique` or `rules` in its options (settings.yaml:{line_of(text, 'orchestrator:')})"
    )


def test_an_unknown_rule_plugin_names_its_line(problems: Any) -> None:
    text = BASE.replace("    required: [id, name]\n", "    rules:\n      - plugin: no_space\n")
    (problem,) = problems(text)
    assert problem.startswith("orchestrator.options.rules[0].plugin: ")
    assert "no_spaces" in problem, "the closest installed name is suggested"
    assert problem.endswith(f"(settings.yaml:{line_of(text, 'no_space')})")


def test_an_empty_allowed_list_is_an_error(problems: Any) -> None:
    text = BASE.replace("    required: [id, name]\n", "    allowed:\n      country: []\n")
    problem = problems(text)[0]
    assert problem.startswith("orchestrator.options.allowed.country: list at least one allowed value")


@needs_processors
def test_a_rule_plugin_reading_a_column_the_rows_do_not_have_is_reported_at_its_line(problems: Any) -> None:
    text = BASE.replace(
        "    required: [id, name]\n",
        "    required: [id, name]\n    rules:\n      - plugin: pii_redaction\n        options: {columns: [emial]}\n",
    )
    (problem,) = problems(text)
    assert problem == (
        "orchestrator.options.rules[0].options.columns: rule 'pii_redaction' reads 'emial', which the rows do not "
        f"have when it runs (their fields: id, name, email, age, country); did you mean 'email'? "
        f"(settings.yaml:{line_of(text, 'columns: [emial]')})"
    )
