"""Settings files: every mistake is reported with its place, as ``path: message (file:line)``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from elspeth import ConfigError
from elspeth.config import load_settings, load_settings_text
from elspeth.engine import prepare
from elspeth_testing.plugin import MakeRegistry, WriteSettings

GOOD = """\
name: reviews
datasource:
  plugin: csv
  options:
    path: data.csv
orchestrator: rows
llm:
  plugin: static
  options:
    content: ok
sinks:
  - jsonl
  - plugin: csv
    options:
      path: results.csv
"""
DATA = {"data.csv": "id,text\n1,hello\n"}


def problems(exc: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    return [str(p) for p in exc.value.problems]


def load_text(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings_text(text, base_dir=Path("."))
    return problems(caught)


def prepare_problems(path: Path, registry_factory: MakeRegistry) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        asyncio.run(prepare(load_settings(path), registry_factory()))
    return problems(caught)


def test_good_settings_load_with_bare_names_and_defaults(write_settings: WriteSettings) -> None:
    loaded = load_settings(write_settings(GOOD, DATA))
    s = loaded.settings
    assert (s.name, s.orchestrator.plugin, s.orchestrator.options) == ("reviews", "rows", {})
    assert [(ref.plugin, ref.options) for ref in s.sinks] == [("jsonl", {}), ("csv", {"path": "results.csv"})]
    assert s.concurrency == 8
    assert loaded.output_dir == (loaded.base_dir / "output").resolve()


def test_options_written_as_null_mean_no_options() -> None:
    loaded = load_settings_text("datasource: {plugin: csv, options:}\norchestrator: rows\n", base_dir=Path("."))
    assert loaded.settings.datasource.options == {}


def test_plugin_option_error_names_path_and_line(write_settings: WriteSettings, make_registry: MakeRegistry) -> None:
    text = GOOD.replace("path: results.csv", "path: [not, a, string]")
    assert prepare_problems(write_settings(text, DATA), make_registry) == [
        "sinks[1].options.path: input should be a valid string (settings.yaml:15)"
    ]


def test_missing_plugin_option_points_at_its_options(
    write_settings: WriteSettings, make_registry: MakeRegistry
) -> None:
    text = GOOD.replace("    content: ok\n", "    contnet: ok\n")
    assert prepare_problems(write_settings(text, DATA), make_registry) == [
        "llm.options.content: field required (settings.yaml:9)",
        "llm.options.contnet: unknown key; did you mean 'content'? (settings.yaml:10)",
    ]


def test_unknown_plugin_lists_installed_ones_and_suggests_the_closest(
    write_settings: WriteSettings, make_registry: MakeRegistry
) -> None:
    text = GOOD.replace("  - jsonl\n", "  - jsnol\n")
    installed = make_registry().names("sink")
    assert {"csv", "json", "jsonl"} <= set(installed)
    assert prepare_problems(write_settings(text, DATA), make_registry) == [
        f"sinks[0].plugin: unknown sink 'jsnol'; did you mean 'jsonl'? Installed sinks: {', '.join(installed)}. "
        "(settings.yaml:12)"
    ]


def test_unknown_plugin_with_nothing_close(write_settings: WriteSettings, make_registry: MakeRegistry) -> None:
    text = GOOD.replace("orchestrator: rows", "orchestrator: zzzzzz")
    (message,) = prepare_problems(write_settings(text, DATA), make_registry)
    assert message.startswith("orchestrator.plugin: unknown orchestrator 'zzzzzz'")
    assert message.endswith("Installed orchestrators: rows. (settings.yaml:6)")
    assert "did you mean" not in message


def test_every_problem_is_reported_at_once() -> None:
    text = "name: x\nconcurrency: 0\ncolour: blue\nsinks: {plugin: csv}\n"
    assert load_text(text) == [
        "orchestrator: field required (settings.yaml:1)",
        "datasource: field required (settings.yaml:1)",
        "sinks: input should be a valid list (settings.yaml:4)",
        "concurrency: input should be greater than or equal to 1 (settings.yaml:2)",
        "colour: unknown key (known keys: name, security_level, orchestrator, datasource, llm, middleware,"
        " rate_limiter, cost_tracker, processors, utilities, sinks, observers, prompts, concurrency, retry, batch_api,"
        " executor, store,"
        " allowed_endpoints, output_dir) (settings.yaml:3)",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "llm:\n  plugin: openai\n  options:\n    api_key: sk-123\n",
            "llm.options.api_key: secrets are read only from environment variables; "
            "put it in one and write `api_key_env: VAR_NAME` (settings.yaml:4)",
        ),
        (
            "sinks:\n  - plugin: blob\n    options:\n      Connection_String: DefaultEndpoints=x\n",
            "sinks[0].options.Connection_String: secrets are read only from environment variables; "
            "put it in one and write `Connection_String_env: VAR_NAME` (settings.yaml:4)",
        ),
    ],
)
def test_secrets_in_the_file_are_refused(text: str, expected: str) -> None:
    assert load_text(text) == [expected]


def test_secret_names_from_the_environment_are_fine() -> None:
    text = "datasource: csv\norchestrator: rows\nllm: {plugin: x, options: {api_key_env: KEY, token: ''}}\n"
    assert load_settings_text(text, base_dir=Path(".")).settings.llm is not None


def test_a_secret_is_never_echoed_in_the_error() -> None:
    (message,) = load_text("llm: {plugin: x, options: {password: hunter2}}\n")
    assert "hunter2" not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a\n- b\n", "the settings file must be a YAML mapping (key: value pairs) (settings.yaml:1)"),
        ("just words\n", "the settings file must be a YAML mapping (key: value pairs) (settings.yaml:1)"),
        ("", "the settings file must be a YAML mapping (key: value pairs) (settings.yaml)"),
    ],
)
def test_not_a_mapping(text: str, expected: str) -> None:
    assert load_text(text) == [expected]


def test_yaml_syntax_error_names_the_line() -> None:
    (message,) = load_text("name: x\ndatasource:\n  plugin: csv\n   options: {\n")
    assert message.startswith("not valid YAML: ")
    assert message.endswith("(settings.yaml:4)")


def test_yaml_error_in_a_file_names_that_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.yml"
    path.write_text("a: [1, 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"not valid YAML: .*\(mine\.yml:2\)"):
        load_settings(path)


def test_missing_settings_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"settings file not found: .*nope\.yaml"):
        load_settings(tmp_path / "nope.yaml")


def test_a_file_that_is_not_text(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="cannot read settings file"):
        load_settings(path)


def test_digest_changes_when_a_setting_changes(write_settings: WriteSettings) -> None:
    first = load_settings(write_settings(GOOD, DATA)).digest()
    assert load_settings(write_settings(GOOD + "\n# a comment\n", DATA)).digest() == first
    assert load_settings(write_settings(GOOD.replace("content: ok", "content: no"), DATA)).digest() != first


def test_store_url_refuses_a_password_even_where_the_secret_check_does_not_look() -> None:
    from pydantic import ValidationError

    from elspeth.config.settings import StoreSettings

    assert StoreSettings(url="postgresql://elspeth@db:5432/runs").url == "postgresql://elspeth@db:5432/runs"
    with pytest.raises(ValidationError, match="the URL holds a password"):
        StoreSettings(url="postgresql://elspeth:pw@db/runs")
    with pytest.raises(ValidationError, match=r"give store\.path"):
        StoreSettings(url="postgresql://db/runs", path="x.sqlite")
