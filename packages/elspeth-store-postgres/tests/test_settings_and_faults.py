"""Choosing the store with store.url, and every way that can go wrong, each named with what to do."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from elspeth import Record, StoreError
from elspeth_store_postgres import PostgresRunStore
from elspeth_testing.services import free_port

SETTINGS = """
name: pg
datasource: {{plugin: csv, options: {{path: data.csv, id_column: id}}}}
llm: {{plugin: mock, options: {{latency_ms: 1}}}}
prompts: {{user: "Rate {{{{ id }}}}"}}
orchestrator: {{plugin: batch}}
sinks: [{{plugin: jsonl}}]
store: {store}
"""


def project(tmp_path: Path, store: str, rows: int = 5) -> Path:
    (tmp_path / "data.csv").write_text("id\n" + "".join(f"r{i}\n" for i in range(rows)))
    path = tmp_path / "settings.yaml"
    path.write_text(SETTINGS.format(store=store))
    return path


def test_a_run_with_store_url_keeps_its_rows_in_postgres_and_runs_list_reads_them(tmp_path, elspeth_cli, postgres_url):
    path = project(tmp_path, f"{{url: '{postgres_url}'}}")
    done = elspeth_cli("run", str(path), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "output" / "elspeth-runs.sqlite").exists()  # no file beside the outputs
    listed = elspeth_cli("runs", "list", "--settings", str(path), "--json")
    assert listed.returncode == 0, listed.stderr
    (run,) = json.loads(listed.stdout)
    assert (run["status"], run["done"], run["pending"]) == ("completed", 5, 0)
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT COUNT(*) FROM rows WHERE run_id=%s", (run["run_id"],)).fetchone() == (5,)


@pytest.mark.parametrize(
    ("store", "message"),
    [
        # the settings' secret check refuses it first, as it refuses any password in a settings file
        ("{url: 'postgresql://elspeth:hunter2@127.0.0.1:5432/db'}", "holds user-info ('...@'), a credential"),
        ("{url: 'postgresql://elspeth@127.0.0.1/db', path: runs.sqlite}", "give store.path"),
        ("{url: 'not a url'}", "is not a URL like postgresql://"),
    ],
)
def test_a_bad_store_setting_exits_2_naming_the_field_and_line(tmp_path, elspeth_cli, store, message):
    path = project(tmp_path, store)
    done = elspeth_cli("validate", str(path))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "store" in done.stderr
    assert message in done.stderr
    assert "settings.yaml:8" in done.stderr
    assert "hunter2" not in done.stdout + done.stderr


def test_a_scheme_no_installed_backend_serves_exits_2_naming_store_url(tmp_path, elspeth_cli):
    path = project(tmp_path, "{url: 'mysql://127.0.0.1/db'}")
    done = elspeth_cli("run", str(path), "--no-progress")
    assert done.returncode == 2, done.stderr
    assert "store.url: no run store backend serves mysql:// (installed: postgres://, postgresql://)" in done.stderr
    assert not (tmp_path / "output" / "results.jsonl").exists()


def test_a_server_that_is_not_there_fails_the_run_naming_the_url_and_what_to_check(tmp_path, elspeth_cli):
    url = f"postgresql://elspeth@127.0.0.1:{free_port()}/db"
    done = elspeth_cli("run", str(project(tmp_path, f"{{url: '{url}'}}")), "--no-progress")
    assert done.returncode == 2, done.stderr  # a store that cannot be used is a bad setting to fix
    assert f"cannot reach the run store {url}" in done.stderr
    assert "check store.url, that the server is up" in done.stderr
    assert not (tmp_path / "output" / "results.jsonl").exists()


def test_a_database_holding_other_tables_is_refused_untouched(postgres_url):
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE runs (id INTEGER)")
    with pytest.raises(StoreError, match=r"holds tables \(runs\) that are not an Elspeth run store"):
        PostgresRunStore.open_url(postgres_url)
    with psycopg.connect(postgres_url) as conn:
        tables = {name for (name,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
    assert tables == {"runs"}


def test_a_store_of_another_version_or_format_is_refused_naming_the_url(postgres_url):
    PostgresRunStore.open_url(postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("UPDATE meta SET value='3' WHERE key='version'")
    with pytest.raises(StoreError, match=f"{postgres_url} is run store version 3; .* version 2 only"):
        PostgresRunStore.open_url(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("UPDATE meta SET value='other' WHERE key='format'")
    with pytest.raises(StoreError, match="has a meta table but is not an Elspeth run store"):
        PostgresRunStore.open_url(postgres_url)


def test_a_password_given_to_the_backend_directly_is_never_in_its_messages(postgres):
    url = f"postgresql://elspeth:s3cret-pw@127.0.0.1:{postgres.port}/no_such_db"
    with pytest.raises(StoreError) as caught:
        PostgresRunStore.open_url(url)
    assert "s3cret-pw" not in str(caught.value)
    assert f"postgresql://elspeth@127.0.0.1:{postgres.port}/no_such_db" in str(caught.value)


def test_a_server_lost_mid_run_is_a_store_error_naming_the_url(postgres_url):
    store = PostgresRunStore.open_url(postgres_url)
    store.begin_run("run-1", name="n", orchestrator="o", settings={}, settings_hash="0", settings_path=None, plugins=[])
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    with pytest.raises(StoreError, match=f"lost the run store {postgres_url} while recording row r1 of run run-1"):
        store.commit_row("run-1", Record("r1", {}, {}), None)
    store.close()
