"""What a person sees: the viewer in headless Chromium (Debian's, driven by Playwright) over two real runs.

Every test ends by checking that the page asked nothing of any host but the viewer on 127.0.0.1.
"""

from __future__ import annotations

import threading
from typing import Any

from playwright.sync_api import expect


def only_local(page: Any, viewer: str) -> None:
    assert page.requested, "the page made no request at all"
    strangers = [url for url in page.requested if not url.startswith(viewer + "/")]
    assert strangers == []


def test_the_runs_with_status_cost_and_timings(page: Any, real_viewer: str, real_runs: Any) -> None:
    page.goto(real_viewer + "/")
    expect(page.locator("h1")).to_have_text("2 runs")
    for run_id in (real_runs.first, real_runs.second):
        row = page.locator(f"tr[data-run='{run_id}']")
        expect(row).to_contain_text("fabric-review")
        expect(row).to_contain_text("completed")
        expect(row.locator("td.duration")).not_to_have_text("-")
        expect(row.locator("td.cost")).to_have_text("0.0000")  # the test model has no price
    only_local(page, real_viewer)


def open_run(page: Any, viewer: str, run_id: str) -> None:
    page.goto(f"{viewer}/#/run/{run_id}")
    expect(page.locator("h1")).to_have_text(f"Run {run_id}")


def test_a_runs_experiments_side_by_side_with_the_comparison(page: Any, real_viewer: str, real_runs: Any) -> None:
    open_run(page, real_viewer, real_runs.first)
    figures = page.locator("#experiments table")
    expect(figures.locator("thead th")).to_have_text(["Figure", "baseline", "strict"])
    expect(figures.locator("tr", has_text="succeeded").locator("td")).to_have_text(["60", "59"])
    expect(figures.locator("tr", has_text="score_stats.overall.mean").locator("td")).to_have_count(2)
    card = page.locator(".comparison[data-variant='strict']")
    expect(card.locator("h3")).to_have_text("strict vs baseline · score_significance")
    expect(card.locator(".verdict")).to_contain_text("criteria.default:")
    expect(card.locator("tr", has_text="criteria.default.n").locator("td")).to_have_text("59")
    only_local(page, real_viewer)


def test_rows_are_paged_on_the_server(page: Any, real_viewer: str, real_runs: Any) -> None:
    open_run(page, real_viewer, real_runs.first)
    rows = page.locator("#rows tr.row")
    expect(rows).to_have_count(50)
    expect(page.locator("#range")).to_have_text("Rows 1 to 50 of 60")
    expect(page.locator("#prev")).to_be_disabled()
    expect(rows.first).to_contain_text("item 0")
    page.click("#next")
    expect(page.locator("#range")).to_have_text("Rows 51 to 60 of 60")
    expect(rows).to_have_count(10)
    expect(rows.first.locator("td").first).to_have_text("r50")
    expect(page.locator("#next")).to_be_disabled()
    page.select_option("#limit", "25")
    expect(page.locator("#range")).to_have_text("Rows 1 to 25 of 60")
    assert any("limit=25" in url and "offset=0" in url for url in page.requested)  # the server cut the page
    only_local(page, real_viewer)


def test_filter_and_search(page: Any, real_viewer: str, real_runs: Any) -> None:
    open_run(page, real_viewer, real_runs.first)
    rows = page.locator("#rows tr.row")
    page.select_option("#group", "strict")
    page.select_option("#status", "failed")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("td").first).to_have_text(real_runs.failed_row)
    expect(rows.first.locator("td.failed")).to_contain_text("failed at llm: LLMCallFailed")
    expect(page.locator("#range")).to_have_text("Rows 1 to 1 of 1")
    page.select_option("#status", "")
    page.fill("#search", "item 42")
    page.press("#search", "Enter")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("td").first).to_have_text("r42")
    expect(rows.first).to_contain_text("score ")
    page.fill("#search", "no such text anywhere")
    page.press("#search", "Enter")
    expect(page.locator("#range")).to_have_text("No rows match")
    only_local(page, real_viewer)


def test_a_row_in_full(page: Any, real_viewer: str, real_runs: Any) -> None:
    open_run(page, real_viewer, real_runs.first)
    page.click(f"#rows a:text-is('{real_runs.failed_row}')")
    expect(page.locator("h1")).to_have_text(f"Row {real_runs.failed_row}")
    baseline = page.locator("section.group[data-group='baseline']")
    strict = page.locator("section.group[data-group='strict']")
    expect(baseline.locator("h2")).to_have_text("baseline: finished")
    expect(baseline).to_contain_text("Rate item 7 made of cotton")
    expect(baseline).to_contain_text("You rate products.")
    expect(baseline.locator("tr", has_text="Response")).to_contain_text("Score: ")
    expect(strict.locator("h2")).to_have_text("strict: failed")
    expect(strict).to_contain_text("Strictly rate item 7")
    expect(strict.locator("td.failed")).to_contain_text("llm: LLMCallFailed")
    expect(strict.locator("tr.attempt")).to_have_count(1)
    expect(strict.locator("tr.attempt td").nth(1)).to_have_text("400")
    expect(page.locator("h2", has_text="Inputs").locator("xpath=following-sibling::table[1]")).to_contain_text("cotton")
    only_local(page, real_viewer)


def test_the_diff_of_two_runs(page: Any, real_viewer: str, real_runs: Any) -> None:
    page.goto(real_viewer + "/")
    page.check(f"tr[data-run='{real_runs.first}'] input.pick")
    page.check(f"tr[data-run='{real_runs.second}'] input.pick")
    page.click("#diff")
    expect(page.locator("h1")).to_contain_text("Diff")
    rows = page.locator("#diffrows tr.row")
    expect(rows.first).to_be_visible()
    groups = set(rows.locator("td:first-child").all_inner_texts())
    assert groups == {"strict"}  # the baselines asked the same and got the same
    fixed = rows.filter(has_text=real_runs.failed_row)
    expect(fixed).to_have_count(1)
    expect(fixed.locator("td.failed")).to_have_count(1)
    page.uncheck("#changed")
    expect(page.locator("#range")).to_have_text("Rows 1 to 50")
    only_local(page, real_viewer)


def test_stored_markup_is_shown_as_text_and_fetches_nothing(page: Any, tmp_path: Any) -> None:
    from elspeth import Record
    from elspeth.store import RunStore
    from elspeth_view.server import make_server

    path = tmp_path / "runs.sqlite"
    store = RunStore.open(path)
    store.begin_run("x", name="x", orchestrator="batch", settings={}, settings_hash="", settings_path=None, plugins=[])
    html = '<img src="http://example.invalid/pixel.png">'
    store.commit_rows("x", [(Record("r1", {"text": html}, {"reply": html}, {}), None)])
    store.finish_run("x", "completed", {})
    store.close()
    server = make_server(path)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    viewer = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        page.goto(f"{viewer}/#/run/x")
        expect(page.locator("#rows tr.row")).to_have_count(1)
        expect(page.locator("#rows tr.row")).to_contain_text(html)
        expect(page.locator("#rows img")).to_have_count(0)
        only_local(page, viewer)
    finally:
        server.shutdown()
        server.server_close()
