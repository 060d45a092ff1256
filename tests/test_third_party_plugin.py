"""A third-party plugin distribution, built into a wheel and pip-installed into a fresh venv, works like a builtin.

``tests/fixtures/plugin_project`` registers one plugin through every hook core and the experiment
orchestrator specify; these tests check each one is listed healthy with its distribution and version,
and that a run using all of them produces the output each one is responsible for.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

Cli = Callable[..., Any]
PLUGIN_DIST = "elspeth-fixture-plugin"
PLUGIN_VERSION = "1.2.3"

EVENTS = "ELSPETH_FIXTURE_EVENTS"

# hook -> (domain, plugin name, entry point) the fixture distribution registers through it
REGISTERED = {
    "register_datasources": ("datasource", "fixture_range", "fixture"),
    "register_sinks": ("sink", "fixture_tsv", "fixture"),
    "register_llm_clients": ("llm_client", "fixture_echo", "fixture"),
    "register_llm_middleware": ("llm_middleware", "fixture_tag", "fixture"),
    "register_controls": ("rate_limiter", "fixture_counting_limiter", "fixture"),
    "register_controls/cost": ("cost_tracker", "fixture_flat_cost", "fixture"),
    "register_processors": ("processor", "fixture_upper", "fixture"),
    "register_utilities": ("utility", "fixture_note", "fixture"),
    "register_orchestrators": ("orchestrator", "fixture_passthrough", "fixture"),
    "register_executors": ("executor", "fixture_logging_executor", "fixture"),
    "register_row_plugins": ("row_plugin", "fixture_length", "fixture_experiment"),
    "register_aggregators": ("aggregator", "fixture_length_total", "fixture_experiment"),
    "register_validators": ("validator", "fixture_must_contain", "fixture_experiment"),
    "register_baseline_comparisons": ("baseline_comparison", "fixture_length_delta", "fixture_experiment"),
    "register_early_stops": ("early_stop", "fixture_stop_after", "fixture_experiment"),
}

SUITE = """\
name: fixture-suite
datasource:
  plugin: fixture_range
  options: {count: 4}
llm:
  plugin: fixture_echo
  options: {prefix: echo}
middleware:
  - plugin: fixture_tag
    options: {tag: seen}
rate_limiter: fixture_counting_limiter
cost_tracker:
  plugin: fixture_flat_cost
  options: {per_call: 0.5}
processors:
  - plugin: fixture_upper
    options: {column: text}
utilities:
  - plugin: fixture_note
    options: {note: from-settings}
prompts:
  user: "{{ text }}"
concurrency: 1
executor:
  plugin: fixture_logging_executor
  options: {label: suite}
orchestrator:
  plugin: experiment
  options:
    row_plugins: [fixture_length]
    aggregators: [fixture_length_total]
    comparisons: [fixture_length_delta]
    experiments:
      - name: baseline
        baseline: true
      - name: picky
        validators:
          - plugin: fixture_must_contain
            options: {text: ITEM 2}
      - name: short
        early_stop:
          - plugin: fixture_stop_after
            options: {rows: 2}
sinks:
  - plugin: fixture_tsv
    options: {path: results.tsv}
  - plugin: json
    options: {path: summary.json}
"""

PASSTHROUGH = """\
name: passthrough
datasource:
  plugin: fixture_range
  options: {count: 3, word: row}
processors:
  - plugin: fixture_upper
    options: {column: text}
orchestrator:
  plugin: fixture_passthrough
  options:
    separator: "+"
sinks:
  - plugin: fixture_tsv
    options: {path: out.tsv}
