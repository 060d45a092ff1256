"""The README's two opening commands are real: the second is exactly what CI runs, the first runs a file that exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CI = ROOT / ".ci" / "run"


def opening_commands() -> list[str]:
    """The commands of the README's first ``bash`` block, comments left out."""
    match = re.search(r"^```bash\n(.*?)^```", README.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)
    assert match, "README.md has no ```bash block"
    return [line.strip() for line in match[1].splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_readme_opens_with_two_commands() -> None:
    assert len(opening_commands()) == 2, opening_commands()


def test_ci_runs_exactly_the_readmes_test_command() -> None:
    lines = [line.strip() for line in CI.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert lines[-1] == opening_commands()[1], "the README's second command and the last line of .ci/run differ"


def test_the_readmes_first_command_installs_and_runs_what_exists() -> None:
    words = shlex.split(opening_commands()[0])
    installed = [w for w in words if w.startswith("./packages/")]
    assert installed, words
    for folder in installed:
        assert (ROOT / folder / "pyproject.toml").is_file(), f"README installs {folder}, which has no pyproject.toml"
    runs = [i for i, w in enumerate(words) if w == "elspeth" and words[i + 1 : i + 2] == ["run"]]
    assert runs, f"the README's first command runs no `elspeth run`: {words}"
    target = words[runs[0] + 2]
    assert (ROOT / target).is_file(), f"the README's first command runs {target}, which does not exist"


def test_the_readme_says_what_the_test_command_needs_beyond_python() -> None:
    text = README.read_text(encoding="utf-8")
    after = text[text.index(opening_commands()[1]) :].split("\n## ", 1)[0]
    for needed in ("`npm`", "Azurite", "Chromium", "`apt-get`", "root", "ELSPETH_SKIP_BROWSER=1"):
        assert needed in after, f"the README does not say, under its test command, that it needs {needed}"
