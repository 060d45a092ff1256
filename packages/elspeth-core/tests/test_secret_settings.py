"""Secret-shaped values in any settings position that reaches the wire are refused at load, with their line."""

from __future__ import annotations

from pathlib import Path

import pytest

from elspeth import ConfigError
from elspeth.config import load_settings_text

HEAD = "orchestrator: rows\ndatasource: csv\nllm:\n  plugin: openai\n  options:\n"


@pytest.mark.parametrize(
    ("options", "where", "message"),
    [
        (
            "    extra_body: {Authorization: 'Bearer abcdefgh'}\n",
            "llm.options.extra_body.Authorization",
            "`Authorization` with a value sends a credential written in the settings file",
        ),
        ("    params: {api-key: abc123}\n", "llm.options.params.api-key", "secrets are read only from environment"),
        ("    headers: {x-api-key: abc123}\n", "llm.options.headers.x-api-key", "`x-api-key` with a value"),
        (
            "    headers: {Ocp-Apim-Subscription-Key: abc123}\n",
            "llm.options.headers.Ocp-Apim-Subscription-Key",
            "sends a credential",
        ),
        ("    base_url: 'https://me:pw@api.example.com/v1'\n", "llm.options.base_url", "holds user-info"),
        ("    base_url: 'https://api.example.com/v1?api-key=abc'\n", "llm.options.base_url", "holds `api-key=`"),
        ("    endpoint: 'https://x.openai.azure.com/?sig=abc'\n", "llm.options.endpoint", "holds `sig=`"),
        ("    extra_body: {auth: 'Bearer abcdefgh123'}\n", "llm.options.extra_body.auth", "an HTTP credential"),
        ("    extra_body: {note: sk-abcdefghijklmnopqrstuv}\n", "llm.options.extra_body.note", "an API key ('sk-...')"),
        ("    params: {stop: ['Basic dXNlcjpwYXNz']}\n", "llm.options.params.stop[0]", "an HTTP credential"),
        (
            "    extra_body: {jwt: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3In0.c2lnbmF0dXJl}\n",
            "llm.options.extra_body.jwt",
            "a token (a JWT)",
        ),
        (
            "    extra_body: {conn: 'AccountName=a;AccountKey=QUJD'}\n",
            "llm.options.extra_body.conn",
            "a key ('AccountKey=')",
        ),
    ],
)
def test_a_secret_in_a_wire_position_is_refused_with_its_line(options: str, where: str, message: str) -> None:
    text = HEAD + "    model: m\n" + options
    with pytest.raises(ConfigError) as caught:
        load_settings_text(text, base_dir=Path("."))
    report = str(caught.value)
    assert f"{where}: " in report
    assert message in report
    assert "settings.yaml:7" in report
    assert "environment variable" in report


def test_ordinary_values_pass() -> None:
    text = HEAD + (
        "    model: m\n"
        "    base_url: 'http://127.0.0.1:8000/v1?deployment=x'\n"
        "    api_key_env: OPENAI_API_KEY\n"
        "    max_tokens: 100\n"
        "    extra_body: {top_k: 5, Authorization: '', user: 'Bearer of news', style: Basic instructions}\n"
        "prompts: {system: 'Token counting', user: 'Review: {{ review }}'}\n"
        "allowed_endpoints: ['http://127.0.0.1:8000']\n"
    )
    loaded = load_settings_text(text, base_dir=Path("."))
    assert loaded.settings.llm is not None


def test_every_secret_in_a_file_is_reported_together() -> None:
    text = HEAD + "    model: m\n    base_url: 'https://u:p@h/v1'\n    extra_body: {Authorization: 'Bearer abcdefgh'}\n"
    with pytest.raises(ConfigError) as caught:
        load_settings_text(text, base_dir=Path("."))
    report = str(caught.value)
    assert "llm.options.base_url" in report
    assert "settings.yaml:7" in report
    assert "llm.options.extra_body.Authorization" in report
    assert "settings.yaml:8" in report


def test_validate_exits_2_naming_the_setting(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from elspeth.cli import app

    settings = tmp_path / "settings.yaml"
    settings.write_text(HEAD + "    model: m\n    base_url: 'https://api.example.com/v1?api-key=abc123'\n")
    done = CliRunner().invoke(app, ["validate", str(settings)])
    assert done.exit_code == 2
    assert "llm.options.base_url: this URL's query holds `api-key=`" in done.output
    assert "settings.yaml:7" in done.output
    assert "abc123" not in done.output
