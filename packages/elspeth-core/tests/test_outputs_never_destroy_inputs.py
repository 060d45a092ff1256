"""No output of a run may replace what the run reads, nor a device, FIFO, socket or folder (issue 12, point 1)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from elspeth import ConfigError, ElspethError
from elspeth.config import load_settings
from elspeth.engine import prepare
from elspeth.files import file_kind, write_atomically
from elspeth.outputs import same_file
from elspeth.resume import RunOptions
from elspeth_testing.plugin import MakeRegistry, WriteSettings

DATA = "id,text\na,one\nb,two\n"


def settings(sinks: str, *, output_dir: str = "output", extra: str = "") -> str:
    return f"""\
name: guard
orchestrator: rows
datasource:
  plugin: csv
  options:
    path: data.csv
    id_column: id
llm:
  plugin: static
  options:
    content: hi
prompts:
  user: "{{{{ text }}}}"
output_dir: {output_dir}
{extra}sinks:
{sinks}"""


def sink(plugin: str, path: str, key: str = "path") -> str:
    return f"  - plugin: {plugin}\n    options:\n      {key}: {path}\n"


def problems(path: Path, registry: object, options: RunOptions | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        asyncio.run(prepare(load_settings(path), registry, options=options))  # type: ignore[arg-type]
    return [str(p) for p in caught.value.problems]


@pytest.fixture
def registry(make_registry: MakeRegistry) -> object:
    return make_registry()


@pytest.mark.parametrize(
    ("output_dir", "target"),
    [
        (".", "data.csv"),  # through output_dir: .
        ("output", "../data.csv"),  # through ..
        ("output", "sub/../../data.csv"),
        ("output", "ABSOLUTE"),  # an absolute path
    ],
)
@pytest.mark.parametrize("plugin", ["csv", "jsonl", "json"])
def test_a_sink_naming_the_datasource_file_is_refused_before_any_row(
    write_settings: WriteSettings, registry: object, tmp_path: Path, output_dir: str, target: str, plugin: str
) -> None:
    target = str(tmp_path / "data.csv") if target == "ABSOLUTE" else target
    path = write_settings(settings(sink(plugin, target), output_dir=output_dir), {"data.csv": DATA})
    found = problems(path, registry)
    assert len(found) == 1
    assert found[0].startswith("sinks[0].options.path: sink '" + plugin + "' would overwrite ")
    assert ", which datasource 'csv' reads (line 6); write it somewhere else" in found[0]
    assert found[0].endswith("(settings.yaml:18)")
    assert (tmp_path / "data.csv").read_text() == DATA


def test_a_symlink_to_the_input_is_refused(write_settings: WriteSettings, registry: object, tmp_path: Path) -> None:
    path = write_settings(settings(sink("csv", "link.csv")), {"data.csv": DATA})
    (tmp_path / "output").mkdir()
    (tmp_path / "output" / "link.csv").symlink_to(tmp_path / "data.csv")
    [problem] = problems(path, registry)
    assert "would overwrite" in problem
    assert "datasource 'csv'" in problem


def test_a_hard_link_to_the_input_is_refused(write_settings: WriteSettings, registry: object, tmp_path: Path) -> None:
    path = write_settings(settings(sink("jsonl", "hard.jsonl")), {"data.csv": DATA})
    (tmp_path / "output").mkdir()
    os.link(tmp_path / "data.csv", tmp_path / "output" / "hard.jsonl")
    [problem] = problems(path, registry)
    assert "would overwrite" in problem


def test_the_settings_file_and_the_run_store_are_inputs(
    write_settings: WriteSettings, registry: object, tmp_path: Path
) -> None:
    text = settings(sink("json", "settings.yaml") + sink("jsonl", "elspeth-runs.sqlite"), output_dir=".")
    path = write_settings(text, {"data.csv": DATA})
    found = problems(path, registry, RunOptions())
    assert "sinks[0].options.path: sink 'json' would overwrite" in found[0]
    assert "which is the settings file; " in found[0]
    assert "sinks[1].options.path: sink 'jsonl' would overwrite" in found[1]
    assert "which is the run store; " in found[1]
    # validate does not record: the store is no input then, but the settings file still is
    assert len(problems(path, registry, RunOptions(record=False))) == 1


def test_the_response_cache_and_another_sink_s_file_are_refused(
    write_settings: WriteSettings, registry: object
) -> None:
    extra = "utilities:\n  - plugin: response_cache\n    options:\n      path: cache.sqlite\n"
    text = settings(sink("csv", "cache.sqlite") + sink("csv", "a.csv") + sink("jsonl", "a.csv"), extra=extra)
    found = problems(write_settings(text, {"data.csv": DATA}), registry, RunOptions(record=False))
    assert len(found) == 2
    assert "sinks[0].options.path" in found[0]
    assert "which utility 'response_cache' reads (line 18)" in found[0]
    assert "sinks[2].options.path" in found[1]
    assert "which sink 'csv' also writes (line 25)" in found[1]


def test_the_failures_file_and_the_audit_trail_are_checked_too(write_settings: WriteSettings, registry: object) -> None:
    extra = "middleware:\n  - plugin: audit_logger\n    options:\n      path: ../data.csv\n"
    text = settings(sink("csv", "../data.csv", key="failures_path"), extra=extra)
    found = problems(write_settings(text, {"data.csv": DATA}), registry, RunOptions(record=False))
    assert [p.split(":")[0] for p in found] == ["middleware[0].options.path", "sinks[0].options.failures_path"]


@pytest.mark.parametrize("kind", ["fifo", "dev", "dir"])
def test_an_output_that_is_not_a_regular_file_is_refused(
    write_settings: WriteSettings, registry: object, tmp_path: Path, kind: str
) -> None:
    target = {"fifo": str(tmp_path / "pipe"), "dev": "/dev/null", "dir": str(tmp_path / "folder")}[kind]
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "dir":
        os.mkdir(target)
    path = write_settings(settings(sink("csv", target)), {"data.csv": DATA})
    [problem] = problems(path, registry, RunOptions(record=False))
    expected = {"fifo": "a FIFO (named pipe)", "dev": "a character device", "dir": "a folder"}[kind]
    assert f"would replace {target}, {expected}, not a regular file" in problem
    assert problem.startswith("sinks[0].options.path:")
    assert file_kind(Path(target)) is not None  # still what it was


def test_write_atomically_never_replaces_a_device_or_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for target in (fifo, Path("/dev/null")):
        with pytest.raises(ElspethError, match="not a regular file"):
            write_atomically(target, lambda h: h.write("x"))
        assert file_kind(target) is not None
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]  # no temporary file left


def test_an_ordinary_output_still_passes(write_settings: WriteSettings, registry: object, tmp_path: Path) -> None:
    path = write_settings(settings(sink("csv", "results.csv")), {"data.csv": DATA})
    prepared = asyncio.run(prepare(load_settings(path), registry, options=RunOptions(record=False)))  # type: ignore[arg-type]
    assert prepared.sinks
    assert not (tmp_path / "output").exists()  # validate creates nothing


def test_same_file_sees_case_only_where_the_file_system_folds_it(tmp_path: Path) -> None:
    (tmp_path / "Data.csv").write_text("x")
    assert same_file(tmp_path / "Data.csv", tmp_path / "Data.csv")
    folds = (tmp_path / "DATA.CSV").exists()
    assert same_file(tmp_path / "Data.csv", tmp_path / "DATA.CSV") is folds


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "ro"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)], check=False).returncode:
        pytest.skip("cannot mount a read-only tmpfs here")
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


def test_an_unwritable_output_dir_is_a_settings_error(
    write_settings: WriteSettings, registry: object, read_only_dir: Path
) -> None:
    path = write_settings(settings(sink("csv", "r.csv"), output_dir=f"{read_only_dir}/out"), {"data.csv": DATA})
    [problem] = problems(path, registry, RunOptions(record=False))
    assert problem.startswith(f"output_dir: cannot create {read_only_dir}/out in {read_only_dir} (read-only")
    assert problem.endswith("(settings.yaml:14)")


def test_an_output_dir_that_is_a_file_is_a_settings_error(write_settings: WriteSettings, registry: object) -> None:
    path = write_settings(settings(sink("csv", "r.csv"), output_dir="data.csv/out"), {"data.csv": DATA})
    [problem] = problems(path, registry, RunOptions(record=False))
    assert problem.startswith("output_dir: ")
    assert "is not a folder" in problem


@pytest.mark.parametrize("target", ["../elsewhere.csv", "/tmp/elspeth-outside-output-dir.csv", "escape/r.csv"])
def test_an_output_outside_output_dir_is_refused(
    write_settings: WriteSettings, registry: object, tmp_path: Path, target: str
) -> None:
    (tmp_path / "output").mkdir()
    (tmp_path / "output" / "escape").symlink_to(tmp_path)  # a symlink out of the output folder
    path = write_settings(settings(sink("csv", target)), {"data.csv": DATA})
    [problem] = problems(path, registry, RunOptions(record=False))
    assert problem.startswith("sinks[0].options.path: sink 'csv' would write ")
    assert f"outside output_dir {tmp_path / 'output'}; a run writes only in its output folder" in problem
    assert not Path("/tmp/elspeth-outside-output-dir.csv").exists()
