"""A full disk names the file being written and says the disk is full (issue 12, point 4), on a real tiny tmpfs."""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from elspeth import DiskFull, RunFailed
from elspeth.files import write_atomically
from elspeth.store import RunStore, StoreError
from elspeth_testing.plugin import MakeRegistry, RunSettings, WriteSettings


def _fill(path: Path) -> None:
    with path.open("wb") as handle:
        while True:
            handle.write(b"x" * 4096)
            handle.flush()


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs, filled to the last byte."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], check=False).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    with pytest.raises(OSError, match="No space left") as caught:
        _fill(disk / "filler")
    assert caught.value.errno == errno.ENOSPC
    yield disk
    subprocess.run(["umount", str(disk)], check=False)


def test_a_sink_file_on_a_full_disk_is_named_and_said_full(full_disk: Path) -> None:
    target = full_disk / "results.csv"
    with pytest.raises(DiskFull) as caught:
        write_atomically(target, lambda h: h.write("row\n" * 10_000))
    assert str(caught.value).startswith(f"the disk is full: cannot write {target} (No space left on device)")
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]  # no temporary file left behind


def test_the_run_store_on_a_full_disk_says_so_not_corrupted(full_disk: Path) -> None:
    path = full_disk / "runs.sqlite"
    with pytest.raises(StoreError) as caught:
        RunStore.open(path).close()
    message = str(caught.value)
    assert message.startswith(f"the disk is full: cannot write the run store {path} (")
    assert "corrupted" not in message


def test_a_run_whose_sink_meets_a_full_disk_fails_naming_the_sink_and_file(
    write_settings: WriteSettings, run_settings: RunSettings, make_registry: MakeRegistry, full_disk: Path
) -> None:
    text = (
        "orchestrator: rows\n"
        "datasource:\n  plugin: csv\n  options:\n    path: data.csv\n"
        f"output_dir: {full_disk}\n"
        "store:\n  enabled: false\n"
        "sinks:\n  - plugin: jsonl\n"
    )
    path = write_settings(text, {"data.csv": "text\n" + "some words\n" * 5_000})
    with pytest.raises(RunFailed) as caught:
        run_settings(path, make_registry())
    assert str(caught.value) == (
        f"sinks[0] (jsonl) failed: DiskFull: the disk is full: cannot write {full_disk / 'results.jsonl'} "
        "(No space left on device); free some space or write elsewhere"
    )
