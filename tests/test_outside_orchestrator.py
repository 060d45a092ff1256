"""An orchestrator written as an outside distribution, with only ``from elspeth import ...``, runs like a builtin.

The distribution below is written into ``tmp_path`` (the example of ``docs/orchestrator-guide.md``,
shortened), built into a wheel, pip-installed into a fresh virtual environment that sees this
environment's packages, and run with ``elspeth run``.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import sysconfig
import venv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

DIST = "elspeth-shout-orchestrator"

PYPROJECT = """\
[build-system]
requires = ["hatchling>=1.25"]
build-backend = "hatchling.build"

[project]
name = "elspeth-shout-orchestrator"
version = "2.0.1"
description = "An outside orchestrator for Elspeth's tests."
requires-python = ">=3.11"
dependencies = ["elspeth-core>=0.1,<0.2"]

[project.entry-points.elspeth]
shout = "elspeth_shout.plugin"

[tool.hatch.build.targets.wheel]
packages = ["src/elspeth_shout"]
"""

PLUGIN = '''\
"""The ``shout`` orchestrator: the LLM's reply to each row, in capitals."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from elspeth import (
    Failure,
    LLMRequest,
    OrchestrationContext,
    PromptTemplate,
    Record,
    Registrar,
    Row,
    RunMetadata,
    RunResult,
    SpoolWriter,
    Table,
    check_template,
    hookimpl,
    run_rows,
)


class ShoutOrchestrator:
    """Asks the LLM about each row and records the reply in capitals."""

    name = "shout"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        template: str = Field(description="the prompt, a Jinja2 template over the row's fields")
        column: str = Field("shout", description="the output column")

    def __init__(self, options: Options) -> None:
        self.options = options
        self.template: PromptTemplate | None = None

    def check(self, columns: Sequence[str], ctx: OrchestrationContext) -> None:
        checker = ctx.checker()
        loc = (*ctx.options_loc, "template")
        self.template = check_template(self.options.template, loc, checker, ctx.available_fields(columns))
        if ctx.llm is None:
            checker.add(("orchestrator",), "shout calls an LLM: set `llm` in the settings")
        checker.raise_if_any()

    async def row(self, row: Row, ctx: OrchestrationContext) -> Record | Failure:
        assert self.template is not None and ctx.llm is not None
        try:
            row = await ctx.preprocess(row)
            prompt = self.template.render(row.data)
            reply = await ctx.llm.call(LLMRequest(system="", user=prompt, metadata={"row_id": row.id}))
        except Exception as exc:
            return Failure(row.id, row.data, "llm", f"{type(exc).__name__}: {exc}")
        return Record(row.id, row.data, {self.options.column: reply.content.upper()})

    async def run(self, table: Table, ctx: OrchestrationContext) -> RunResult:
        def ordered(item: Record | Failure) -> Record | Failure:
            if isinstance(item, Record):
                ctx.row_finished(record=item)
            else:
                ctx.row_finished(failure=item)
            return item

        writer = SpoolWriter(ctx.plugin_context.output_dir, window=64, cancel=ctx.cancel, on_ordered=ordered)

        async def handle(row: Row) -> None:
            item = None
            try:
                item = await self.row(row, ctx)
            finally:
                await writer.put(row.index, item)

        rows = await run_rows(writer.numbered(table.rows), handle, concurrency=ctx.concurrency, cancel=ctx.cancel)
        writer.finish()
        meta = RunMetadata(
            ctx.run_id, ctx.name, self.name, rows=rows, succeeded=len(writer.records), failed=len(writer.failures)
        )
        return RunResult(writer.records, writer.failures, {"shouted": len(writer.records)}, meta)


@hookimpl
def register_orchestrators(register: Registrar) -> None:
    register(ShoutOrchestrator)
'''

SETTINGS = """\
name: shouting
datasource:
  plugin: csv
  options: {path: words.csv, id_column: id}
llm:
  plugin: static
  options: {content: "hello there"}
concurrency: 4
orchestrator:
  plugin: shout
  options:
    template: "say {{ word }}"
sinks:
  - plugin: csv
    options: {path: shouted.csv}
  - plugin: json
"""


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
    """The python of a venv with the outside distribution installed from its wheel."""
    project = tmp_path_factory.mktemp("shout-project")
    (project / "src/elspeth_shout").mkdir(parents=True)
    (project / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    (project / "src/elspeth_shout/__init__.py").write_text("", encoding="utf-8")
    (project / "src/elspeth_shout/plugin.py").write_text(PLUGIN, encoding="utf-8")
    dist = tmp_path_factory.mktemp("shout-dist")
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist)]
    subprocess.run([*build, str(project)], env=base_env, check=True, capture_output=True, timeout=300)
    (wheel,) = dist.glob("*.whl")
    return make_venv(tmp_path_factory.mktemp("shout-venv") / "venv", wheel, base_env)


def elspeth(python: Path, *args: str, cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
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


def test_the_outside_module_uses_only_the_public_api() -> None:
    imports = [line.strip() for line in PLUGIN.splitlines() if line.startswith(("from ", "import "))]
    assert [line for line in imports if "elspeth" in line] == ["from elspeth import ("]


def test_the_outside_orchestrator_is_listed_with_its_distribution(
    shout_python: Path, base_env: dict[str, str], tmp_path: Path
) -> None:
    done = elspeth(shout_python, "plugins", "list", "--json", cwd=tmp_path, env=base_env)
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
    done = elspeth(shout_python, "run", "settings.yaml", "--no-progress", cwd=tmp_path, env=base_env)
    assert done.returncode == 0, done.stderr
    assert "(shouting) completed" in done.stdout
    assert "50 records, 0 failures" in done.stdout
    with (tmp_path / "output/shouted.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["row_id"] for r in rows] == [f"w{i}" for i in range(50)]
    assert {r["shout"] for r in rows} == {"HELLO THERE"}
    summary = json.loads((tmp_path / "output/summary.json").read_text(encoding="utf-8"))
    assert summary["aggregates"] == {"shouted": 50}
    plugins = summary["metadata"]["plugins"]
    assert {"domain": "orchestrator", "name": "shout", "distribution": DIST, "version": "2.0.1"} in plugins


def test_the_outside_orchestrators_check_names_the_line(
    shout_python: Path, base_env: dict[str, str], tmp_path: Path
) -> None:
    text = SETTINGS.replace("{{ word }}", "{{ wrod }}")
    (tmp_path / "settings.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "words.csv").write_text("id,word\na,x\n", encoding="utf-8")
    line = text.splitlines().index('    template: "say {{ wrod }}"') + 1
    done = elspeth(shout_python, "validate", "settings.yaml", cwd=tmp_path, env=base_env)
    assert done.returncode == 2
    expected = (
        "orchestrator.options.template: template uses 'wrod', which the datasource does not have "
        f"(its columns: id, word) (settings.yaml:{line})"
    )
    assert expected in done.stderr
