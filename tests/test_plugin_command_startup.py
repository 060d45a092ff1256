"""Plugin commands stay cheap: ``elspeth --help`` lists ``verify`` importing only its light command module.

With every distribution installed, the root help imports the ``elspeth.commands`` modules and nothing
else of any plugin (no sink, no SDK, no pydantic); a core command never looks at plugin commands.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

pytest.importorskip("elspeth_signed")

PROBE = """
import json, sys
from elspeth.cli import main
sys.argv = ["elspeth", *sys.argv[1:]]
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code
mine = sorted(m for m in sys.modules if m.startswith(("elspeth_", "pydantic")) and m.count(".") <= 1)
print("PROBE " + json.dumps({"code": code, "modules": mine}))
"""


def probe(env: dict[str, str], *args: str) -> tuple[str, dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    (line,) = [line for line in lines if line.startswith("PROBE ")]
    result: dict[str, object] = json.loads(line.removeprefix("PROBE "))
    return "\n".join(line for line in lines if not line.startswith("PROBE ")), result


def test_root_help_lists_verify_importing_only_the_command_module(base_env: dict[str, str]) -> None:
    text, result = probe(base_env, "--help")
    assert result["code"] == 0
    assert "verify    Check a signed bundle" in text
    # every installed distribution's command module (named in `elspeth.commands`) and its package, nothing else
    commands = {ep.value.split(":")[0] for ep in entry_points(group="elspeth.commands")}
    assert "elspeth_signed.commands" in commands
    expected = sorted(commands | {name.split(".")[0] for name in commands})
    assert result["modules"] == expected, (
        "`elspeth --help` imported more than the elspeth.commands modules: keep them light"
    )


def test_a_core_command_never_loads_plugin_commands(base_env: dict[str, str], tmp_path: Path) -> None:
    _, result = probe(base_env, "validate", str(tmp_path / "missing.yaml"))
    assert result["code"] == 2
    modules = result["modules"]
    assert isinstance(modules, list)
    assert "elspeth_signed.plugin" in modules, "validate loads every plugin (the probe sees imports)"
    assert "elspeth_signed.commands" not in modules
