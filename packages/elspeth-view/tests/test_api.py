"""The JSON API over a real run store, and the command line's answers to a bad store."""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from elspeth_view import queries


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url) as res:
            return res.status, json.loads(res.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_runs_list_status_cost_and_timings(viewer: str) -> None:
    code, runs = get(f"{viewer}/api/runs")
    assert code == 200
    assert {r["run_id"] for r in runs} == {"run-a", "run-b"}
    run = next(r for r in runs if r["run_id"] == "run-a")
    assert (run["status"], run["cost"], run["llm_calls"], run["duration_s"]) == ("completed", 0.25, 240, 12.5)


def test_run_has_groups_side_by_side_and_comparisons(viewer: str) -> None:
    code, run = get(f"{viewer}/api/runs/run-a")
    assert code == 200
    assert run["groups"] == [
        {"name": "baseline", "done": 120, "failed": 0},
        {"name": "variant", "done": 108, "failed": 12},
    ]
    assert run["comparisons"] == [
        {"variant": "variant", "plugin": "score_delta", "figures": {"mean_difference": 1.0, "p_value": 0.001}}
    ]
    assert "aggregates" not in run["metadata"]  # sent once, as the two tables above


def test_rows_are_paged_and_carry_every_group(viewer: str) -> None:
    code, page = get(f"{viewer}/api/runs/run-a/rows?offset=50&limit=20")
    assert code == 200
    assert (page["total"], page["more"], len(page["rows"])) == (120, True, 20)
    first = page["rows"][0]
    assert first["row_id"] == "r0050"
    assert first["groups"]["variant"]["ok"] is False
    assert first["groups"]["variant"]["attempts"][1]["error"] == "HTTP 500"
    assert first["groups"]["baseline"]["outputs"] == {"answer": "yes"}
    _, last = get(f"{viewer}/api/runs/run-a/rows?offset=100&limit=50")
    assert (len(last["rows"]), last["more"]) == (20, False)


def test_filter_by_status_and_search(viewer: str) -> None:
    _, failed = get(f"{viewer}/api/runs/run-a/rows?group=variant&status=failed&limit=500")
    assert [r["row_id"] for r in failed["rows"]] == [f"r{i:04d}" for i in range(0, 120, 10)]
    _, found = get(f"{viewer}/api/runs/run-a/rows?q=NUMBER%20117")
    assert [r["row_id"] for r in found["rows"]] == ["r0117"]
    assert found["total"] is None


def test_row_detail_and_diff(viewer: str) -> None:
    _, row = get(f"{viewer}/api/runs/run-a/rows/r0010")
    assert [(g["group"], g["ok"]) for g in row["groups"]] == [("baseline", True), ("variant", False)]
    _, diff = get(f"{viewer}/api/diff?a=run-a&b=run-b&limit=500")
    # the baselines agree; every variant row differs (yes -> no, or failed -> finished)
    assert {r["group"] for r in diff["rows"]} == {"variant"}
    assert len(diff["rows"]) == 120
    _, every = get(f"{viewer}/api/diff?a=run-a&b=run-b&changed=0&limit=500")
    assert len(every["rows"]) == 240


@pytest.mark.parametrize(
    ("path", "code", "words"),
    [
        ("/api/runs/nope", 404, "no run 'nope'"),
        ("/api/runs/run-a/rows/zzz", 404, "no row 'zzz'"),
        ("/api/runs/run-a/rows?offset=-1", 400, "offset must be a whole number"),
        ("/api/runs/run-a/rows?status=weird", 400, "status must be"),
        ("/api/diff?a=run-a&b=gone", 404, "no run 'gone'"),
        ("/api/elsewhere", 404, "no such API path"),
    ],
)
def test_bad_requests_say_what_is_wrong(viewer: str, path: str, code: int, words: str) -> None:
    got, body = get(viewer + path)
    assert got == code
    assert words in body["error"]


def test_store_is_opened_read_only(store_file: Path) -> None:
    conn = queries.open_store(store_file)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("DELETE FROM rows")
    conn.close()


def test_not_a_store_is_exit_2_naming_the_file(tmp_path: Path) -> None:
    from elspeth.cli import app

    bogus = tmp_path / "x.sqlite"
    sqlite3.connect(bogus).execute("CREATE TABLE meta (key TEXT, value TEXT)")
    for path, words in [(bogus, "is not an Elspeth run store"), (tmp_path / "missing.sqlite", "no run store at")]:
        result = CliRunner().invoke(app, ["view", "--store", str(path), "--port", "0"])
        assert result.exit_code == 2, result.output
        assert words in result.output
        assert str(path) in result.output


def test_counts_kept_for_a_finished_run_are_renewed_when_it_is_resumed(viewer: str, store_file: Path) -> None:
    from elspeth import Record
    from elspeth.store import RunStore

    _, before = get(f"{viewer}/api/runs/run-a/rows?limit=1")
    assert before["total"] == 120
    store = RunStore.open(store_file)
    store.begin_run("run-a", name="", orchestrator="", settings={}, settings_hash="", settings_path=None, plugins=[])
    late = [(Record(f"r{i:04d}", {}, {"answer": "late"}, {}, "baseline"), None) for i in (500, 501)]
    store.commit_rows("run-a", late)
    _, running = get(f"{viewer}/api/runs/run-a")
    assert running["groups"][0] == {"name": "baseline", "done": 122, "failed": 0}
    store.finish_run("run-a", "completed", {})
    store.close()
    _, after = get(f"{viewer}/api/runs/run-a/rows?limit=1")
    assert after["total"] == 122


def test_a_port_already_taken_is_exit_2_saying_what_to_do(store_file: Path) -> None:
    import socket

    from elspeth.cli import app

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["view", "--store", str(store_file), "--port", str(port)])
    assert result.exit_code == 2, result.output
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "--port 0" in result.output


def test_the_page_can_have_its_rows_first_and_the_counts_apart(viewer: str) -> None:
    _, run = get(f"{viewer}/api/runs/run-a?counts=0")
    assert run["groups"] == [{"name": "baseline"}, {"name": "variant"}]
    _, page = get(f"{viewer}/api/runs/run-a/rows?count=0&limit=10")
    assert (page["total"], page["more"], len(page["rows"])) == (None, True, 10)
    _, counts = get(f"{viewer}/api/runs/run-a/counts")
    assert counts == [{"name": "baseline", "done": 120, "failed": 0}, {"name": "variant", "done": 108, "failed": 12}]
    code, body = get(f"{viewer}/api/runs/gone/counts")
    assert (code, body["error"]) == (404, "no run 'gone' in this store")