"""


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def read_tsv(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def listing(plugin_cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    done = plugin_cli("plugins", "list", "--json", cwd=tmp_path_factory.mktemp("list"))
    assert done.returncode == 0, done.stderr
    entries = done.json()
    assert isinstance(entries, list)
    return entries


@pytest.fixture(scope="module")
def suite_run(plugin_cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run SUITE once; the tests below each check one plugin's part of the outcome."""
    project = tmp_path_factory.mktemp("suite")
    (project / "settings.yaml").write_text(SUITE, encoding="utf-8")
    events = project / "events.jsonl"
    done = plugin_cli("run", "settings.yaml", "--no-progress", cwd=project, env={EVENTS: str(events)})
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((project / "output/summary.json").read_text(encoding="utf-8"))
    return {
        "done": done,
        "events": read_events(events),
        "summary": summary,
        "tsv": read_tsv(project / "output/results.tsv"),
    }


@pytest.mark.parametrize("hook", sorted(REGISTERED))
def test_every_hook_registers_a_healthy_plugin_with_its_distribution(hook: str, listing: list[dict[str, Any]]) -> None:
    domain, name, entry_point = REGISTERED[hook]
    (entry,) = [e for e in listing if e["name"] == name and e["domain"] == domain]
    assert entry["status"] == "ok", entry["error"]
    assert entry["error"] is None
    assert entry["distribution"] == PLUGIN_DIST
    assert entry["version"] == PLUGIN_VERSION
    assert entry["entry_point"] == entry_point
    assert entry["description"], "the first docstring line is the description"


def test_listing_has_the_builtins_and_the_plugin_side_by_side(listing: list[dict[str, Any]]) -> None:
    ours = {(e["domain"], e["name"]) for e in listing if e["distribution"] == PLUGIN_DIST}
    assert ours == {(domain, name) for domain, name, _ in REGISTERED.values()}
    assert {"domain": "sink", "name": "csv", "distribution": "elspeth-core", "status": "ok"}.items() <= next(
        e for e in listing if e["domain"] == "sink" and e["name"] == "csv"
    ).items()


