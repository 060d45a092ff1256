"""Bad settings for the batch orchestrator are reported before any row, each with its line."""

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
name: bad-batch
datasource:
  plugin: csv
  options: {path: data.csv, id_column: id}
llm:
  plugin: scripted
  options:
    fail_rows: [r0000]
prompts:
  user: "{{ product }}: {{ review }}"
orchestrator:
  plugin: batch
  options:
    output_field: answer
sinks:
  - plugin: csv
"""


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.fixture
def problems(write_settings: WriteSettings, run_settings: RunSettings, registry: Registry, reviews_csv: Any) -> Any:
    def go(text: str) -> list[str]:
        path = write_settings(text, {"data.csv": reviews_csv(3)})
        with pytest.raises(ConfigError) as caught:
            run_settings(path, registry)
        assert not (path.parent / "output").exists(), "nothing is written before the settings are sound"
        return [str(p) for p in caught.value.problems]

    return go


def test_missing_prompts_are_reported_at_the_orchestrator(problems: Any) -> None:
    text = BASE.replace('prompts:\n  user: "{{ product }}: {{ review }}"\n', "")
    assert problems(text) == [
        "orchestrator: the batch orchestrator renders a prompt for each row: add `prompts` with at least `user` "
        f"to the settings (settings.yaml:{line_of(text, 'orchestrator:')})"
    ]


def test_missing_llm_is_reported(problems: Any) -> None:
    text = BASE.replace("llm:\n  plugin: scripted\n  options:\n    fail_rows: [r0000]\n", "")
    (problem,) = problems(text)
    assert problem == (
        "orchestrator: the batch orchestrator calls an LLM for each row: set `llm` in the settings "
        f"(settings.yaml:{line_of(text, 'orchestrator:')})"
    )


def test_a_template_field_the_rows_do_not_have_is_reported_at_its_line(problems: Any) -> None:
    text = BASE.replace("{{ review }}", "{{ reveiw }}")
    (problem,) = problems(text)
    assert problem.startswith("prompts.user: template uses 'reveiw', which the datasource does not have")
    assert problem.endswith(f"(settings.yaml:{line_of(text, 'user:')})")


def test_a_bad_json_path_and_an_unknown_post_processor_are_both_reported(problems: Any) -> None:
    text = BASE.replace(
        "    output_field: answer\n",
        "    output_field: answer\n"
        "    json_fields:\n"
        "      score: detail..score\n"
        "    post_processors:\n"
        "      - plugin: uper\n",
    )
    found = problems(text)
    assert found[0] == (
        "orchestrator.options.json_fields.score: 'detail..score' is not a key or dotted path (no part may be empty) "
        f"(settings.yaml:{line_of(text, 'score: detail')})"
    )
    assert found[1].startswith("orchestrator.options.post_processors[0].plugin: ")
    assert "uper" in found[1]
    assert found[1].endswith(f"(settings.yaml:{line_of(text, 'plugin: uper')})")


def test_an_unknown_option_names_its_line(problems: Any) -> None:
    text = BASE.replace("    output_field: answer\n", "    output_feild: answer\n")
    (problem,) = problems(text)
    assert problem.startswith("orchestrator.options.output_feild: ")
    assert problem.endswith(f"(settings.yaml:{line_of(text, 'output_feild')})")


def test_on_parse_error_accepts_only_its_two_values(problems: Any) -> None:
    text = BASE.replace("    output_field: answer\n", "    json_fields: {a: a}\n    on_parse_error: ignore\n")
    (problem,) = problems(text)
    assert problem.startswith("orchestrator.options.on_parse_error: ")
    assert "'fail' or 'keep_raw'" in problem


def test_include_raw_into_a_json_column_is_a_clash(problems: Any) -> None:
    options = "    output_field: a\n    include_raw: true\n    json_fields: {a: a}\n"
    text = BASE.replace("    output_field: answer\n", options)
    (problem,) = problems(text)
    assert problem.startswith("orchestrator.options.json_fields.a: 'a' is also output_field")


@needs_processors
def test_a_post_processor_column_that_is_neither_an_input_nor_an_output_is_reported(problems: Any) -> None:
    text = BASE.replace(
        "    output_field: answer\n",
        "    output_field: answer\n"
        "    post_processors:\n"
        "      - plugin: pii_redaction\n"
        "        options: {columns: [answer, review]}\n"
        "      - plugin: text_cleaning\n"
        "        options: {columns: [anwser]}\n",
    )
    (problem,) = problems(text)
    assert problem == (
        "orchestrator.options.post_processors[1].options.columns: post-processor 'text_cleaning' reads 'anwser', "
        "which the rows do not have when it runs (their fields: id, product, review, answer); did you mean 'answer'? "
        f"(settings.yaml:{line_of(text, 'columns: [anwser]')})"
    )
