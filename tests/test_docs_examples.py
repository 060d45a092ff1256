"""Every code block of docs/, the README and the packages' READMEs is checked, by what its language says it is.

- ``python``: a whole module, type-checked by one mypy run over every block (imports of packages
  that do not exist, a reader's own plugin, count as ``Any``); ``<!-- pytest -->`` before it also
  runs it with pytest; ``<!-- fragment -->`` marks a piece of code, compiled inside a function.
- ``yaml``: a whole settings file, which must pass ``elspeth validate`` beside a data file with the
  columns the docs use; ``<!-- fragment -->`` marks a piece of one, merged over a small base file
  and validated the same way.
- ``bash``: every ``elspeth`` command is parsed by the real CLI (its command and options must
  exist); ``pip install`` must name distributions of this repository; ``<!-- run -->`` also runs the
  ``elspeth`` commands in a project made by ``elspeth init``.
- ``toml`` and ``json`` are parsed; ``text`` is output shown to the reader, never run.
- ``<!-- tested by PATH -->`` hands a block to the test module at PATH, which must read this page;
  ``<!-- parsed only: REASON -->`` parses it (YAML, TOML, JSON, Python) and says why it is not run.

A block without a language, or in another one, fails: say what it is.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([*ROOT.glob("docs/*.md"), ROOT / "README.md", *ROOT.glob("packages/*/README.md")])
LANGUAGES = {"python", "yaml", "bash", "toml", "json", "text"}
MARKER = re.compile(r"^\s*<!--\s*(fragment|pytest|run|file: \S+|tested by \S+|parsed only: [^>]+?)\s*-->\s*$")
# a page whose ``<!-- file: PATH -->`` blocks make up a distribution, and the test that builds and runs it
FILE_TESTERS = {"docs/orchestrator-guide.md": "tests/test_outside_orchestrator.py"}
# the columns of the data file every settings example is validated against, and what they hold
DATA = (
    "id,review,text,question,product,label,comment,email,age,country,joined,score,active\n"
    "1,Great kettle,hello,What boils?,kettle,good,fine,a@example.com,42,GB,2025-01-02,0.5,true\n"
)
FILES = {"data.csv": DATA, "schemas/row.json": '{"type": "object"}\n', "kb/kettles.txt": "Kettles boil water.\n"}
BASE = {
    "name": "doc-example",
    "datasource": {"plugin": "csv", "options": {"path": "data.csv", "id_column": "id"}},
    "llm": {"plugin": "mock"},
    "prompts": {"user": "Review: {{ review }}"},
    "orchestrator": "experiment",
    "sinks": ["jsonl"],
}
ENV = {
    "PII_SALT": "doc-salt",
    "ELSPETH_SIGNING_KEY": "doc-key-0123456789abcdef0123456789",
    "OPENAI_API_KEY": "x",
    "ANTHROPIC_API_KEY": "x",
}


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it is, its language, the marker before it, and its text."""

    page: Path
    line: int
    language: str
    marker: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    def __str__(self) -> str:
        return self.where