def test_plugins_show_prints_the_plugins_own_options(plugin_cli: Cli, tmp_path: Path) -> None:
    done = plugin_cli("plugins", "show", "fixture_flat_cost", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"from {PLUGIN_DIST} {PLUGIN_VERSION}" in done.stdout
    assert "per_call: float (default 0.25)" in done.stdout
    assert "the price of one call" in done.stdout


def test_the_run_prints_a_summary_of_each_experiment(suite_run: dict[str, Any]) -> None:
    out = suite_run["done"].stdout
    assert "(fixture-suite) stopped" in out  # the early stop makes the run "stopped"
    assert "baseline (baseline): 4 ok, 0 failed" in out
    assert "picky: 1 ok, 3 failed" in out
    assert "short: 2 ok, 0 failed, 2 not run" in out
    assert "results.tsv" in out
    assert "summary.json" in out


def test_datasource_llm_client_middleware_and_processor_shape_every_response(suite_run: dict[str, Any]) -> None:
    # register_datasources gave rows 1..4, register_processors upper-cased the text,
    # register_llm_clients echoed the prompt, register_llm_middleware appended the tag,
    # and register_sinks wrote them as TSV.
    rows = suite_run["tsv"]
    assert rows[0] == ["row_id", "experiment", "response"]
    baseline = [r for r in rows[1:] if r[1] == "baseline"]
    assert baseline == [[str(n), "baseline", f"echo: ITEM {n} [seen]"] for n in range(1, 5)]


def test_validator_fails_rows_whose_reply_breaks_its_rule(suite_run: dict[str, Any]) -> None:
    # register_validators: fixture_must_contain only lets "ITEM 2" through
    picky = [r for r in suite_run["tsv"][1:] if r[1] == "picky"]
    assert picky == [["2", "picky", "echo: ITEM 2 [seen]"]]
    failures = [f for f in suite_run["summary"]["failures"] if f["experiment"] == "picky"]
    assert [f["row_id"] for f in failures] == ["1", "3", "4"]
    assert {f["failure.stage"] for f in failures} == {"validation:fixture_must_contain"}
    assert {f["failure.error"] for f in failures} == {"reply does not contain 'ITEM 2'"}


def test_early_stop_stops_taking_rows(suite_run: dict[str, Any]) -> None:
    # register_early_stops: fixture_stop_after stops "short" after two records
    short = suite_run["summary"]["aggregates"]["experiments"]["short"]
    assert short["succeeded"] == 2
    assert short["not_run"] == 2
    assert short["early_stop"]["plugin"] == "fixture_stop_after"
    assert short["early_stop"]["reason"] == "collected 2 records"
    assert [r[0] for r in suite_run["tsv"][1:] if r[1] == "short"] == ["1", "2"]


def test_row_plugin_and_aggregator_feed_the_aggregates(suite_run: dict[str, Any]) -> None:
    # register_row_plugins gives reply_length per record; register_aggregators sums it per experiment
    experiments = suite_run["summary"]["aggregates"]["experiments"]
    expected = sum(len(f"echo: ITEM {n} [seen]") for n in range(1, 5))
    assert experiments["baseline"]["aggregates"]["fixture_length_total"] == {"total": expected, "records": 4}
    picky = experiments["picky"]["aggregates"]["fixture_length_total"]
    assert picky == {"total": len("echo: ITEM 2 [seen]"), "records": 1}


def test_baseline_comparison_runs_once_per_variant(suite_run: dict[str, Any]) -> None:
    # register_baseline_comparisons: fixture_length_delta compares each variant with the baseline
    comparisons = suite_run["summary"]["aggregates"]["comparisons"]
    assert set(comparisons) == {"picky", "short"}
    base = sum(len(f"echo: ITEM {n} [seen]") for n in range(1, 5))
    picky = comparisons["picky"]["fixture_length_delta"]
    assert picky == {"baseline_chars": base, "variant_chars": len("echo: ITEM 2 [seen]"), "delta": picky["delta"]}
    assert picky["delta"] == picky["variant_chars"] - base


def test_controls_see_every_llm_call(suite_run: dict[str, Any]) -> None:
    # register_controls: the rate limiter is asked before each call, the cost tracker prices each one
    events = suite_run["events"]
    generated = [e for e in events if e["event"] == "generate"]
    assert len(generated) == 4 + 4 + 2
    assert len([e for e in events if e["event"] == "acquire"]) == len(generated)
    assert suite_run["summary"]["metadata"]["cost"] == {"calls": 10, "total_cost": 5.0}


def test_utility_is_built_and_credited_to_its_distribution(suite_run: dict[str, Any]) -> None:
    # register_utilities
    assert [e for e in suite_run["events"] if e["event"] == "utility_built"] == [
        {"event": "utility_built", "note": "from-settings"}
    ]
    plugins = suite_run["summary"]["metadata"]["plugins"]
    note = {"domain": "utility", "name": "fixture_note", "distribution": PLUGIN_DIST, "version": PLUGIN_VERSION}
    assert note in plugins
    assert {(p["domain"], p["name"]) for p in plugins if p["distribution"] == PLUGIN_DIST} == {
        (domain, name) for domain, name, _ in REGISTERED.values() if name != "fixture_passthrough"
    }


def test_executor_runs_the_orchestrator_once(suite_run: dict[str, Any]) -> None:
    # register_executors: the settings' executor is handed the run, before any LLM call
    events = suite_run["events"]
    runs = [e for e in events if e["event"] == "executor_run"]
    assert runs == [{"event": "executor_run", "label": "suite", "run_id": suite_run["summary"]["metadata"]["run_id"]}]
    assert events.index(runs[0]) < min(i for i, e in enumerate(events) if e["event"] == "generate")


def test_observers_see_the_run_start_every_row_and_the_end(suite_run: dict[str, Any]) -> None:
    events = [e for e in suite_run["events"] if e["event"] in ("run_started", "row_finished", "run_finished")]
    run_id = suite_run["summary"]["metadata"]["run_id"]
    # run_started comes first, once, before any LLM call
    assert suite_run["events"].index(events[0]) < min(
        i for i, e in enumerate(suite_run["events"]) if e["event"] == "generate"
    )
    assert events[0] == {
        "event": "run_started",
        "run_id": run_id,
        "name": "fixture-suite",
        "orchestrator": "experiment",
        "settings_name": "fixture-suite",
    }
    # row_finished once per finished row, failures included, each with its experiment
    rows = [(e["group"], e["row_id"], e["ok"]) for e in events if e["event"] == "row_finished"]
    assert sorted(rows) == sorted(
        [("baseline", str(n), True) for n in range(1, 5)]
        + [("picky", str(n), n == 2) for n in range(1, 5)]
        + [("short", "1", True), ("short", "2", True)]
    )
    assert {e["run_id"] for e in events} == {run_id}
    # run_finished last, once, with the totals
    assert events[-1] == {"event": "run_finished", "run_id": run_id, "succeeded": 7, "failed": 3, "status": "stopped"}
    assert [e["event"] for e in events].count("run_finished") == 1


def test_third_party_orchestrator_runs_without_the_experiment_package(plugin_cli: Cli, tmp_path: Path) -> None:
    # register_orchestrators: fixture_passthrough, with the experiment distribution disabled
    (tmp_path / "settings.yaml").write_text(PASSTHROUGH, encoding="utf-8")
    done = plugin_cli("--disable-plugin", "experiment", "run", "settings.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "run " in done.stdout
    assert "3 records, 0 failures" in done.stdout
    assert read_tsv(tmp_path / "output/out.tsv") == [
        ["row_id", "experiment", "response"],
        ["1", "", "1+ROW 1"],
        ["2", "", "2+ROW 2"],
        ["3", "", "3+ROW 3"],
    ]


def test_experiment_hooks_break_only_their_entry_point_without_the_experiment_package(
    plugin_cli: Cli, tmp_path: Path
) -> None:
    # the experiment distribution's add_hookspecs is what defines register_row_plugins & co.; disabled,
    # it cannot, so the entry point implementing them is broken while the other one works
    done = plugin_cli("--disable-plugin", "experiment", "plugins", "list", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    entries = done.json()
    assert isinstance(entries, list)
    (broken,) = [e for e in entries if e["entry_point"] == "fixture_experiment"]
    assert broken["status"] == "broken"
    assert broken["distribution"] == PLUGIN_DIST
    assert "register_row_plugins" in broken["error"]
    # disabled is not missing: the message says which installed distribution was left out, and how
    loaded = "which no loaded distribution specifies; installed but not loaded: elspeth-orchestrator-experiment "
    assert loaded in broken["error"]
    assert "(disabled: disabled by --disable-plugin / ELSPETH_DISABLE_PLUGINS)" in broken["error"]
    assert "disable 'fixture_experiment' too" in broken["error"]
    assert "no installed distribution" not in broken["error"]
    healthy = {e["name"] for e in entries if e["entry_point"] == "fixture" and e["status"] == "ok"}
    assert {"fixture_echo", "fixture_tsv", "fixture_passthrough"} <= healthy


def test_orchestrator_check_errors_name_the_line(plugin_cli: Cli, tmp_path: Path) -> None:
    text = PASSTHROUGH.replace('separator: "+"', "require_column: label")
    (tmp_path / "settings.yaml").write_text(text, encoding="utf-8")
    line = text.splitlines().index("    require_column: label") + 1
    for command in ("validate", "run"):
        done = plugin_cli(command, "settings.yaml", cwd=tmp_path)
        assert done.returncode == 2, done.stdout
        assert (
            f"orchestrator.options.require_column: column 'label' is not in the datasource "
            f"(its columns: n, text) (settings.yaml:{line})"
        ) in done.stderr
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "output").exists()
