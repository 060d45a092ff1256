"""Generated bad input for ``elspeth validate`` and ``elspeth run`` (issue 12, point 10).

Whatever the settings file or the CSV bytes, each command exits 0, 1 or 2, prints no traceback
(no ``--debug``), writes nothing outside ``output_dir`` (the run store lives there too) and changes
no input. The commands run in-process through the CLI, on the registry core's tests use (core's
builtins and the ``rows`` orchestrator of ``elspeth_testing``).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import elspeth.cli as cli
from elspeth import ConfigError
from elspeth.config._yaml import load_yaml_text
from elspeth_testing import build_registry

DATA = b"id,text\na,one\nb,two\n"

PATHS = [
    "results.csv",
    "data.csv",
    "../data.csv",
    "./sub/../../data.csv",
    "settings.yaml",
    "../settings.yaml",
    "/dev/null",
    ".",
    "..",
    "",
    "sub/deeper/r.jsonl",
    "elspeth-runs.sqlite",
]
OUTPUT_DIRS = ["output", ".", "out/sub", "data.csv", "data.csv/x", "./output/../output"]
TEMPLATES = [
    "{{ text }}",
    "{{ missing }}",
    "{{ text.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{% for %}",
    "{{ text|upper }} {{ id }}",
    "{{ text.append(1) }}",
    "{{",
]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**12), 10**12), st.floats(allow_nan=True), st.text(max_size=20)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def settings_texts(draw: st.DrawFn) -> str:
    """Settings near a valid file: hostile paths and templates, odd values, unknown keys, or raw text."""
    if draw(st.integers(0, 9)) == 0:  # now and then, not YAML of the right shape at all
        return draw(st.text(max_size=200))
    sink = {"plugin": draw(st.sampled_from(["csv", "jsonl", "json", "nope"])), "options": {}}
    if draw(st.booleans()):
        sink["options"]["path"] = draw(st.sampled_from(PATHS) | st.text(max_size=12))
    doc: dict[str, Any] = {
        "orchestrator": draw(st.sampled_from(["rows", "rows", "nope"])),
        "datasource": {"plugin": "csv", "options": {"path": draw(st.sampled_from(["data.csv", "nope.csv", "."]))}},
        "llm": {"plugin": draw(st.sampled_from(["static", "nope"])), "options": {"content": "hi"}},
        "prompts": {"user": draw(st.sampled_from(TEMPLATES) | st.text(max_size=20))},
        "output_dir": draw(st.sampled_from(OUTPUT_DIRS)),
        "sinks": [sink],
    }
    if draw(st.booleans()):
        doc["datasource"]["options"].update(
            draw(
                st.dictionaries(
                    st.sampled_from(["id_column", "encoding", "delimiter", "types", "allow_nul", "x"]),
                    values,
                    max_size=2,
                )
            )
        )
    if draw(st.booleans()):
        doc[draw(st.sampled_from(["concurrency", "store", "name", "retry", "allowed_endpoints", "junk"]))] = draw(
            values
        )
    return yaml.safe_dump(doc, allow_unicode=True)


csv_bytes = st.one_of(
    st.binary(max_size=300),
    st.lists(
        st.lists(st.text(st.characters(codec="utf-8"), max_size=6), min_size=1, max_size=4), min_size=1, max_size=6
    ).map(lambda rows: "\n".join(",".join(r) for r in rows).encode("utf-8")),
    st.sampled_from(
        [b"", b"id,text\n", b"id,id\n1,2\n", b"id,text\na,x\x00y\n", b'id,text\na,"open\n', b"\xff\xfe\x00"]
    ),
)
GOOD_SETTINGS = yaml.safe_dump(
    {
        "orchestrator": "rows",
        "datasource": {"plugin": "csv", "options": {"path": "data.csv"}},
        "llm": {"plugin": "static", "options": {"content": "hi"}},
        "prompts": {"user": "{{ text }}"},
        "sinks": [{"plugin": "csv"}],
    }
)


def _good(**changes: Any) -> str:
    doc: dict[str, Any] = yaml.safe_load(GOOD_SETTINGS)
    doc.update(changes)
    return yaml.safe_dump(doc)


# the bad inputs issue 12 found, always tried besides the generated ones
KNOWN_BAD_SETTINGS = [
    _good(output_dir=".", sinks=[{"plugin": "csv", "options": {"path": "data.csv"}}]),
    _good(sinks=[{"plugin": "jsonl", "options": {"path": "../data.csv"}}]),
    _good(sinks=[{"plugin": "json", "options": {"path": "../settings.yaml"}}]),
    _good(sinks=[{"plugin": "csv", "options": {"path": "/dev/null"}}]),
    # found by this test: a NUL byte in a path was "unexpected ValueError" (exit 1)
    _good(sinks=[{"plugin": "csv", "options": {"path": "\0"}}]),
    _good(datasource={"plugin": "csv", "options": {"path": "data\0.csv"}}),
    _good(output_dir="o\0"),
    _good(store={"path": "s\0.sqlite"}),
    _good(prompts={"user": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}),
    "\n".join(
        ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    ),
    "a: " + "[" * 10_000 + "]" * 10_000,
    "\x1f",  # a control character YAML refuses before parsing starts
]


@contextmanager
def project(settings_text: str, data: bytes) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "project"
        root.mkdir()
        (root / "settings.yaml").write_text(settings_text, encoding="utf-8", errors="surrogatepass")
        (root / "data.csv").write_bytes(data)
        yield root


def snapshot(root: Path) -> dict[Path, str]:
    return {
        p: hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in root.parent.rglob("*")
        if not p.is_symlink()
    }


def output_dir_of(root: Path) -> Path:
    try:  # elspeth's own loader: yaml.safe_load itself overflows the stack on deep nesting
        doc, _ = load_yaml_text((root / "settings.yaml").read_text(encoding="utf-8"), "settings.yaml")
    except (ConfigError, UnicodeDecodeError):
        doc = None
    configured = doc.get("output_dir", "output") if isinstance(doc, dict) else "output"
    return (root / str(configured)).resolve()


def check_commands(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_registry", lambda: build_registry())
    monkeypatch.chdir(root)
    before = snapshot(root)
    runner = CliRunner()
    for args in (["validate", "settings.yaml"], ["run", "settings.yaml", "--no-progress"]):
        result = runner.invoke(cli.app, args)
        output = result.output + (result.stderr if result.stderr_bytes is not None else "")
        assert result.exit_code in (0, 1, 2), (args, result.exit_code, output)
        assert "Traceback" not in output, output
        assert "error: unexpected " not in output, output  # the CLI's words for an exception nobody explained
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    after = snapshot(root)
    for path, digest in before.items():  # no input changed, none removed
        assert after.get(path) == digest, f"{path} changed"
    out = output_dir_of(root)
    for path in set(after) - set(before):  # everything new is in the output folder
        assert path == out or path.is_relative_to(out), f"{path} written outside output_dir {out}"


def _examples(name: str, items: list[Any]) -> Any:
    def add(test: Any) -> Any:
        for item in reversed(items):
            test = example(**{name: item})(test)
        return test

    return add


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=settings_texts())
@_examples("text", KNOWN_BAD_SETTINGS)
def test_generated_settings_never_crash_write_outside_or_change_an_input(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with project(text, DATA) as root:
        check_commands(root, monkeypatch)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=csv_bytes)
@_examples("data", [b"id,text\n", b"id,text\na,x\x00y\n", (",".join(["c"] * 3) + "\n").encode(), b"\xff\xfe\xfd"])
def test_generated_csv_bytes_never_crash_write_outside_or_change_an_input(
    data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    with project(GOOD_SETTINGS, data) as root:
        check_commands(root, monkeypatch)
