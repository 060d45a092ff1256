"""An installed plugin whose entry-point module cannot be imported never takes the CLI down.

``tests/fixtures/broken_plugin_project`` imports an SDK that is not installed; it is built into a
wheel and pip-installed into a fresh venv beside this environment's packages.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

Cli = Callable[..., Any]
BROKEN_DIST = "elspeth-fixture-broken"
REASON = "import failed: ModuleNotFoundError: No module named 'elspeth_fixture_missing_sdk'"


def test_plugins_list_shows_it_broken_with_the_reason(broken_cli: Cli, tmp_path: Path) -> None:
    done = broken_cli("plugins", "list", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    table = [line.split() for line in done.stdout.splitlines()]
    assert ["broken_fixture", "-", BROKEN_DIST, "0.0.1", "broken"] in table
    assert f"broken_fixture ({BROKEN_DIST}) is broken: {REASON}" in done.stdout
    # the builtins are still there
    assert ["mock", "llm_client", "elspeth-core"] in [row[:3] for row in table]


def test_plugins_list_json_shows_it_broken_with_the_reason(broken_cli: Cli, tmp_path: Path) -> None:
    done = broken_cli("plugins", "list", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    entries = done.json()
    (entry,) = [e for e in entries if e["distribution"] == BROKEN_DIST]
    assert entry == {
        "name": "broken_fixture",
        "domain": "",
        "description": "",
        "distribution": BROKEN_DIST,
        "version": "0.0.1",
        "entry_point": "broken_fixture",
        "status": "broken",
        "error": REASON,
    }
    assert {"name": "csv", "domain": "datasource", "status": "ok"}.items() <= next(
        e for e in entries if (e["domain"], e["name"]) == ("datasource", "csv")
    ).items()


def test_show_validate_and_run_of_the_example_still_work(broken_cli: Cli, quickstart: Path) -> None:
    project = quickstart.parent
    shown = broken_cli("plugins", "show", "csv", cwd=project)
    assert shown.returncode == 0, shown.stderr
    assert "path: str (required)" in shown.stdout

    validated = broken_cli("validate", "settings.yaml", cwd=project)
    assert validated.returncode == 0, validated.stderr
    assert "settings.yaml is valid" in validated.stdout

    ran = broken_cli("run", "settings.yaml", "--no-progress", cwd=project)
    assert ran.returncode == 0, ran.stderr
    assert "60 records, 0 failures" in ran.stdout
    assert (project / "output/results.csv").is_file()


def test_settings_naming_a_plugin_of_the_broken_distribution_fail_naming_it(broken_cli: Cli, quickstart: Path) -> None:
    project = quickstart.parent
    settings = quickstart.read_text(encoding="utf-8")
    settings = settings.replace("sinks:\n", "sinks:\n  - plugin: broken_sink\n", 1)
    (project / "uses-broken.yaml").write_text(settings, encoding="utf-8")
    line = settings.splitlines().index("  - plugin: broken_sink") + 1
    for command in ("validate", "run"):
        done = broken_cli(command, "uses-broken.yaml", cwd=project)
        assert done.returncode == 2, done.stdout
        assert "Traceback" not in done.stderr
        assert "sinks[0].plugin: unknown sink 'broken_sink'" in done.stderr
        assert f"(uses-broken.yaml:{line})" in done.stderr
        # the user learns which installed plugin failed, and why, without another command
        assert BROKEN_DIST in done.stderr
        assert REASON in done.stderr
    assert not (project / "output").exists()
