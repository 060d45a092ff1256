"""An orchestrator written as an outside distribution, with only ``from elspeth import ...``, runs like a builtin.

The distribution is the complete example of ``docs/orchestrator-guide.md``: every file is read from the
guide (each fenced block after an ``<!-- file: PATH -->`` line), so the guide and this test cannot drift.
It is written into a temporary folder, built into a wheel, pip-installed into a fresh virtual
environment that sees this environment's packages, and run with ``elspeth run``.
"""

from __future__ import annotations

import ast
import csv
import json
import os
import re
import subprocess
import sys
import sysconfig
import venv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import elspeth

pytestmark = pytest.mark.slow

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "orchestrator-guide.md"
DIST = "elspeth-sample-orchestrator"
_FILE = re.compile(r"^<!-- file: (?P<path>\S+) -->\n```[a-z]*\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)


def guide_files() -> dict[str, str]:
    """Every file of the guide's complete example, by its path in the project."""
    return {m["path"]: m["body"] for m in _FILE.finditer(GUIDE.read_text(encoding="utf-8"))}


FILES = guide_files()
SETTINGS = FILES["settings.yaml"]
MODULES = {path: body for path, body in FILES.items() if path.endswith(".py")}


def make_venv(path: Path, wheel: Path, env: Mapping[str, str]) -> Path:
    """A venv that sees this environment's packages (through a .pth) and has ``wheel`` installed."""
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(path)
    python = path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    query = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = subprocess.run([str(python), "-c", query], check=True, capture_output=True, text=True, env=env)
    here = sysconfig.get_paths()["purelib"]
    Path(purelib.stdout.strip(), "_elspeth_test_parent_env.pth").write_text(f"import site; site.addsitedir({here!r})\n")
    install = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)]
    subprocess.run(install, env=env, check=True, capture_output=True, timeout=300)
    return python


@pytest.fixture(scope="module")
def sample_python(base_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a venv with the guide's distribution installed from its wheel."""
    project = tmp_path_factory.mktemp("sample-project")
    for path, body in FILES.items():
        if path != "settings.yaml":
            (project / path).parent.mkdir(parents=True, exist_ok=True)
            (project / path).write_text(body, encoding="utf-8")
    dist = tmp_path_factory.mktemp("sample-dist")
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist)]
    subprocess.run([*build, str(project)], env=base_env, check=True, capture_output=True, timeout=300)
    (wheel,) = dist.glob("*.whl")
    return make_venv(tmp_path_factory.mktemp("sample-venv") / "venv", wheel, base_env)


def elspeth_cli(python: Path, *args: str, cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "elspeth", *args],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )


def test_the_guide_holds_a_whole_distribution_and_a_settings_file() -> None:
    assert set(FILES) == {
        "pyproject.toml",
        "src/elspeth_sample/__init__.py",
        "src/elspeth_sample/plugin.py",
        "src/elspeth_sample/orchestrator.py",
        "settings.yaml",
    }
    for path, body in MODULES.items():
        compile(body, path, "exec")  # a syntax error in the guide fails here, not in a wheel build


