"""How fast ``elspeth view`` opens a big run: the requests its page makes, timed over HTTP (and in Chromium).

    python benchmarks/view/bench.py [--rows 100000] [--full] [--experiments 2] [--target 1.0] [--browser]

A run store is written through core's own ``RunStore`` (``encode_row`` and ``write_rows`` in bulk,
as a run commits rows, but without the LLM calls): ``--rows`` input rows (``--full``: 1,000,000),
each answered by ``--experiments`` experiments, one row in 50 failed with its attempts, and the
run's aggregates. The viewer then serves it on 127.0.0.1 and the benchmark times, each once on a
fresh server (no warm cache in the viewer; the OS file cache is warm from writing):

- opening the run's page: ``/``, ``app.js``, ``/api/runs``, ``/api/runs/RUN?counts=0`` and its
  first page of rows; their sum is held to ``--target`` seconds (exit status 1 above it);
- the experiments' row counts, which the page asks for apart and shows when they come (about a
  quarter of a second per million rows, per experiment, on the index), the page after 90% of the
  rows (SQL ``OFFSET`` walks the index up to it), the failed rows of the variant, and a search that
  matches one row near the end (a scan); these are reported, with no target;
- with ``--browser``, the same page in headless Chromium (``/usr/bin/chromium`` through Playwright)
  on another fresh server: from the click on the run in the runs list until its first 50 rows are
  drawn, and until the counts are shown.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from elspeth import Failure, Record
from elspeth.store import RunStore
from elspeth.totals import RunTotals
from elspeth_view.server import make_server

RUN = "bench-run"
CHUNK = 20_000


def build(path: Path, rows: int, experiments: int) -> float:
    """Write the store; the seconds it took."""
    t0 = time.perf_counter()
    store = RunStore.open(path)
    store.begin_run(
        RUN,
        name="bench",
        orchestrator="experiment",
        settings={"prompts": {"user": "Rate {{ text }}"}},
        settings_hash="h",
        settings_path=None,
        plugins=[],
    )
    names = ["baseline", *(f"variant-{i}" for i in range(1, experiments))]
    batch: list[Any] = []
    for i in range(rows):
        inputs = {"id": f"r{i:07d}", "text": f"product review number {i}"}
        for name in names:
            if name != "baseline" and i % 50 == 0:
                attempts = [{"attempt": 1, "status": 503, "error": "HTTP 503"}, {"attempt": 2, "status": 400}]
                failure = Failure(f"r{i:07d}", inputs, "llm", "HTTP 400", attempts, name)
                batch.append(store.encode_row(RUN, None, failure))
            else:
                metrics = {"latency_s": 0.2, "prompt_tokens": 30, "completion_tokens": 8, "scores": {"default": i % 5}}
                record = Record(f"r{i:07d}", inputs, {"response": f"Score: {i % 5}"}, metrics, name)
                batch.append(store.encode_row(RUN, record, None))
        if len(batch) >= CHUNK:
            store.write_rows(batch)
            batch = []
    store.write_rows(batch)
    summary = {n: {"rows": rows, "aggregates": {"score_stats": {"overall": {"mean": 2.0}}}} for n in names}
    store.finish_run(RUN, "completed", {"aggregates": {"experiments": summary, "comparisons": {}}}, RunTotals())
    store.close()
    return time.perf_counter() - t0


def timed_get(url: str) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url) as reply:
        body = reply.read()
    return time.perf_counter() - t0, body


def serving(path: Path) -> tuple[Any, str]:
    server = make_server(path)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def time_http(path: Path, rows: int) -> tuple[float, list[tuple[str, float]]]:
    server, base = serving(path)
    try:
        opening = ["/", "/static/app.js", "/api/runs", f"/api/runs/{RUN}?counts=0"]
        opening.append(f"/api/runs/{RUN}/rows?offset=0&limit=50&count=0")
        figures = [(p, timed_get(base + p)[0]) for p in opening]
        total = sum(s for _, s in figures)
        deep = rows * 9 // 10
        extra = [
            f"/api/runs/{RUN}/counts",
            f"/api/runs/{RUN}/rows?offset={deep}&limit=50",
            f"/api/runs/{RUN}/rows?group=variant-1&status=failed&limit=50",
            f"/api/runs/{RUN}/rows?q=review%20number%20{rows - 3}&limit=50",
        ]
        figures += [(p, timed_get(base + p)[0]) for p in extra]
    finally:
        server.shutdown()
        server.server_close()
    return total, figures


def time_browser(path: Path) -> tuple[float, float]:
    from playwright.sync_api import sync_playwright

    server, base = serving(path)
    try:
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
            page = browser.new_page()
            page.goto(f"{base}/")  # the runs list, as a person sees it before clicking a run
            page.locator(f"tr[data-run='{RUN}']").wait_for()
            t0 = time.perf_counter()
            page.click(f"a[href='#/run/{RUN}']")
            page.locator("#rows tr.row").nth(49).wait_for()
            drawn = time.perf_counter() - t0
            page.locator("#counts tr.count").first.wait_for()
            counted = time.perf_counter() - t0
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    return drawn, counted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--full", action="store_true", help="1,000,000 rows")
    parser.add_argument("--experiments", type=int, default=2)
    parser.add_argument("--target", type=float, default=1.0, help="seconds to open the run's page")
    parser.add_argument("--browser", action="store_true", help="also time the page in headless Chromium")
    args = parser.parse_args()
    rows = 1_000_000 if args.full else args.rows
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "elspeth-runs.sqlite"
        built = build(path, rows, args.experiments)
        size = path.stat().st_size / 2**20
        print(f"store: {rows:,} rows x {args.experiments} experiments written in {built:.1f} s ({size:,.0f} MiB)")
        total, figures = time_http(path, rows)
        for name, seconds in figures:
            print(f"  {seconds * 1000:8.1f} ms  GET {name}")
        verdict = "PASS" if total <= args.target else "FAIL"
        target = f"target <= {args.target * 1000:.0f} ms"
        print(f"opening the run's page over HTTP: {total * 1000:.0f} ms ({target}) {verdict}")
        if args.browser:
            drawn, counted = time_browser(path)
            print(f"in headless Chromium, from the click on the run: its first 50 rows drawn {drawn * 1000:.0f} ms")
            print(f"  and its experiments' row counts shown {counted * 1000:.0f} ms")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
