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
DIST = "elspeth-shout-orchestrator"
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
def shout_python(base_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a venv with the guide's distribution installed from its wheel."""
    project = tmp_path_factory.mktemp("shout-project")
    for path, body in FILES.items():
        if path != "settings.yaml":
            (project / path).parent.mkdir(parents=True, exist_ok=True)
            (project / path).write_text(body, encoding="utf-8")
    dist = tmp_path_factory.mktemp("shout-dist")
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist)]
    subprocess.run([*build, str(project)], env=base_env, check=True, capture_output=True, timeout=300)
    (wheel,) = dist.glob("*.whl")
    return make_venv(tmp_path_factory.mktemp("shout-venv") / "venv", wheel, base_env)


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
        "src/elspeth_shout/__init__.py",
        "src/elspeth_shout/plugin.py",
        "src/elspeth_shout/orchestrator.py",
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
    tree = ast.parse(MODULES["src/elspeth_shout/plugin.py"])
    top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    assert {n.module for n in top if isinstance(n, ast.ImportFrom)} == {"__future__", "elspeth"}


def test_the_outside_orchestrator_is_listed_with_its_distribution(
    shout_python: Path, base_env: dict[str, str], tmp_path: Path
) -> None:
    done = elspeth_cli(shout_python, "plugins", "list", "--json", cwd=tmp_path, env=base_env)
    assert done.returncode == 0, done.stderr
    entries: list[dict[str, Any]] = json.loads(done.stdout)
    (entry,) = [e for e in entries if e["name"] == "shout"]
    assert (entry["domain"], entry["distribution"], entry["version"], entry["status"]) == (
        "orchestrator",
        DIST,
        "2.0.1",
        "ok",
    )
    assert entry["description"] == "Asks the LLM about each row and records the reply in capitals."


def test_elspeth_run_runs_the_outside_orchestrator(
    shout_python: Path, base_env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "settings.yaml").write_text(SETTINGS, encoding="utf-8")
    words = "id,word\n" + "".join(f"w{i},word{i}\n" for i in range(50))
    (tmp_path / "words.csv").write_text(words, encoding="utf-8")
    done = elspeth_cli(shout_python, "run", "settings.yaml", "--no-progress", cwd=tmp_path, env=base_env)
    assert done.returncode == 0, done.stderr
    assert "(shouting) completed" in done.stdout
    assert "50 records, 0 failures" in done.stdout
    assert "shout: 50 rows shouted, 0 failed" in done.stdout, "the orchestrator's summary() line is printed"
    with (tmp_path / "output/shouted.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["row_id"] for r in rows] == [f"w{i}" for i in range(50)]
    assert {r["shout"] for r in rows} == {"HELLO THERE"}
    summary = json.loads((tmp_path / "output/summary.json").read_text(encoding="utf-8"))
    assert summary["aggregates"] == {"shouted": 50}
    plugins = summary["metadata"]["plugins"]
    assert {"domain": "orchestrator", "name": "shout", "distribution": DIST, "version": "2.0.1"} in plugins


def test_a_processor_failure_is_recorded_with_the_redacted_row(
    shout_python: Path, base_env: dict[str, str], tmp_path: Path
) -> None:
    pytest.importorskip("jsonschema")
    processors = (
        "processors:\n"
        "  - {plugin: pii_redaction, options: {columns: [word]}}\n"
        "  - {plugin: schema_validation, options: {schema: {properties: {n: {type: integer}}}}}\n"
    )
    text = SETTINGS.replace("sinks:\n", processors + "sinks:\n").replace(
        "    options: {path: shouted.csv}\n", "    options: {path: shouted.csv, failures_path: failed.csv}\n"
    )
    (tmp_path / "settings.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "words.csv").write_text("id,word,n\na,ann@example.org,1\nb,bob@example.org,two\n", encoding="utf-8")
    done = elspeth_cli(shout_python, "run", "settings.yaml", "--no-progress", cwd=tmp_path, env=base_env)
    assert "1 records, 1 failures" in done.stdout, done.stderr
    with (tmp_path / "output/failed.csv").open(encoding="utf-8", newline="") as handle:
        (failure,) = list(csv.DictReader(handle))
    assert (failure["row_id"], failure["word"], failure["failure.stage"]) == ("b", "[EMAIL]", "processor")
    assert failure["failure.error"].startswith("SchemaViolation: row does not match the schema: field 'n'")
    for path in (tmp_path / "output").iterdir():
        assert b"bob@example.org" not in path.read_bytes(), f"the address is in {path.name}"


def test_the_outside_orchestrators_check_names_the_line(
    shout_python: Path, base_env: dict[str, str], tmp_path: Path
) -> None:
    text = SETTINGS.replace("{{ word }}", "{{ wrod }}")
    (tmp_path / "settings.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "words.csv").write_text("id,word\na,x\n", encoding="utf-8")
    line = text.splitlines().index('    template: "say {{ wrod }}"') + 1
    done = elspeth_cli(shout_python, "validate", "settings.yaml", cwd=tmp_path, env=base_env)
    assert done.returncode == 2
    expected = (
        "orchestrator.options.template: template uses 'wrod', which the datasource does not have "
        f"(its columns: id, word) (settings.yaml:{line})"
    )
    assert expected in done.stderr
