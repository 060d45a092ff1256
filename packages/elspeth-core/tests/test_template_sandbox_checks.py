"""A template the sandbox refuses at render fails validate and run before any LLM call (issue 12, point 3)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from elspeth import ConfigError, TemplateError, compile_template
from elspeth.config import load_settings
from elspeth.engine import prepare
from elspeth.resume import RunOptions
from elspeth_testing.plugin import MakeRegistry, WriteSettings


@pytest.mark.parametrize(
    ("source", "refused"),
    [
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "'__subclasses__' is an attribute the sandbox refuses"),
        ("{{ x.__class__ }}", "line 1: '__class__' is an attribute the sandbox refuses"),
        ("one\n{{ x['__globals__'] }}", "line 2: '__globals__' is an attribute the sandbox refuses"),
        ("{{ x._private }}", "'_private' is an attribute the sandbox refuses"),
        ("{{ gen.gi_frame }}", "'gi_frame' is an attribute the sandbox refuses"),
        ("{% set l = [] %}{{ l.append(1) }}", "'append()' changes its object, which the sandbox refuses"),
        ("{{ d.update({'a': 1}) }}", "'update()' changes its object"),
    ],
)
def test_what_the_sandbox_refuses_fails_at_compile(source: str, refused: str) -> None:
    with pytest.raises(TemplateError) as caught:
        compile_template(source)
    assert refused in str(caught.value)
    assert str(caught.value).endswith("every row would fail when it is rendered")


@pytest.mark.parametrize(
    "source",
    [
        "{{ row.field }} {{ text|upper }} {{ items|join(', ') }}",
        "{{ d.items() }} {{ d.get('a') }} {{ '%s'|format(x) }} {{ s.strip().lower() }}",
        "{% for k, v in d.items() %}{{ k }}={{ v }}{% endfor %} {{ x['key'] }} {{ x[0] }}",
    ],
)
def test_ordinary_templates_still_compile(source: str) -> None:
    assert compile_template(source).fields


def test_validate_and_run_refuse_it_at_its_settings_line_before_any_call(
    write_settings: WriteSettings, make_registry: MakeRegistry, tmp_path: Path
) -> None:
    text = (
        "orchestrator: rows\n"
        "datasource:\n  plugin: csv\n  options:\n    path: data.csv\n"
        "llm:\n  plugin: static\n  options:\n    content: hi\n"
        'prompts:\n  system: fine\n  user: "{{ text.__class__.__init__.__globals__ }}"\n'
        "sinks:\n  - plugin: jsonl\n"
    )
    path = write_settings(text, {"data.csv": "text\na\n"})
    for options in (RunOptions(record=False), RunOptions()):
        with pytest.raises(ConfigError) as caught:
            asyncio.run(prepare(load_settings(path), make_registry(), options=options))
        [problem] = [str(p) for p in caught.value.problems]
        assert problem.startswith("prompts.user: template line 1: '__globals__' is an attribute the sandbox refuses")
        assert problem.endswith("(settings.yaml:12)")
    assert not (tmp_path / "output").exists()  # nothing run, nothing written
