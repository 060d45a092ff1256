"""Listing plugins stays cheap: no installed plugin may pull a heavy SDK in at discovery time."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

# jinja2 is core's own dependency, but only a run renders prompts: listing plugins need not pay for it
HEAVY = ("pandas", "scipy", "numpy", "openai", "azure", "openpyxl", "jinja2")

# Runs the CLI's main in-process, then reports which heavy top-level packages ended up imported.
PROBE = """
import json, sys
for name in sys.argv[2:]:
    __import__(name)
from elspeth.cli import main
heavy = set(json.loads(sys.argv[1]))
sys.argv = ["elspeth", "plugins", "list"]
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code
found = sorted({m.split(".")[0] for m in sys.modules} & heavy)
print("PROBE " + json.dumps({"code": code, "heavy": found}))
"""


def probe(env: dict[str, str], *pre_import: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(HEAVY), *pre_import],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("PROBE ")]
    result: dict[str, object] = json.loads(line.removeprefix("PROBE "))
    return result


def test_plugins_list_imports_no_heavy_module(base_env: dict[str, str]) -> None:
    result = probe(base_env)
    assert result["code"] == 0
    assert result["heavy"] == [], (
        f"`elspeth plugins list` imported {result['heavy']}: an installed plugin's entry-point module imports "
        "its SDK at the top; move that import into the method that uses it"
    )


def test_the_probe_sees_a_heavy_module_when_one_is_imported(base_env: dict[str, str]) -> None:
    cheapest_first = ("numpy", "openpyxl", "openai", "azure", "pandas", "scipy")
    installed = [name for name in cheapest_first if importlib.util.find_spec(name) is not None]
    if not installed:
        pytest.skip(f"none of {', '.join(HEAVY)} is installed here")
    result = probe(base_env, installed[0])
    assert installed[0] in result["heavy"]  # type: ignore[operator]


# What `elspeth ARGS` left imported: pydantic, and the modules of plugins registered by reference.
LEFT = """
import json, sys
from elspeth.cli import main
sys.argv = ["elspeth", *sys.argv[1:]]
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code
from elspeth.discovery import load_registry
targets = sorted({i.target.partition(":")[0] for i in load_registry() if i.target})
print("LEFT " + json.dumps({
    "code": code,
    "pydantic": "pydantic" in sys.modules,
    "targets": len(targets),
    "imported": [t for t in targets if t in sys.modules],
}))
"""


def left_imported(env: dict[str, str], *args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", LEFT, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("LEFT ")]
    result: dict[str, object] = json.loads(line.removeprefix("LEFT "))
    return result


def test_plugins_list_imports_neither_pydantic_nor_any_plugin_class(base_env: dict[str, str]) -> None:
    result = left_imported(base_env, "plugins", "list")
    assert result["code"] == 0
    assert result["targets"] >= 25  # every first-party plugin registers by reference (30 modules today)
    assert result["imported"] == [], (
        f"`elspeth plugins list` imported {result['imported']}: a plugin's module (and its Options model) "
        "loads only when the plugin is used; register it by reference ('pkg.module:Class') and keep its "
        "entry-point module free of imports of it"
    )
    assert result["pydantic"] is False, "`elspeth plugins list` imported pydantic (see elspeth.cli._coerce)"


def test_help_imports_no_pydantic(base_env: dict[str, str]) -> None:
    result = left_imported(base_env, "--help")
    assert result["code"] == 0
    assert result["pydantic"] is False
