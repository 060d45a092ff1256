"""The signed sink declares its bundle's files, so none may replace a device or an input (issue 12, point 1)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from elspeth import ConfigError, load_settings
from elspeth.engine import prepare
from elspeth.resume import RunOptions
from elspeth_testing.plugin import MakeRegistry, WriteSettings

SETTINGS = """\
orchestrator: rows
datasource:
  plugin: csv
  options:
    path: data.csv
sinks:
  - plugin: signed
"""


def test_a_fifo_where_a_bundle_file_goes_is_refused_before_any_row(
    write_settings: WriteSettings, make_registry: MakeRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ELSPETH_SIGNING_KEY", "k" * 32)
    (tmp_path / "output" / "signed").mkdir(parents=True)
    os.mkfifo(tmp_path / "output" / "signed" / "records.jsonl")
    path = write_settings(SETTINGS, {"data.csv": "text\na\n"})
    with pytest.raises(ConfigError) as caught:
        asyncio.run(prepare(load_settings(path), make_registry(), options=RunOptions(record=False)))
    [problem] = [str(p) for p in caught.value.problems]
    assert problem.startswith("sinks[0].options.path: sink 'signed' would replace ")
    assert "records.jsonl, a FIFO (named pipe), not a regular file" in problem
    assert problem.endswith("(settings.yaml:7)")