def blocks_of(page: Path, text: str | None = None) -> list[Block]:
    """The fenced blocks of a Markdown page (or of ``text``, as if it were the page), indented ones included."""
    found: list[Block] = []
    lines = (page.read_text(encoding="utf-8") if text is None else text).splitlines()
    i = 0
    while i < len(lines):
        fence = re.match(r"^(\s*)```(\S*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        indent, language = fence.group(1), fence.group(2)
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        before = [line for line in lines[:i] if line.strip()][-1:]
        marker = MARKER.match(before[0]) if before else None
        body = "\n".join(line[len(indent) :] if line.startswith(indent) else line for line in lines[i + 1 : end])
        found.append(Block(page, i + 1, language, marker.group(1) if marker else "", body + "\n"))
        i = end + 1
    return found


BLOCKS = [block for page in PAGES for block in blocks_of(page)]


def of(language: str, *markers: str) -> list[Block]:
    return [b for b in BLOCKS if b.language == language and (b.marker in markers or not markers)]


def test_the_docs_have_blocks_of_every_language_and_the_reader_sees_them() -> None:
    assert {b.language for b in BLOCKS} == LANGUAGES
    assert len(BLOCKS) > 60
    sample = "text\n\n<!-- fragment -->\n\n  ```yaml\n  a: 1\n  ```\n"
    page = ROOT / "docs" / "x.md"
    assert blocks_of(page, sample) == [Block(page, 5, "yaml", "fragment", "a: 1\n")]


@pytest.mark.parametrize("block", BLOCKS, ids=str)
def test_every_block_says_what_it_is(block: Block) -> None:
    assert block.language in LANGUAGES, (
        f"{block.where}: a ``` block without a language (or in {block.language!r}); tag it {sorted(LANGUAGES)}"
    )
    if block.marker.startswith("file: "):
        tester_name = FILE_TESTERS.get(str(block.page.relative_to(ROOT)))
        assert tester_name, f"{block.where}: no test builds this page's <!-- file: --> blocks (FILE_TESTERS)"
        assert block.page.name in (ROOT / tester_name).read_text(encoding="utf-8")
    if block.marker.startswith("tested by "):
        tester = ROOT / block.marker.removeprefix("tested by ")
        assert tester.is_file(), f"{block.where}: {tester} does not exist"
        assert block.page.name in tester.read_text(encoding="utf-8"), f"{tester} never reads {block.page.name}"


# -- python ----------------------------------------------------------------------------------------


def whole(block: Block) -> bool:
    """Whether a Python block is a whole module (not a piece of one)."""
    return block.marker in {"", "pytest"} or block.marker.startswith("file:")


# a fragment is checked inside a function, with every public name of elspeth in scope; names it
# leaves undefined (the variables of the code around it) are not errors
FRAGMENT_PRELUDE = (
    '# mypy: disable-error-code="name-defined,has-type"\n'
    "from collections.abc import *  # noqa: F403\n"
    "from typing import *  # noqa: F403\n"
    "from elspeth import *  # noqa: F403\n"
    "async def _fragment():  # type: ignore[no-untyped-def]\n"
)


def checked_source(block: Block) -> str:
    if whole(block):
        return block.text
    return FRAGMENT_PRELUDE + textwrap.indent(block.text, "    ") + "    pass\n"


def compiles(block: Block) -> str | None:
    """Why the block does not compile (a fragment inside an ``async def``), or None."""
    source = (
        block.text if whole(block) else "async def _fragment():\n" + textwrap.indent(block.text, "    ") + "    pass\n"
    )
    try:
        compile(source, block.where, "exec", dont_inherit=True)  # also `await` or `return` outside a function
    except SyntaxError as exc:
        return f"{block.where}: does not compile{'' if whole(block) else ' (as a fragment)'}: {exc}"
    return None


@pytest.mark.parametrize("block", of("python"), ids=str)
def test_a_python_block_compiles(block: Block) -> None:
    problem = compiles(block)
    assert problem is None, problem + ("" if block.marker else "; mark a piece of code <!-- fragment -->")


def python_checked() -> list[Block]:
    """The Python blocks mypy checks: every one that compiles and is not handed to another test."""
    return [b for b in of("python") if compiles(b) is None and not b.marker.startswith(("tested", "parsed"))]


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """Type-check every Python block in one mypy run; each block's errors, by block."""
    folder = tmp_path_factory.mktemp("doc_python")
    names: dict[str, tuple[str, int]] = {}
    for n, block in enumerate(python_checked()):
        name = f"doc_block_{n}.py"
        (folder / name).write_text(checked_source(block), encoding="utf-8")
        names[name] = (block.where, 0 if whole(block) else FRAGMENT_PRELUDE.count("\n"))
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--ignore-missing-imports", "--check-untyped-defs", "--no-error-summary",
         "--cache-dir", str(folder / ".mypy_cache"), "--python-executable", sys.executable, *sorted(names)],
        cwd=folder, capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    errors: dict[str, list[str]] = {where: [] for where, _ in names.values()}
    for line in done.stdout.splitlines():
        name, _, rest = line.partition(":")
        number, _, message = rest.partition(":")
        if name in names and ": note:" not in line:
            where, offset = names[name]
            errors[where].append(f"line {int(number) - offset}:{message}")
    assert done.returncode in (0, 1), done.stdout + done.stderr
    return errors


@pytest.mark.parametrize("block", python_checked(), ids=str)
def test_a_python_block_type_checks(block: Block, mypy_errors: dict[str, list[str]]) -> None:
    assert mypy_errors[block.where] == [], f"{block.where}: mypy finds\n" + "\n".join(mypy_errors[block.where])


