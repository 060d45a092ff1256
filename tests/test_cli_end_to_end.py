"""The ``elspeth`` command, run as a user runs it: in a subprocess, on real files."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

Cli = Callable[..., Any]
ROOT = Path(__file__).resolve().parent.parent
# the version as written in its one place (tools/versions.py), read without importing elspeth
ABOUT = (ROOT / "packages/elspeth-core/src/elspeth/__init__.py").read_text(encoding="utf-8")
CORE_VERSION = ABOUT.split('__version__ = "', 1)[1].split('"', 1)[0]


def with_mock_options(settings: Path, options: str) -> None:
    """Replace the example's mock client options (``seed: 7``) with ``options``."""
    text = settings.read_text(encoding="utf-8")
    assert "    seed: 7\n" in text
    settings.write_text(text.replace("    seed: 7\n", options, 1), encoding="utf-8")


def test_init_then_run_writes_the_outputs_and_prints_a_summary(cli: Cli, tmp_path: Path) -> None:
    init = cli("init", "project", cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    assert "next: elspeth run" in init.stdout
    # --strict too: it fails a run only when a row failed, and none does here
    done = cli("run", "project/settings.yaml", "--strict", "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "(review-quality) completed" in done.stdout
    assert "60 records, 0 failures" in done.stdout
    assert "baseline (baseline): 20 ok, 0 failed; mean score" in done.stdout
    out = tmp_path / "project/output"
    for name in ("results.csv", "failures.csv", "results.jsonl", "summary.json"):
        assert (out / name).is_file()
        assert name in done.stdout
    with (out / "results.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 60
    assert {r["experiment"] for r in rows} == {"baseline", "strict-analyst", "other-seed"}
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["metadata"]["succeeded"] == 60
    assert summary["metadata"]["status"] == "completed"


def test_init_refuses_to_overwrite_without_force(cli: Cli, tmp_path: Path) -> None:
    assert cli("init", "p", cwd=tmp_path).returncode == 0
    again = cli("init", "p", cwd=tmp_path)
    assert again.returncode == 2
    assert "already has settings.yaml, data.csv; use --force to overwrite" in again.stderr


def test_strict_exits_1_when_rows_failed(cli: Cli, quickstart: Path) -> None:
    with_mock_options(quickstart, "    seed: 7\n    failure_rate: 0.3\n")
    lenient = cli("run", "settings.yaml", "--no-progress", cwd=quickstart.parent)
    assert lenient.returncode == 0, lenient.stderr
    assert "first failure: row" in lenient.stdout
    assert "mock failure" in lenient.stdout
    strict = cli("run", "settings.yaml", "--strict", "--no-progress", cwd=quickstart.parent)
    assert strict.returncode == 1
    assert "row(s) failed (--strict)" in strict.stderr
    failed = int(strict.stderr.split("error: ")[1].split(" ")[0])
    assert 0 < failed < 60
    assert f"{60 - failed} records, {failed} failures" in strict.stdout
    assert (quickstart.parent / "output/failures.csv").is_file()  # the results are written all the same


def test_disabling_the_orchestrator_plugin_fails_the_run_naming_it(cli: Cli, quickstart: Path) -> None:
    done = cli("--disable-plugin", "experiment", "run", "settings.yaml", cwd=quickstart.parent)
    assert done.returncode == 2
    assert "orchestrator.plugin: unknown orchestrator 'experiment'" in done.stderr
    assert "experiment (elspeth-orchestrator-experiment" in done.stderr
    assert "is disabled" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (quickstart.parent / "output").exists()


def test_empty_load_plugins_lists_builtins_only(cli: Cli, tmp_path: Path) -> None:
    done = cli("plugins", "list", "--json", cwd=tmp_path, env={"ELSPETH_LOAD_PLUGINS": ""})
    assert done.returncode == 0, done.stderr
    entries = done.json()
    working = [e for e in entries if e["status"] == "ok"]
    assert {e["distribution"] for e in working} == {"elspeth-core"}
    assert {("datasource", "csv"), ("llm_client", "mock"), ("sink", "jsonl")} <= {
        (e["domain"], e["name"]) for e in working
    }
    others = [e for e in entries if e["status"] != "ok"]
    assert "elspeth-orchestrator-experiment" in {e["distribution"] for e in others}
    assert {(e["status"], e["error"]) for e in others} == {("disabled", "not in ELSPETH_LOAD_PLUGINS")}


def test_plugins_list_json_describes_every_plugin(cli: Cli, tmp_path: Path) -> None:
    done = cli("plugins", "list", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    entries = done.json()
    assert entries
    for entry in entries:
        assert {"name", "domain", "distribution", "version", "status", "error"} <= set(entry)
        assert entry["status"] in ("ok", "broken", "disabled")
        assert (entry["error"] is None) == (entry["status"] == "ok")
    mock = next(e for e in entries if (e["domain"], e["name"]) == ("llm_client", "mock"))
    assert mock == {
        **mock,
        "distribution": "elspeth-core",
        "version": CORE_VERSION,
        "status": "ok",
        "error": None,
    }
    experiment = next(e for e in entries if (e["domain"], e["name"]) == ("orchestrator", "experiment"))
    assert experiment["distribution"] == "elspeth-orchestrator-experiment"


def test_plugins_list_prints_a_table(cli: Cli, tmp_path: Path) -> None:
    done = cli("plugins", "list", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()]
    assert rows[0] == ["NAME", "DOMAIN", "DISTRIBUTION", "VERSION", "STATUS"]
    assert ["experiment", "orchestrator", "elspeth-orchestrator-experiment", CORE_VERSION, "ok"] in rows


def test_plugins_show_csv_shows_options_with_types_and_defaults(cli: Cli, tmp_path: Path) -> None:
    done = cli("plugins", "show", "csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    # both the datasource and the sink are called csv
    assert "csv (datasource): Rows from a local CSV file with a header line." in out
    assert "csv (sink):" in out
    assert "path: str (required)" in out
    assert 'encoding: str (default "utf-8-sig")' in out
    assert 'delimiter: str (default ",")' in out
    assert "id_column: str | None (default null)" in out
    assert 'path: str (default "results.csv")' in out
    assert "the CSV file, relative to the settings file" in out
    # required options are listed first, before the shared optional ones
    assert out.index("path: str (required)") < out.index('encoding: str (default "utf-8-sig")')


def test_plugins_show_narrows_to_one_domain_and_speaks_json(cli: Cli, tmp_path: Path) -> None:
    done = cli("plugins", "show", "sink:csv", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (doc,) = done.json()
    assert doc["domain"] == "sink"
    path = next(o for o in doc["options"] if o["name"] == "path")
    assert path == {**path, "type": "str", "required": False, "default": "results.csv"}


def test_plugins_show_of_an_unknown_name_suggests_the_closest(cli: Cli, tmp_path: Path) -> None:
    done = cli("plugins", "show", "jsnol", cwd=tmp_path)
    assert done.returncode == 2
    assert "no plugin called 'jsnol'; did you mean 'jsonl'?" in done.stderr


def test_validate_calls_no_llm(cli: Cli, quickstart: Path) -> None:
    # every call of this client fails, so a validate that called it could not succeed
    with_mock_options(quickstart, "    seed: 7\n    failure_rate: 1.0\n")
    done = cli("validate", "settings.yaml", cwd=quickstart.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "settings.yaml is valid: orchestrator experiment, datasource csv (3 columns), llm mock, 3 sinks\n"
        "estimate: 60 LLM calls, 3,092 input tokens, unpriced (elspeth estimate for the detail)"
    )
    assert not (quickstart.parent / "output").exists()
    ran = cli("run", "settings.yaml", "--no-progress", cwd=quickstart.parent)
    assert "0 records, 60 failures" in ran.stdout


@pytest.mark.slow
def test_validate_calls_no_llm_counted_by_a_client(plugin_cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("id,text\na,first\nb,second\n", encoding="utf-8")
    (tmp_path / "settings.yaml").write_text(
        "datasource: {plugin: csv, options: {path: data.csv, id_column: id}}\n"
        "llm: fixture_echo\n"
        "rate_limiter: fixture_counting_limiter\n"
        "prompts: {user: '{{ text }}'}\n"
        "orchestrator: experiment\n"
        "sinks: [jsonl]\n",
        encoding="utf-8",
    )
    events = tmp_path / "events.jsonl"
    env = {"ELSPETH_FIXTURE_EVENTS": str(events)}
    done = plugin_cli("validate", "settings.yaml", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert not events.exists(), events.read_text()
    ran = plugin_cli("run", "settings.yaml", "--no-progress", cwd=tmp_path, env=env)
    assert ran.returncode == 0, ran.stderr
    logged = [json.loads(line)["event"] for line in events.read_text().splitlines()]
    assert logged.count("generate") == 2
    assert logged.count("acquire") == 2


def test_a_missing_settings_file_is_exit_2(cli: Cli, tmp_path: Path) -> None:
    for command in ("run", "validate"):
        done = cli(command, "nowhere.yaml", cwd=tmp_path)
        assert done.returncode == 2
        assert "settings file not found: nowhere.yaml" in done.stderr
        assert "Traceback" not in done.stderr


def test_version(cli: Cli, tmp_path: Path) -> None:
    done = cli("--version", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.strip() == f"elspeth-core {CORE_VERSION}"


def test_no_arguments_prints_help(cli: Cli, tmp_path: Path) -> None:
    done = cli(cwd=tmp_path)
    assert "Usage" in done.stdout + done.stderr
    for command in ("run", "validate", "init", "plugins"):
        assert command in done.stdout + done.stderr


def test_a_run_whose_every_row_failed_exits_1_and_says_failed(cli: Cli, quickstart: Path) -> None:
    with_mock_options(quickstart, "    seed: 7\n    failure_rate: 1.0\n")
    for extra in ([], ["--strict"]):
        done = cli("run", "settings.yaml", "--no-progress", *extra, cwd=quickstart.parent)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "(review-quality) failed in " in done.stdout
        assert "completed" not in done.stdout
        assert "0 records, 60 failures" in done.stdout
        assert "first failure: row " in done.stdout
        assert "error: the run failed: all 60 row(s) failed; the first failure is shown above" in done.stderr
        assert "Traceback" not in done.stderr
        assert (quickstart.parent / "output/failures.csv").is_file()  # what there is, is written all the same
        summary = json.loads((quickstart.parent / "output/summary.json").read_text(encoding="utf-8"))
        assert summary["metadata"]["status"] == "failed"  # the files say what the terminal says
        assert "--retry-errors" in done.stdout


def test_a_run_whose_sink_failed_exits_1_and_says_failed(cli: Cli, quickstart: Path) -> None:
    # a file where the jsonl sink's folder should go: that sink cannot write, the others still do (a folder
    # where its file should go is refused before any row: outputs replace only regular files)
    text = quickstart.read_text(encoding="utf-8")
    assert "      path: results.jsonl\n" in text
    quickstart.write_text(text.replace("      path: results.jsonl\n", "      path: blocked/results.jsonl\n"))
    (quickstart.parent / "output").mkdir()
    (quickstart.parent / "output/blocked").write_text("not a folder", encoding="utf-8")
    done = cli("run", "settings.yaml", "--no-progress", cwd=quickstart.parent)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "(review-quality) failed in " in done.stdout
    assert "completed" not in done.stdout
    assert "60 records, 0 failures" in done.stdout
    assert re.search(r"^error: sinks\[1\] \(jsonl\) failed: \w+Error: ", done.stderr, re.MULTILINE), done.stderr
    assert "Traceback" not in done.stderr
    assert (quickstart.parent / "output/results.csv").is_file()


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BAR_LINE = re.compile(
    r"experiment (?P<name>\S+) +\S+ +(?P<done>\d+)/(?P<total>\d+) (?P<failed>\d+) failed \S+ ETA (?P<eta>\S+)"
)


def bars(stderr: str) -> dict[str, list[dict[str, str]]]:
    """Every state the progress bar of each experiment was drawn in, in order."""
    drawn: dict[str, list[dict[str, str]]] = {}
    for line in re.split(r"[\r\n]+", ANSI.sub("", stderr)):
        if match := BAR_LINE.search(line):
            drawn.setdefault(match["name"], []).append(match.groupdict())
    return drawn


def run_on_a_terminal(args: list[str], cwd: Path, env: Mapping[str, str]) -> tuple[int, str, str]:
    """``python -m elspeth ARGS`` with stderr on a pseudo-terminal (as a person runs it); returns (code, out, err)."""
    import pty

    master, slave = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "elspeth", *args],
            cwd=cwd,
            env={**env, "COLUMNS": "120", "TERM": "xterm"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
        )
    finally:
        os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:  # read as it is written: a full terminal buffer would block the child
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal's last handle
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        out, _ = process.communicate(timeout=120)
    finally:
        reader.join(timeout=10)
        os.close(master)
    return process.returncode, out.decode("utf-8"), b"".join(chunks).decode("utf-8", "replace")


def failures_in(stdout: str) -> int:
    match = re.search(r"(\d+) records, (\d+) failures", stdout)
    assert match, stdout
    return int(match[2])


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_on_a_terminal_a_progress_bar_shows_rows_failures_and_eta(quickstart: Path, base_env: dict[str, str]) -> None:
    with_mock_options(quickstart, "    seed: 7\n    failure_rate: 0.3\n")
    code, out, err = run_on_a_terminal(["run", "settings.yaml"], quickstart.parent, base_env)
    assert code == 0, out + err
    drawn = bars(err)
    assert set(drawn) == {"baseline", "strict-analyst", "other-seed"}, err
    finals = {name: states[-1] for name, states in drawn.items()}
    assert {(f["done"], f["total"], f["eta"]) for f in finals.values()} == {("20", "20", "0:00:00")}
    assert sum(int(f["failed"]) for f in finals.values()) == failures_in(out) > 0
    assert "\x1b[" in err  # drawn in place, as on a terminal
    assert "20/20" not in out  # the bar is on stderr; stdout stays the summary


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_no_progress_draws_no_bar_even_on_a_terminal(quickstart: Path, base_env: dict[str, str]) -> None:
    code, out, err = run_on_a_terminal(["run", "settings.yaml", "--no-progress"], quickstart.parent, base_env)
    assert code == 0, out + err
    assert "60 records, 0 failures" in out
    assert bars(err) == {}
    assert "ETA" not in err
    assert "/20" not in err


def test_progress_forces_the_bar_when_stderr_is_not_a_terminal(cli: Cli, quickstart: Path) -> None:
    with_mock_options(quickstart, "    seed: 7\n    failure_rate: 0.3\n")
    done = cli("run", "settings.yaml", "--progress", cwd=quickstart.parent)
    assert done.returncode == 0, done.stderr
    finals = {name: states[-1] for name, states in bars(done.stderr).items()}
    assert set(finals) == {"baseline", "strict-analyst", "other-seed"}, done.stderr
    assert {(f["done"], f["total"]) for f in finals.values()} == {("20", "20")}
    assert sum(int(f["failed"]) for f in finals.values()) == failures_in(done.stdout) > 0
    without = cli("run", "settings.yaml", cwd=quickstart.parent)  # the default off a terminal: no bar
    assert without.returncode == 0, without.stderr
    assert bars(without.stderr) == {}


def test_init_refuses_where_the_example_could_not_run(cli: Cli, tmp_path: Path) -> None:
    # builtins only: the experiment orchestrator the example runs on is installed here, but not loaded
    done = cli("init", "project", cwd=tmp_path, env={"ELSPETH_LOAD_PLUGINS": ""})
    assert done.returncode == 2, done.stdout
    assert (
        "error: the example project runs on the 'experiment' orchestrator, but elspeth-orchestrator-experiment "
        f"{CORE_VERSION} is disabled (not in ELSPETH_LOAD_PLUGINS); enable it (see ELSPETH_LOAD_PLUGINS, "
        "ELSPETH_DISABLE_PLUGINS and --disable-plugin), then run `elspeth init project` again. Nothing was written."
    ) in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "project").exists()


def test_init_on_core_alone_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # in this process, with no entry point at all: what a machine with only elspeth-core installed sees
    import elspeth.discovery
    from elspeth.cli import main

    for name in [k for k in os.environ if k.startswith("ELSPETH_")]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(elspeth.discovery, "entry_point_sources", list)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["elspeth", "init", "project"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        "error: the example project runs on the 'experiment' orchestrator, but elspeth-orchestrator-experiment is "
        "not installed; install it with `pip install elspeth-orchestrator-experiment`, then run "
        "`elspeth init project` again. Nothing was written.\n"
    )
    assert not (tmp_path / "project").exists()
