"""The run store: every finished row kept, resume without paying twice, history, and the response cache."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import types
from collections import Counter
from pathlib import Path

import pytest
from pydantic import BaseModel

from elspeth import ConfigError, LLMRequest, LLMResponse, Usage, hookimpl
from elspeth.cli._run import run_command
from elspeth.config import load_settings
from elspeth.discovery import PluginSource, load_registry
from elspeth.engine import execute, prepare
from elspeth.resume import RunOptions
from elspeth.store import RunStore, StoreError, settings_diff


class CountingClient:
    """Answers 'Score: 0.5'; counts calls per prompt; fails prompts listed in ``fail_once`` the first time."""

    name = "counting"
    calls: list[str] = []  # noqa: RUF012 - shared across instances on purpose: one log per test
    fail_once: set[str] = set()  # noqa: RUF012

    class Options(BaseModel):
        seed: int = 0
        latency_ms: float = 0

    def __init__(self, options: Options) -> None:
        self.options = options

    async def generate(self, request: LLMRequest) -> LLMResponse:
        if self.options.latency_ms:
            await asyncio.sleep(self.options.latency_ms / 1000)
        CountingClient.calls.append(request.user)
        if request.user in CountingClient.fail_once:
            CountingClient.fail_once.discard(request.user)
            raise RuntimeError(f"transient trouble with {request.user}")
        return LLMResponse(content="Score: 0.5", usage=Usage(3, 2), model="counting-1")


def _plugins() -> types.ModuleType:
    module = types.ModuleType("store_test_plugins")

    @hookimpl
    def register_llm_clients(register):  # type: ignore[no-untyped-def]
        register(CountingClient)

    module.register_llm_clients = register_llm_clients  # type: ignore[attr-defined]
    return module


@pytest.fixture
def registry():
    CountingClient.calls = []
    CountingClient.fail_once = set()
    sources = [
        PluginSource("store-tests", "store-tests", "1.0", _plugins()),
        PluginSource("experiment", "elspeth-orchestrator-experiment", "0.1.0", "elspeth_experiment.plugin"),
    ]
    return load_registry(sources=sources, environ={})


SETTINGS = """
name: stored
datasource: {plugin: csv, options: {path: data.csv, id_column: id}}
llm: {plugin: counting, options: {seed: 1, latency_ms: LATENCY}}
prompts: {user: "Rate {{ text }}"}
concurrency: CONCURRENCY
EXTRA
orchestrator:
  plugin: experiment
  options:
    row_plugins: [score_extractor]
    experiments: [{name: a, baseline: true}, {name: b}]
