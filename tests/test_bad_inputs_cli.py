"""Bad inputs as a hostile but fair user gives them to ``elspeth validate`` and ``elspeth run`` (issue 12)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Cli = Callable[..., Any]
DATA = "id,text\na,one\nb,two\n"


def settings(sinks: str, *, output_dir: str = "output", head: str = "") -> str:
    return (
        f"name: bad-input\n{head}orchestrator: batch\n"
        "datasource:\n  plugin: csv\n  options:\n    path: data.csv\n    id_column: id\n"
        "llm:\n  plugin: static\n  options:\n    content: hi\n"
        'prompts:\n  user: "{{ text }}"\n'
        f"output_dir: {output_dir}\nsinks:\n{sinks}"
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    pytest.importorskip("elspeth_batch")
    (tmp_path / "data.csv").write_text(DATA, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_sink_over_the_input_through_output_dir_dot_is_exit_2_and_the_input_survives(
    cli: Cli, project: Path, command: str
) -> None:
    (project / "s.yaml").write_text(settings("  - plugin: csv\n    options:\n      path: data.csv\n", output_dir="."))
    done = cli(command, "s.yaml", *(["--no-progress"] if command == "run" else []), cwd=project)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "error: sinks[0].options.path: sink 'csv' would overwrite" in done.stderr
    assert "which datasource 'csv' reads (line 6)" in done.stderr
    assert done.stderr.rstrip().endswith("(s.yaml:18)")
    assert (project / "data.csv").read_text(encoding="utf-8") == DATA
    assert sorted(p.name for p in project.iterdir()) == ["data.csv", "s.yaml"]


def test_a_sink_naming_a_device_is_exit_2_and_the_device_stays(cli: Cli, project: Path) -> None:
    (project / "s.yaml").write_text(settings("  - plugin: jsonl\n    options:\n      path: /dev/null\n"))
    done = cli("run", "s.yaml", "--no-progress", cwd=project)
    assert done.returncode == 2
    assert "sinks[0].options.path: sink 'jsonl' would replace /dev/null, a character device" in done.stderr
    assert Path("/dev/null").is_char_device()


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_header_without_rows_warns_and_under_strict_is_exit_2(cli: Cli, project: Path, command: str) -> None:
    (project / "data.csv").write_text("id,text\n", encoding="utf-8")
    (project / "s.yaml").write_text(settings("  - plugin: csv\n    options:\n      path: r.csv\n"))
    extra = ["--no-progress"] if command == "run" else []
    strict = cli(command, "s.yaml", "--strict", *extra, cwd=project)
    assert strict.returncode == 2
    assert "error: datasource.options.path: datasource 'csv' has no data rows (--strict" in strict.stderr
    assert strict.stderr.rstrip().endswith("(s.yaml:6)")
    assert not (project / "output" / "r.csv").exists()
    lenient = cli(command, "s.yaml", *extra, cwd=project)
    assert lenient.returncode == 0, lenient.stderr
    assert "warning: data.csv has a header but no data rows: the run has nothing to do" in lenient.stderr


def test_a_nul_byte_is_exit_2_naming_line_and_column(cli: Cli, project: Path) -> None:
    (project / "data.csv").write_bytes(b"id,text\na,one\nb,t\x00wo\n")
    (project / "s.yaml").write_text(settings("  - plugin: csv\n    options:\n      path: r.csv\n"))
    done = cli("validate", "s.yaml", cwd=project)
    assert done.returncode == 2
    assert "datasource 'csv': data.csv line 3, column 2: a NUL byte in a field" in done.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "\n".join(
                ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
                + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
            ),
            "alias bomb?) (s.yaml:5)",
        ),
        ("a: " + "[" * 10_000 + "]" * 10_000, "nested more than 64 levels deep (s.yaml:1)"),
    ],
)
def test_yaml_bombs_are_exit_2_with_the_line(cli: Cli, tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "s.yaml").write_text(text + "\n", encoding="utf-8")
    done = cli("validate", "s.yaml", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.rstrip().endswith(expected)
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_template_the_sandbox_refuses_is_exit_2_at_its_line(cli: Cli, project: Path, command: str) -> None:
    text = settings("  - plugin: csv\n    options:\n      path: r.csv\n").replace(
        '"{{ text }}"', "\"{{ ''.__class__.__mro__[1].__subclasses__() }}\""
    )
    (project / "s.yaml").write_text(text, encoding="utf-8")
    done = cli(command, "s.yaml", *(["--no-progress"] if command == "run" else []), cwd=project)
    assert done.returncode == 2
    assert "error: prompts.user: template line 1: '__subclasses__' is an attribute the sandbox refuses" in done.stderr
    assert done.stderr.rstrip().endswith("(s.yaml:13)")
    assert not (project / "output").exists()


def test_a_read_only_output_dir_is_exit_2_naming_output_dir_and_its_line(cli: Cli, project: Path) -> None:
    folder = project / "ro"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)], check=False).returncode:
        pytest.skip("cannot mount a read-only tmpfs here (needs root)")
    try:
        (project / "s.yaml").write_text(settings("  - plugin: csv\n", output_dir="ro"), encoding="utf-8")
        done = cli("run", "s.yaml", "--no-progress", cwd=project)
    finally:
        subprocess.run(["umount", str(folder)], check=False)
    assert done.returncode == 2
    assert f"error: output_dir: cannot write into {folder} (read-only file system)" in done.stderr
    assert done.stderr.rstrip().endswith("(s.yaml:14)")
    assert "unexpected" not in done.stderr


def test_max_messages_on_a_mode_that_does_not_stream_is_exit_2_naming_it(cli: Cli, project: Path) -> None:
    (project / "s.yaml").write_text(settings("  - plugin: csv\n    options:\n      path: r.csv\n"))
    done = cli("run", "s.yaml", "--no-progress", "--max-messages", "1", cwd=project)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "orchestrator: --max-messages bounds a streaming run; batch is not one" in done.stderr
    assert not (project / "output" / "r.csv").exists()


def test_max_seconds_stops_a_batch_run_too_and_it_stays_resumable(cli: Cli, project: Path) -> None:
    slow = settings("  - plugin: csv\n    options:\n      path: r.csv\n").replace(
        "llm:\n  plugin: static\n  options:\n    content: hi\n",
        "llm:\n  plugin: mock\n  options:\n    latency_ms: 800\n",
    )
    (project / "data.csv").write_text("id,text\n" + "".join(f"r{i},t{i}\n" for i in range(40)), encoding="utf-8")
    (project / "s.yaml").write_text(slow.replace("orchestrator: batch\n", "orchestrator: batch\nconcurrency: 2\n"))
    done = cli("run", "s.yaml", "--no-progress", "--max-seconds", "1", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "stopped: time limit reached (--max-seconds 1)" in done.stdout
    assert "resume with: elspeth run s.yaml --resume" in done.stdout
