"""Every file in ``fixtures/bad_settings`` is refused by ``elspeth validate`` and ``elspeth run`` with exit
code 2, the message its first line promises (naming the file and line), and no traceback.

A corpus file starts with one or more ``# expect: TEXT`` lines; each TEXT must appear within one line
of stderr, with ``...`` standing for any run of characters (installed plugin lists vary).

The corpus runs the CLI's ``main`` in this process for speed, with only core and the experiment
orchestrator enabled (``ELSPETH_LOAD_PLUGINS=experiment``) so that whatever else is installed cannot
change the messages; ``test_the_real_process_*`` checks the same in a subprocess.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

CORPUS = Path(__file__).parent / "fixtures" / "bad_settings"
FILES = sorted(CORPUS.glob("*.yaml"))


def expectations(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    for line in lines:
        if not line.startswith("# expect: "):
            break
        found.append(line.removeprefix("# expect: "))
    assert found, f"{path.name} must start with a '# expect: TEXT' line"
    return found


def matcher(expected: str) -> re.Pattern[str]:
    return re.compile(".*?".join(re.escape(part) for part in expected.split("...")))


def assert_reported(stderr: str, path: Path) -> None:
    lines = stderr.splitlines()
    for expected in expectations(path):
        pattern = matcher(expected)
        assert any(pattern.search(line) for line in lines), f"expected {expected!r} in stderr:\n{stderr}"
    assert "Traceback" not in stderr


Main = Callable[..., tuple[int, str, str]]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A copy of the corpus, so that nothing a run might write lands in the source tree."""
    return Path(shutil.copytree(CORPUS, tmp_path / "bad_settings"))


@pytest.fixture
def elspeth_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Main:
    """Run the CLI's ``main`` in this process; returns (exit code, stdout, stderr)."""
    from elspeth.cli import main

    def run(*args: str, cwd: Path) -> tuple[int, str, str]:
        with monkeypatch.context() as patch:
            for name in [k for k in os.environ if k.startswith("ELSPETH_")]:
                patch.delenv(name)
            patch.setenv("ELSPETH_LOAD_PLUGINS", "experiment")
            patch.chdir(cwd)
            patch.setattr(sys, "argv", ["elspeth", *args])
            capsys.readouterr()
            with pytest.raises(SystemExit) as exit_info:
                main()
            out, err = capsys.readouterr()
        code = exit_info.value.code
        return (code if isinstance(code, int) else 1), out, err

    return run


def test_the_corpus_covers_every_promised_case() -> None:
    names = {p.stem for p in FILES}
    assert {
        "yaml_syntax_error",
        "not_a_mapping",
        "missing_orchestrator",
        "unknown_top_level_key",
        "unknown_plugin",
        "missing_plugin_option",
        "wrong_option_type",
        "secret_in_file",
        "template_unknown_field",
        "template_syntax_error",
        "missing_data_file",
        "concurrency_zero",
        "duplicate_experiment_names",
        "two_baselines",
        "unknown_row_plugin_in_orchestrator",
        "several_problems",
        "duplicate_key",
        "variant_llm_option_wrong_type",
        "variant_llm_and_options_wrong_type",
    } <= names


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_bad_settings_are_refused_naming_the_place(path: Path, command: str, corpus: Path, elspeth_main: Main) -> None:
    code, out, err = elspeth_main(command, path.name, cwd=corpus)
    assert code == 2, f"exit {code}\nstdout:\n{out}\nstderr:\n{err}"
    assert_reported(err, path)
    assert not (corpus / "output").exists(), "a refused run must not write anything"


def test_several_problems_are_reported_together(corpus: Path, elspeth_main: Main) -> None:
    code, _, err = elspeth_main("validate", "several_problems.yaml", cwd=corpus)
    assert code == 2
    places = [line.removeprefix("error: ").split(":")[0] for line in err.splitlines()]
    assert places == ["datasource.options.path", "llm.plugin", "sinks[0].plugin"]


def test_the_real_process_exits_2_without_a_traceback(corpus: Path, base_env: dict[str, str]) -> None:
    path = CORPUS / "unknown_row_plugin_in_orchestrator.yaml"
    done = subprocess.run(
        [sys.executable, "-m", "elspeth", "run", path.name],
        cwd=corpus,
        capture_output=True,
        text=True,
        timeout=120,
        env={**base_env, "ELSPETH_LOAD_PLUGINS": "experiment"},
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert_reported(done.stderr, path)


def test_debug_shows_the_traceback(corpus: Path, base_env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "elspeth", "--debug", "validate", "two_baselines.yaml"],
        cwd=corpus,
        capture_output=True,
        text=True,
        timeout=120,
        env={**base_env, "ELSPETH_LOAD_PLUGINS": "experiment"},
        check=False,
    )
    assert done.returncode != 0
    assert "Traceback (most recent call last)" in done.stderr
    assert "elspeth.errors.ConfigError" in done.stderr
    assert "only one experiment may be the baseline" in done.stderr