sinks: [{plugin: jsonl}]
"""


def write(tmp_path: Path, rows: int = 20, *, latency: float = 0, concurrency: int = 4, extra: str = "") -> Path:
    lines = "".join(f"r{i},text number {i}\n" for i in range(rows))
    (tmp_path / "data.csv").write_text("id,text\n" + lines)
    path = tmp_path / "settings.yaml"
    text = SETTINGS.replace("LATENCY", str(latency)).replace("CONCURRENCY", str(concurrency)).replace("EXTRA", extra)
    path.write_text(text)
    return path


def run(path: Path, registry, **options):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        prepared = await prepare(load_settings(path), registry, options=RunOptions(**options))
        return prepared, await execute(prepared)

    return asyncio.run(go())


def store_of(path: Path) -> RunStore:
    return RunStore.open(path.parent / "output" / "elspeth-runs.sqlite", create=False)


def test_every_finished_row_is_committed_with_the_runs_settings_and_plugins(tmp_path, registry):
    path = write(tmp_path, rows=10)
    prepared, _ = run(path, registry)
    store = store_of(path)
    try:
        stored = store.run(prepared.context.run_id)
        rows = store.finished_rows(prepared.context.run_id)
    finally:
        store.close()
    assert stored["status"] == "completed"
    assert (stored["done"], stored["failed"], stored["pending"]) == (20, 0, 0)
    assert stored["settings"]["llm"] == {"plugin": "counting", "options": {"seed": 1, "latency_ms": 0}}
    assert len(stored["settings_hash"]) == 64
    assert {"domain": "llm_client", "name": "counting", "distribution": "store-tests", "version": "1.0"} in stored[
        "plugins"
    ]
    assert sorted(rows) == sorted((g, f"r{i}") for g in ("a", "b") for i in range(10))
    assert rows[("a", "r3")].outputs == {"response": "Score: 0.5"}
    assert rows[("a", "r3")].metrics["scores"] == {"default": 0.5}


def test_resume_sends_no_finished_row_again_and_the_budget_covers_every_attempt(tmp_path, registry, capsys):
    # every call costs (3 + 2 tokens) x 100,000 per million = 0.5
    budget = "cost_tracker: {plugin: price_table, options: {prices: {'*': {input: 100000, output: 100000}}, budget: 5}}"
    path = write(tmp_path, rows=30, concurrency=2, extra=budget)
    assert run_command(path, registry, strict=False, progress=False) == 0
    first_out = capsys.readouterr().out
    store = store_of(path)
    try:
        (stored,) = store.runs()
    finally:
        store.close()
    run_id, done_first = stored["run_id"], stored["done"]
    assert stored["status"] == "stopped"
    assert f"resume with: elspeth run {path} --resume {run_id}" in first_out  # a budget stop can go on
    assert 10 <= done_first <= 11  # the 10th call reaches 5.0; the other call in flight finishes
    assert len(CountingClient.calls) == done_first

    # the same budget: the earlier attempt spent it, so the resume refuses before any call
    with pytest.raises(ConfigError, match=r"earlier attempts spent its budget .*Raise cost_tracker.options.budget"):
        run_command(path, registry, strict=False, progress=False, options=RunOptions(resume=run_id))
    assert len(CountingClient.calls) == done_first

    # a raised budget (and concurrency) needs no --force; the budget counts what the first attempt spent
    path.write_text(path.read_text().replace("budget: 5", "budget: 12").replace("concurrency: 2", "concurrency: 3"))
    assert run_command(path, registry, strict=False, progress=False, options=RunOptions(resume=run_id)) == 0
    after_second = len(CountingClient.calls)
    assert 24 <= after_second <= 24 + 2, "the second attempt spent a budget of its own"

    path.write_text(path.read_text().replace("budget: 12", "budget: 1000"))
    prepared, last = run(path, registry, resume=run_id)
    assert prepared.context.run_id == run_id
    assert len(last.records) == 60
    # each prompt once per experiment over all three attempts: nothing finished was ever sent again
    assert Counter(CountingClient.calls) == {f"Rate text number {i}": 2 for i in range(30)}
    lines = [json.loads(line) for line in (tmp_path / "output" / "results.jsonl").read_text().splitlines()]
    assert sorted((x["experiment"], x["row_id"]) for x in lines) == sorted(
        (g, f"r{i}") for g in ("a", "b") for i in range(30)
    )
    assert last.metadata.to_dict()["resumed_rows"] == after_second
    cost = last.metadata.to_dict()["cost"]
    assert (cost["total_cost"], cost["calls"], cost["tokens"]["prompt"]) == (30.0, 60, 180)
    assert last.metadata.to_dict()["totals"]["cost"] == 30.0
    store = store_of(path)
    try:
        assert store.totals(run_id).cost == 30.0
        assert store.run(run_id)["attempts"] == 3
    finally:
        store.close()


def test_retry_errors_runs_only_the_failed_rows_again(tmp_path, registry):
    path = write(tmp_path, rows=10)
    CountingClient.fail_once = {"Rate text number 3", "Rate text number 7"}
    prepared, first = run(path, registry)
    assert len(first.failures) == 2  # each failing prompt fails in experiment a; b then sees it fixed
    run_id = prepared.context.run_id
    CountingClient.calls = []
    _, plain = run(path, registry, resume=run_id)
    assert CountingClient.calls == []
    assert len(plain.failures) == 2
    _, retried = run(path, registry, resume=run_id, retry_errors=True)
    assert sorted(CountingClient.calls) == ["Rate text number 3", "Rate text number 7"]
    assert retried.failures == []
    assert len(retried.records) == 20


def test_resuming_with_changed_settings_is_refused_naming_what_changed(tmp_path, registry):
    path = write(tmp_path, rows=3)
    prepared, _ = run(path, registry)
    run_id = prepared.context.run_id
    changed = path.read_text().replace("seed: 1", "seed: 2").replace("Rate {{ text }}", "Score {{ text }}")
    path.write_text(changed.replace("concurrency: 4", "concurrency: 9"))  # concurrency changes no answer
    with pytest.raises(ConfigError) as caught:
        run(path, registry, resume=run_id)
    message = str(caught.value)
    assert f"the settings changed since run {run_id} (llm.options.seed, prompts.user);" in message
    assert "--force" in message
    CountingClient.calls = []
    _, forced = run(path, registry, resume=run_id, force=True)
    assert CountingClient.calls == []  # every row was already finished
    assert len(forced.records) == 6


def test_an_unknown_run_is_named_with_the_recent_ones(tmp_path, registry):
    path = write(tmp_path, rows=2)
    prepared, _ = run(path, registry)
    with pytest.raises(StoreError, match=rf"no run 'nope' in .*Recent runs: {prepared.context.run_id}"):
        run(path, registry, resume="nope")


def test_no_write_is_lost_at_concurrency_256(tmp_path, registry):
    path = write(tmp_path, rows=1000, latency=5, concurrency=256)
    prepared, result = run(path, registry)
    store = store_of(path)
    try:
        rows = store.finished_rows(prepared.context.run_id)
        stored = store.run(prepared.context.run_id)
    finally:
        store.close()
    assert len(result.records) == 2000
    assert len(rows) == 2000
    assert stored["done"] == 2000


def test_a_corrupted_or_foreign_store_gives_a_clear_error(tmp_path):
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StoreError, match="is not an Elspeth run store or is corrupted"):
        RunStore.open(garbage)
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(StoreError, match="an SQLite database but not an Elspeth run store"):
        RunStore.open(foreign)
    with pytest.raises(StoreError, match="no run store at"):
        RunStore.open(tmp_path / "absent.sqlite", create=False)


def test_a_store_switched_off_records_nothing_and_cannot_resume(tmp_path, registry):
    path = write(tmp_path, rows=2, extra="store: {enabled: false}")
    run(path, registry)
    assert not (tmp_path / "output" / "elspeth-runs.sqlite").exists()
    with pytest.raises(ConfigError, match="--resume needs the run store"):
        run(path, registry, resume="anything")


def test_settings_diff_names_every_changed_path():
    old = {"a": 1, "b": {"c": [1, 2], "d": "x"}, "gone": 1}
    new = {"a": 1, "b": {"c": [1, 3], "d": "y"}, "added": 2}
    assert settings_diff(old, new) == ["added", "b.c[1]", "b.d", "gone"]
    assert settings_diff(old, old) == []


CACHE = "utilities: [{plugin: response_cache}]"


def test_a_cached_rerun_makes_no_llm_call_and_marks_its_answers(tmp_path, registry):
    path = write(tmp_path, rows=5, extra=CACHE)
    _, first = run(path, registry)
    assert len(CountingClient.calls) == 5  # the two experiments send the same prompts: b is all hits
    assert sum(1 for r in first.records if r.metrics.get("cached")) == 5
    CountingClient.calls = []
    _, again = run(path, registry)
    assert CountingClient.calls == []
    assert all(r.metrics["cached"] for r in again.records)
    assert all(r.metrics.get("cost", 0) == 0 for r in again.records)
    assert again.metadata.to_dict()["utility"]["response_cache"] == {"hits": 10, "misses": 0}
    _, live = run(path, registry, use_cache=False)
    assert len(CountingClient.calls) == 10
    assert not any(r.metrics.get("cached") for r in live.records)


def test_the_cache_key_covers_the_client_options_and_expires(tmp_path, registry):
    path = write(tmp_path, rows=3, extra="utilities: [{plugin: response_cache, options: {ttl_s: 0.2}}]")
    run(path, registry)
    path.write_text(path.read_text().replace("seed: 1", "seed: 9"))
    CountingClient.calls = []
    run(path, registry)
    assert len(CountingClient.calls) == 3  # another option, another answer
    CountingClient.calls = []
    run(path, registry)
    assert CountingClient.calls == []
    import time

    time.sleep(0.25)
    run(path, registry)
    assert len(CountingClient.calls) == 3  # expired