@pytest.mark.parametrize("block", of("python", "pytest"), ids=str)
def test_a_python_test_block_passes_under_pytest(block: Block, tmp_path: Path) -> None:
    (tmp_path / "test_doc_block.py").write_text(block.text, encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\nfilterwarnings = error\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_doc_block.py"],
        cwd=tmp_path, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, f"{block.where}: its tests fail\n{done.stdout[-3000:]}"
    assert " passed" in done.stdout


# -- yaml ------------------------------------------------------------------------------------------


def settings_blocks() -> list[Block]:
    return [b for b in of("yaml") if b.marker in {"", "fragment"}]


@pytest.mark.parametrize("block", of("yaml"), ids=str)
def test_a_yaml_block_is_yaml(block: Block) -> None:
    try:
        yaml.safe_load(block.text)
    except yaml.YAMLError as exc:
        pytest.fail(f"{block.where}: not YAML: {exc}")


@pytest.mark.parametrize("block", settings_blocks(), ids=str)
def test_a_settings_block_passes_elspeth_validate(block: Block, tmp_path: Path) -> None:
    data = yaml.safe_load(block.text)
    assert isinstance(data, dict), f"{block.where}: a settings block is a mapping"
    if block.marker == "fragment":
        data = {**BASE, **data}
    else:
        assert {"datasource", "orchestrator"} <= set(data), (
            f"{block.where}: not a whole settings file (no datasource or orchestrator); mark it <!-- fragment -->"
        )
    for name, content in FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content, encoding="utf-8")
    (tmp_path / "settings.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    code, output = validate(tmp_path / "settings.yaml")
    assert code == 0, f"{block.where}: elspeth validate fails:\n{output}"


def validate(path: Path) -> tuple[int, str]:
    """``elspeth validate PATH`` in-process (the CLI's own command), with only the docs' variables set."""
    from typer.testing import CliRunner

    from elspeth.cli import app

    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("ELSPETH_")]:
            patch.delenv(name)
        for name, value in ENV.items():
            patch.setenv(name, value)
        done = CliRunner().invoke(app, ["validate", str(path)])
    return done.exit_code, done.output


