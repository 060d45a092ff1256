"""Run stores for the viewer's tests: one written by core's RunStore directly, one written by real runs.

The real one is two runs of an experiment suite (a baseline and a stricter variant, scored and
compared) through the OpenAI client against elspeth-testing's LLM server on 127.0.0.1, with a
scripted 400 that fails one variant row and a 503 that is retried. The second run's variant has
another system prompt and no fault, so a diff of the two runs has rows to show.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from elspeth import Failure, Record, load_settings, run_settings
from elspeth.discovery import PluginSource
from elspeth.store import RunStore
from elspeth.totals import RunTotals
from elspeth_testing import build_registry
from elspeth_testing.llm_server import LLMTestServer, ServerConfig
from elspeth_testing.services import ensure_program
from elspeth_view.server import make_server

SOURCES = [
    PluginSource("experiment", "elspeth-orchestrator-experiment", "0.1.0", "elspeth_experiment.plugin"),
    PluginSource("openai", "elspeth-llm-openai", "0.1.0", "elspeth_llm_openai.plugin"),
]
REAL_ROWS = 60
FAILED_ROW = "r07"  # its variant call is answered 400 in the first run


def write_run(store: RunStore, run_id: str, rows: int, *, answer: str = "yes", fail_every: int = 0) -> None:
    """A two-experiment run: ``baseline`` and ``variant`` each answer every row; some variant rows fail."""
    store.begin_run(
        run_id,
        name=f"suite {run_id}",
        orchestrator="experiment",
        settings={"llm": {"plugin": "test"}},
        settings_hash="h",
        settings_path=None,
        plugins=[],
    )
    finished: list[tuple[Record | None, Failure | None]] = []
    for i in range(rows):
        inputs = {"question": f"question number {i}"}
        finished.append((Record(f"r{i:04d}", inputs, {"answer": "yes"}, {"score": 3, "cost": 0.001}, "baseline"), None))
        if fail_every and i % fail_every == 0:
            attempts = [{"attempt": 1, "error": "HTTP 500"}, {"attempt": 2, "error": "HTTP 500"}]
            finished.append((None, Failure(f"r{i:04d}", inputs, "llm", "server error 500", attempts, "variant")))
        else:
            finished.append((Record(f"r{i:04d}", inputs, {"answer": answer}, {"score": 4}, "variant"), None))
    store.commit_rows(run_id, finished)
    comparisons = {"variant": {"score_delta": {"mean_difference": 1.0, "p_value": 0.001}}}
    meta = {"aggregates": {"experiments": {"baseline": {"rows": rows}}, "comparisons": comparisons}}
    store.finish_run(run_id, "completed", meta, RunTotals(cost=0.25, llm_calls=2 * rows, duration_s=12.5))


@pytest.fixture
def store_file(tmp_path: Path) -> Path:
    path = tmp_path / "elspeth-runs.sqlite"
    store = RunStore.open(path)
    write_run(store, "run-a", 120, fail_every=10)
    write_run(store, "run-b", 120, answer="no", fail_every=0)
    store.close()
    return path


def _settings(folder: Path, base_url: str, variant_system: str) -> Path:
    lines = "".join(f"r{i:02d},item {i},{'wool' if i % 3 == 0 else 'cotton'}\n" for i in range(REAL_ROWS))
    (folder / "data.csv").write_text("id,text,fabric\n" + lines)
    path = folder / "settings.yaml"
    path.write_text(
        "name: fabric-review\n"
        "datasource: {plugin: csv, options: {path: data.csv, id_column: id}}\n"
        f"llm: {{plugin: openai, options: {{model: test-model, base_url: '{base_url}'}}}}\n"
        "prompts: {system: 'You rate products.', user: 'Rate {{ text }} made of {{ fabric }}'}\n"
        "retry: {max_attempts: 2, initial_delay_s: 0.01, jitter: false}\n"
        "orchestrator:\n"
        "  plugin: experiment\n"
        "  options:\n"
        "    row_plugins: [{plugin: score_extractor, options: {threshold: 0.5}}]\n"
        "    aggregators: [score_stats]\n"
        "    comparisons: [score_significance]\n"
        "    experiments:\n"
        "      - {name: baseline, baseline: true}\n"
        f"      - {{name: strict, prompts: {{system: '{variant_system}', user: 'Strictly rate {{{{ text }}}}'}}}}\n"
        "sinks: [{plugin: jsonl}]\n"
        "store: {path: ../runs.sqlite}\n"
    )
    return path


class RealRuns(NamedTuple):
    """The store two real runs wrote, their ids, how many rows each had, and the row the first one failed."""

    path: Path
    first: str
    second: str
    rows: int = REAL_ROWS
    failed_row: str = FAILED_ROW


@pytest.fixture(scope="session")
def real_runs(tmp_path_factory: pytest.TempPathFactory) -> RealRuns:
    """The store of two real runs (see the module's docstring)."""
    root = tmp_path_factory.mktemp("real")
    server = LLMTestServer(ServerConfig()).start()
    old_key = os.environ.get("OPENAI_API_KEY")
    os.environ["OPENAI_API_KEY"] = "test-key"
    ids = []
    try:
        for n, system in enumerate(["You are a strict critic.", "You are a very strict critic."]):
            folder = root / f"run{n}"
            folder.mkdir()
            if n == 0:
                server.script(["400"], match=f"Strictly rate item {int(FAILED_ROW[1:])}")
                server.script(["503"], match="Rate item 3 made")
            settings = load_settings(_settings(folder, server.openai_base_url, system))
            # in a thread of its own: Playwright's sync API keeps an event loop running in this one
            with ThreadPoolExecutor(1) as pool:
                result = pool.submit(run_settings, settings, build_registry(*SOURCES)).result()
            ids.append(result.metadata.run_id)
    finally:
        server.stop()
        if old_key is None:
            os.environ.pop("OPENAI_API_KEY", None)
        else:
            os.environ["OPENAI_API_KEY"] = old_key
    return RealRuns(root / "runs.sqlite", ids[0], ids[1])


def _serve(path: Path) -> Iterator[str]:
    server = make_server(path)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def viewer(store_file: Path) -> Iterator[str]:
    yield from _serve(store_file)


@pytest.fixture(scope="session")
def real_viewer(real_runs: RealRuns) -> Iterator[str]:
    yield from _serve(real_runs.path)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium, headless, driven by Playwright (no browser is downloaded).

    Module-scoped: Playwright's sync API keeps an event loop running in the main thread while it is
    open, and a later test calling ``asyncio.run`` would fail, so it is closed after the browser tests.
    """
    from playwright.sync_api import sync_playwright

    chromium = ensure_program("chromium", "chromium")
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=chromium, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page that records every request it makes, in ``page.requested``, to check none leaves 127.0.0.1."""
    context = browser.new_context()
    opened = context.new_page()
    opened.requested = []
    opened.on("request", lambda request: opened.requested.append(request.url))
    opened.set_default_timeout(10_000)
    yield opened
    context.close()