@pytest.mark.parametrize("path", sorted(MODULES))
def test_the_outside_modules_import_only_names_elspeth_exports(path: str) -> None:
    public = set(elspeth.__all__)
    imported: list[str] = []
    for node in ast.walk(ast.parse(MODULES[path], path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert alias.name.split(".")[0] != "elspeth", f"{path}: `import {alias.name}`; use from elspeth import"
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "elspeth":
            assert node.module == "elspeth", f"{path}: imports from {node.module}, which is not the public API"
            imported += [alias.name for alias in node.names]
    assert sorted(set(imported) - public) == [], f"{path} imports names that are not in elspeth.__all__"
    if path.endswith(("plugin.py", "orchestrator.py")):
        assert imported, f"{path} imports nothing from elspeth: the test would prove nothing"


def test_the_entry_point_module_imports_only_elspeth_at_import_time() -> None:
    tree = ast.parse(MODULES["src/elspeth_sample/plugin.py"])
    top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    assert {n.module for n in top if isinstance(n, ast.ImportFrom)} == {"__future__", "elspeth"}


def test_the_outside_orchestrator_is_listed_with_its_distribution(
    sample_python: Path, base_env: dict[str, str], tmp_path: Path
) -> None:
    done = elspeth_cli(sample_python, "plugins", "list", "--json", cwd=tmp_path, env=base_env)
    assert done.returncode == 0, done.stderr
    entries: list[dict[str, Any]] = json.loads(done.stdout)
    (entry,) = [e for e in entries if e["name"] == "sample"]
    assert (entry["domain"], entry["distribution"], entry["version"], entry["status"]) == (
        "orchestrator",
        DIST,
        "2.0.1",
        "ok",
    )
    assert entry["description"] == "Asks the LLM about a seeded random sample of the rows and records each reply."


def test_elspeth_run_runs_the_outside_orchestrator_on_a_seeded_sample(
    sample_python: Path, base_env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "settings.yaml").write_text(SETTINGS, encoding="utf-8")
    words = "id,word\n" + "".join(f"w{i},word{i}\n" for i in range(50))
    (tmp_path / "words.csv").write_text(words, encoding="utf-8")
    sampled = []
    for _ in range(2):
        done = elspeth_cli(sample_python, "run", "settings.yaml", "--no-progress", cwd=tmp_path, env=base_env)
        assert done.returncode == 0, done.stderr
        assert "(sampling) completed" in done.stdout
        assert "20 records, 0 failures" in done.stdout
        assert "sample: 20 of 50 rows answered, 0 failed" in done.stdout, "the orchestrator's summary() line"
        with (tmp_path / "output/sampled.csv").open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        ids = [r["row_id"] for r in rows]
        assert ids == sorted(ids, key=lambda i: int(i[1:])), "the sample is in input order"
        assert {r["response"] for r in rows} == {"hello there"}
        sampled.append(ids)
    assert len(set(sampled[0])) == 20
    assert sampled[0] == sampled[1], "the same seed samples the same rows"
    summary = json.loads((tmp_path / "output/summary.json").read_text(encoding="utf-8"))
    assert summary["aggregates"] == {"sampled": 20, "of": 50}
    plugins = summary["metadata"]["plugins"]
    assert {"domain": "orchestrator", "name": "sample", "distribution": DIST, "version": "2.0.1"} in plugins


def test_a_processor_failure_is_recorded_with_the_redacted_row(
    sample_python: Path, base_env: dict[str, str], tmp_path: Path
) -> None:
    pytest.importorskip("jsonschema")
    processors = (
        "processors:\n"
        "  - {plugin: pii_redaction, options: {columns: [word]}}\n"
        "  - {plugin: schema_validation, options: {schema: {properties: {n: {type: integer}}}}}\n"
    )
    text = SETTINGS.replace("sinks:\n", processors + "sinks:\n").replace(
        "    options: {path: sampled.csv}\n", "    options: {path: sampled.csv, failures_path: failed.csv}\n"
    )
    (tmp_path / "settings.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "words.csv").write_text("id,word,n\na,ann@example.org,1\nb,bob@example.org,two\n", encoding="utf-8")
    done = elspeth_cli(sample_python, "run", "settings.yaml", "--no-progress", cwd=tmp_path, env=base_env)
    assert "1 records, 1 failures" in done.stdout, done.stderr
    with (tmp_path / "output/failed.csv").open(encoding="utf-8", newline="") as handle:
        (failure,) = list(csv.DictReader(handle))
    assert (failure["row_id"], failure["word"], failure["failure.stage"]) == ("b", "[EMAIL]", "processor")
    assert failure["failure.error"].startswith("SchemaViolation: row does not match the schema: field 'n'")
    for path in (tmp_path / "output").iterdir():
        assert b"bob@example.org" not in path.read_bytes(), f"the address is in {path.name}"


def test_the_outside_orchestrators_check_names_the_line(
    sample_python: Path, base_env: dict[str, str], tmp_path: Path
) -> None:
    text = SETTINGS.replace("{{ word }}", "{{ wrod }}")
    (tmp_path / "settings.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "words.csv").write_text("id,word\na,x\n", encoding="utf-8")
    line = text.splitlines().index('  user: "say {{ wrod }}"') + 1
    done = elspeth_cli(sample_python, "validate", "settings.yaml", cwd=tmp_path, env=base_env)
    assert done.returncode == 2
    expected = (
        "prompts.user: template uses 'wrod', which the datasource does not have "
        f"(its columns: id, word) (settings.yaml:{line})"
    )
    assert expected in done.stderr


# -- beside a builtin: what the row runner and the pipeline do for it, the same as for `batch` -----------

SIDE_BY_SIDE = """
name: side-by-side
datasource: {{plugin: csv, options: {{path: data.csv, id_column: id}}}}
llm: {{plugin: openai, options: {{model: test-model, base_url: '{base_url}', max_connections: 4}}}}
prompts: {{user: "Rate item {{{{ id }}}}: {{{{ text }}}}"}}
concurrency: 4
retry: {{max_attempts: 3, initial_delay_s: 0.05, timeout_s: 10}}
{extra}orchestrator: {orchestrator}
sinks: [{{plugin: jsonl}}, {{plugin: json}}]
"""


def committed_rows(store: Path) -> int:
    """Rows committed to the run store so far (0 before it exists), read as another process would."""
    if not store.exists():
        return 0
    import sqlite3

    try:
        with sqlite3.connect(store) as conn:
            (count,) = conn.execute("SELECT count(*) FROM rows").fetchone()
    except sqlite3.OperationalError:  # the run is still creating its tables
        return 0
    return int(count)


def side_by_side(tmp_path: Path, name: str, base_url: str, rows: int, extra: str = "") -> Path:
    orchestrator = "{plugin: batch}" if name == "batch" else f"{{plugin: sample, options: {{n: {rows}}}}}"
    folder = tmp_path / name
    folder.mkdir()
    width = 2 if rows <= 100 else 3
    (folder / "data.csv").write_text("id,text\n" + "".join(f"r{i:0{width}d},review {i}\n" for i in range(rows)))
    path = folder / "settings.yaml"
    path.write_text(SIDE_BY_SIDE.format(base_url=base_url, extra=extra, orchestrator=orchestrator))
    return path


def jsonl(path: Path) -> list[dict[str, Any]]:
    lines = (path.parent / "output" / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def with_key(env: Mapping[str, str]) -> dict[str, str]:
    return {**env, "OPENAI_API_KEY": "test-key"}


def runs_of(python: Path, path: Path, env: Mapping[str, str]) -> list[dict[str, Any]]:
    done = elspeth_cli(python, "runs", "list", "--settings", str(path), "--json", cwd=path.parent, env=env)
    assert done.returncode == 0, done.stderr
    listed: list[dict[str, Any]] = json.loads(done.stdout)
    return listed


@pytest.mark.parametrize("name", ["batch", "sample"])
def test_it_retries_rate_limits_and_shows_progress_as_batch_does(
    name: str, sample_python: Path, base_env: dict[str, str], tmp_path: Path
) -> None:
    from elspeth_testing.llm_server import LLMTestServer, ServerConfig

    limiter = "rate_limiter: {plugin: fixed_window, options: {requests: 8, per_seconds: 0.5}}\n"
    with LLMTestServer(ServerConfig(latency_ms=5, seed=1)) as server:
        server.script(["429", "500"], match="Rate item r03:")  # answered on the third attempt
        server.script(["500", "500", "500"], match="Rate item r07:")  # attempts exhausted: the row fails
        path = side_by_side(tmp_path, name, server.openai_base_url, 30, limiter)
        done = elspeth_cli(sample_python, "run", str(path), "--progress", cwd=path.parent, env=with_key(base_env))
        arrived = sorted(r.t for r in server.requests("chat/completions"))
    assert done.returncode == 0, done.stderr
    assert "29 records, 1 failures" in done.stdout
    assert re.search(rf"{name}\b.*30/30\s+1 failed", done.stderr), f"no finished progress bar in {done.stderr!r}"
    lines = {line["row_id"]: line for line in jsonl(path)}
    assert sorted(lines) == [f"r{i:02d}" for i in range(30)]
    assert lines["r03"]["metrics"]["attempts"] == 3, "retried by the pipeline, and counted"
    assert {line["metrics"]["attempts"] for key, line in lines.items() if key not in ("r03", "r07")} == {1}
    failed = lines["r07"]
    assert (failed["status"], failed["stage"]) == ("failed", "llm")
    assert [a["attempt"] for a in failed["attempts"]] == [1, 2, 3]
    assert {a["stage"] for a in failed["attempts"]} == {"llm"}
    assert len(arrived) == 34  # 30 rows, 2 retries of r03, 2 of r07
    assert arrived[-1] - arrived[0] >= 1.5, "34 calls at 8 per 0.5 s span at least four windows"
    summary = json.loads((path.parent / "output" / "summary.json").read_text(encoding="utf-8"))
    assert summary["metadata"]["rate_limiter"]["fixed_window"]["waited_s"] > 0


@pytest.mark.parametrize("name", ["batch", "sample"])
def test_ctrl_c_then_resume_sends_only_the_pending_prompts_as_batch_does(
    name: str, sample_python: Path, base_env: dict[str, str], tmp_path: Path
) -> None:
    import signal
    import time

    from elspeth_testing.llm_server import LLMTestServer, ServerConfig

    env, rows = with_key(base_env), 200  # 5 s of calls at least: Ctrl-C comes well before the end
    with LLMTestServer(ServerConfig(latency_ms=100, seed=5)) as server:
        path = side_by_side(tmp_path, name, server.openai_base_url, rows)
        command = [str(sample_python), "-m", "elspeth", "run", str(path), "--no-progress"]
        proc = subprocess.Popen(command, cwd=path.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline, store = time.monotonic() + 60, path.parent / "output/elspeth-runs.sqlite"
        while committed_rows(store) < 8 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        (run,) = runs_of(sample_python, path, env)
        assert run["status"] == "interrupted"
        assert 0 < run["done"] < rows
        assert run["pending"] == rows - run["done"]
        time.sleep(0.3)  # a request cut off by the exit is recorded when the server notices the client went
        first = [r.prompt for r in server.requests("chat/completions")]
        assert len(first) == len(set(first)) == run["done"], "every call sent before Ctrl-C was finished and committed"
        resume = ["run", str(path), "--resume", run["run_id"], "--progress"]
        resumed = elspeth_cli(sample_python, *resume, cwd=path.parent, env=env)
        assert resumed.returncode == 0, resumed.stderr
        second = [r.prompt for r in server.requests("chat/completions")][len(first) :]
    every = {f"Rate item r{i:03d}: review {i}" for i in range(rows)}
    assert sorted(second) == sorted(every - set(first)), "the resume sent exactly the pending prompts, once each"
    assert re.search(rf"{name}\b.*{rows}/{rows}", resumed.stderr), "resumed rows advance the bar too"
    assert sorted(line["row_id"] for line in jsonl(path)) == [f"r{i:03d}" for i in range(rows)]
    (run,) = runs_of(sample_python, path, env)
    assert (run["status"], run["done"], run["pending"], run["attempts"]) == ("completed", rows, 0, 2)