def elspeth(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELSPETH_")} | ENV
    return subprocess.run(
        [sys.executable, "-m", "elspeth", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False,
        timeout=120,
    )  # fmt: skip


# -- bash, toml, json ------------------------------------------------------------------------------


def commands(block: Block) -> list[list[str]]:
    """Each command of a shell block (``&&`` splits a line; comments and blank lines left out)."""
    found = []
    for line in block.text.splitlines():
        words = shlex.split(line, comments=True)
        while words:
            cut = words.index("&&") if "&&" in words else len(words)
            found.append(words[:cut])
            words = words[cut + 1 :]
    return [c for c in found if c]


def elspeth_args(words: list[str]) -> list[str] | None:
    """The arguments of an ``elspeth`` command (``elspeth ...`` or ``python -m elspeth ...``), or None."""
    if words[0] == "elspeth":
        return words[1:]
    if words[0].startswith("python") and words[1:3] == ["-m", "elspeth"]:
        return words[3:]
    return None


def pip_install_args(words: list[str]) -> list[str] | None:
    if words[:2] == ["pip", "install"]:
        return words[2:]
    if words[0].startswith("python") and words[1:4] == ["-m", "pip", "install"]:
        return words[4:]
    return None


DISTRIBUTIONS = {
    canonicalize_name(tomllib.loads(p.read_text(encoding="utf-8"))["project"]["name"])
    for p in ROOT.glob("packages/*/pyproject.toml")
}
TOOLS = {"nox", "uv"}  # the only outside packages the docs tell a reader to install


def check_elspeth(args: list[str], block: Block) -> None:
    """Parse ``elspeth ARGS`` with the CLI's own parser, each subcommand's options included."""
    import typer.main

    from elspeth.cli import app

    command: Any = typer.main.get_command(app)  # typer's own copy of click: no public types to name
    try:
        ctx = command.make_context("elspeth", list(args))
        while hasattr(command, "resolve_command"):
            protected = getattr(ctx, "protected_args", None) or getattr(ctx, "_protected_args", [])
            rest = [*protected, *ctx.args]
            if not rest:
                break
            name, command, rest = command.resolve_command(ctx, rest)
            ctx = command.make_context(name, rest, parent=ctx)
    except Exception as exc:  # click's usage errors, whichever copy of click raises them
        pytest.fail(f"{block.where}: `elspeth {shlex.join(args)}` is not a command the CLI accepts: {exc}")


def check_install(names: list[str], block: Block) -> None:
    for name in (re.sub(r"\[.*\]$", "", w) for w in names if not w.startswith("-")):
        if "/" in name:
            assert (ROOT / name / "pyproject.toml").is_file(), f"{block.where}: installs {name}, which does not exist"
        else:
            assert canonicalize_name(name) in DISTRIBUTIONS | TOOLS, f"{block.where}: installs {name}, not ours"


def check_test_server(args: list[str], block: Block) -> None:
    """Start the LLM test server as the block does (on a free port), see it listen, stop it."""
    args = [*args]
    if "--port" in args:
        args[args.index("--port") + 1] = "0"
    with subprocess.Popen(
        [sys.executable, "-m", "elspeth_testing.llm_server", *args], stdout=subprocess.PIPE, text=True
    ) as server:
        try:
            assert server.stdout is not None
            banner = server.stdout.readline()
        finally:
            server.terminate()
    assert banner.startswith("elspeth-llm-test-server listening on http://127.0.0.1:"), f"{block.where}: {banner!r}"


def check_command(words: list[str], block: Block) -> None:
    """Fail unless ``words`` is a command the docs may show: checked against what it names."""
    args = elspeth_args(words)
    installs = pip_install_args(words)
    if args is not None:
        check_elspeth(args, block)
    elif installs is not None:
        check_install(installs, block)
    elif words[0] == "pytest":
        for path in (w for w in words[1:] if not w.startswith("-")):
            assert (ROOT / path).exists(), f"{block.where}: `pytest {path}`: there is no {path}"
    elif words[0].startswith("python") and words[1:3] == ["-m", "elspeth_testing.llm_server"]:
        check_test_server(words[3:], block)
    else:
        pytest.fail(
            f"{block.where}: `{shlex.join(words)}` is not a command this test knows how to check; "
            "mark the block <!-- parsed only: why --> or <!-- tested by PATH -->"
        )


@pytest.mark.parametrize("block", [b for b in of("bash") if not b.marker.startswith(("tested", "parsed"))], ids=str)
def test_a_shell_block_names_real_commands(block: Block) -> None:
    assert commands(block), f"{block.where}: an empty shell block"
    for words in commands(block):
        check_command(words, block)


@pytest.mark.parametrize("block", of("bash", "run"), ids=str)
def test_a_runnable_shell_block_runs_in_a_new_project(block: Block, tmp_path: Path) -> None:
    assert elspeth("init", "project", cwd=tmp_path).returncode == 0
    ran = 0
    for words in commands(block):
        args = elspeth_args(words)
        if args is None:  # a pip install: checked by test_a_shell_block_names_real_commands, never run here
            assert pip_install_args(words) is not None, f"{block.where}: <!-- run --> runs only elspeth commands"
            continue
        ran += 1
        done = elspeth(*args, cwd=tmp_path / "project")
        assert done.returncode == 0, f"{block.where}: `{shlex.join(words)}` fails:\n{done.stderr}"
    assert ran, f"{block.where}: a <!-- run --> block without an elspeth command"


@pytest.mark.parametrize("block", of("toml"), ids=str)
def test_a_toml_block_is_toml(block: Block) -> None:
    try:
        tomllib.loads(block.text)
    except tomllib.TOMLDecodeError as exc:
        pytest.fail(f"{block.where}: not TOML: {exc}")


@pytest.mark.parametrize("block", of("json"), ids=str)
def test_a_json_block_is_json(block: Block) -> None:
    try:
        json.loads(block.text)
    except json.JSONDecodeError as exc:
        pytest.fail(f"{block.where}: not JSON: {exc}")


def test_the_checks_fail_an_example_that_is_wrong(tmp_path: Path) -> None:
    page = ROOT / "docs" / "user-guide.md"
    refused = Block(page, 1, "yaml", "fragment", "security_level: PROTECTED\nsinks: [jsonl]\n")
    with pytest.raises(AssertionError, match="cleared for UNOFFICIAL but the data is PROTECTED"):
        test_a_settings_block_passes_elspeth_validate(refused, tmp_path)
    with pytest.raises(AssertionError, match="not a whole settings file"):
        test_a_settings_block_passes_elspeth_validate(Block(page, 1, "yaml", "", "sinks: [jsonl]\n"), tmp_path)
    with pytest.raises(pytest.fail.Exception, match="not a command the CLI accepts"):
        check_command(["elspeth", "run", "settings.yaml", "--no-such-flag"], refused)
    with pytest.raises(AssertionError, match="not ours"):
        check_command(["pip", "install", "requests"], refused)
    with pytest.raises(pytest.fail.Exception, match="not a command this test knows how to check"):
        check_command(["rm", "-rf", "output"], refused)
    assert compiles(Block(page, 1, "python", "", "await ctx.commit_row()\n")) is not None
    assert compiles(Block(page, 1, "python", "fragment", "await ctx.commit_row()\n")) is None
