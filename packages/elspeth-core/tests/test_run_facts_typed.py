"""Run-wide facts are typed fields of RunMetadata; ``extra`` is plugin-owned, and no core code reads a key of it.

Also: ``RunMetadata(status=...)`` still works for one minor release, with a DeprecationWarning.
"""

from __future__ import annotations

import ast
import json
import warnings
from pathlib import Path

import pytest

from elspeth import Artifact, RunMetadata, RunOutcome
from elspeth.totals import RunTotals

ROOT = Path(__file__).resolve().parents[3]


def test_to_dict_lists_the_typed_facts_where_extra_listed_them() -> None:
    meta = RunMetadata("r", "n", "o", extra={"experiments": ["a"]})
    meta.security_level = "OFFICIAL"
    meta.summaries = {"utility": {"response_cache": {"hits": 1}}}
    meta.warnings = ["run_started observer x raised ValueError: no"]
    meta.cost = {"total_cost": 0.5}
    meta.resumed_rows, meta.attempt_duration_s = 3, 1.25
    meta.totals = RunTotals(cost=0.5, prompt_tokens=2, completion_tokens=1, llm_calls=1, duration_s=2.0)
    meta.artifacts = [Artifact(Path("/out/a.csv"), "text/csv", "csv", security_level="OFFICIAL")]
    out = json.loads(json.dumps(meta.to_dict()))
    assert list(out)[11:] == [
        "experiments",
        "security_level",
        "utility",
        "warnings",
        "cost",
        "resumed_rows",
        "attempt_duration_s",
        "totals",
        "artifacts",
    ]
    assert out["totals"] == {"cost": 0.5, "prompt_tokens": 2, "completion_tokens": 1, "llm_calls": 1, "duration_s": 2.0}
    assert out["artifacts"] == [
        {"path": "/out/a.csv", "media_type": "text/csv", "sink": "csv", "security_level": "OFFICIAL"}
    ]
    assert meta.extra == {"experiments": ["a"]}, "the engine's facts do not go into extra"


def test_a_fresh_metadata_lists_none_of_the_engines_facts() -> None:
    assert set(RunMetadata("r", "n", "o").to_dict()) == {
        "run_id", "name", "orchestrator", "started_at", "finished_at", "duration_s",
        "rows", "succeeded", "failed", "status", "plugins",
    }  # fmt: skip


def test_status_as_an_argument_is_deprecated_but_still_sets_the_outcome() -> None:
    with pytest.warns(DeprecationWarning, match=r"RunMetadata\(status=\.\.\.\) is deprecated .* elspeth-core 0\.2"):
        meta = RunMetadata("r", "n", "o", status="stopped", rows=2)
    assert meta.status == "stopped"
    assert meta.outcome == RunOutcome("stopped")
    assert meta.rows == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # without status=, nothing warns
        assert RunMetadata("r", "n", "o").status == "completed"
    with pytest.raises(TypeError):
        RunMetadata("r", "n", "o", statuz="stopped")  # type: ignore[call-arg]


def _literal_key_reads(path: Path) -> list[tuple[int, str]]:
    """Each ``<x>.extra[<literal>]`` read and ``<x>.extra.get(<literal>)`` in a file, by line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        target, key = None, None
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            target, key = node.value, node.slice
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
            target, key = node.func.value, node.args[0] if node.args else None
        if isinstance(target, ast.Attribute) and target.attr == "extra" and isinstance(key, ast.Constant):
            found.append((node.lineno, str(key.value)))
    return found


def _literal_key_writes(src: Path) -> set[str]:
    """Keys a distribution puts into ``extra`` itself: ``x.extra[k] = ...`` and the dict literals it builds."""
    keys: set[str] = set()
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Subscript)
                and isinstance(node.ctx, ast.Store)
                and isinstance(node.slice, ast.Constant)
            ):
                keys.add(str(node.slice.value))
            elif isinstance(node, ast.Dict):
                keys.update(str(k.value) for k in node.keys if isinstance(k, ast.Constant))
    return keys


def test_core_reads_no_key_of_extra_and_each_distribution_reads_only_its_own() -> None:
    problems = []
    for src in sorted(ROOT.glob("packages/*/src")):
        own = set() if src.parent.name == "elspeth-core" else _literal_key_writes(src)
        for path in sorted(src.rglob("*.py")):
            for line, key in _literal_key_reads(path):
                if key not in own:
                    problems.append(f"{path.relative_to(ROOT)}:{line} reads extra[{key!r}], a key it does not write")
    assert not problems, "\n".join(problems)


def test_the_check_finds_a_read_of_another_plugins_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        'def f(meta):\n    return meta.extra.get("security_level"), meta.extra["totals"]\n', encoding="utf-8"
    )
    assert _literal_key_reads(bad) == [(2, "security_level"), (2, "totals")]
    good = tmp_path / "good.py"
    good.write_text('def f(meta, key):\n    meta.extra["mine"] = 1\n    return meta.extra[key]\n', encoding="utf-8")
    assert _literal_key_reads(good) == []
    assert _literal_key_writes(tmp_path) == {"mine"}
