"""Repeated samples: ``epochs: K`` asks each row K times, reduces the epochs, and clusters the comparison."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict

from elspeth import ConfigError, LLMRequest, LLMResponse, Usage, hookimpl
from elspeth.cli._run import run_command
from elspeth.discovery import PluginSource, load_registry
from elspeth.registry import Registry
from elspeth.resume import RunOptions
from elspeth_experiment.epochs import EpochPlan, epoch_summary, pass_at_k, pass_hat_k, reduce_epochs
from elspeth_experiment.stats.cluster import clustered_difference

RunSuite = Any  # conftest's run_suite fixture


def _unit(*parts: object) -> random.Random:
    seed = int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:8], "big")
    return random.Random(seed)


def write_rows(path: Path, count: int) -> None:
    path.write_text("id,text\n" + "".join(f"r{i:03d},item number {i}\n" for i in range(count)))


def build_registry(module: object) -> Registry:
    return load_registry(
        sources=[
            PluginSource("experiment", "elspeth-orchestrator-experiment", "0.1.0", "elspeth_experiment.plugin"),
            PluginSource("epoch-tests", "epoch-tests", "0", module),
        ],
        environ={},
    )


def _write_settings(tmp_path: Path, options: dict[str, Any], llm: str = "seeded", **extra: Any) -> Path:
    """A settings file over data.csv with the experiment ``options``; ``extra`` adds top-level keys."""
    settings = {
        "name": "epochs",
        "datasource": {"plugin": "csv", "options": {"path": "data.csv", "id_column": "id"}},
        "llm": {"plugin": llm},
        "prompts": {"user": "Rate {{ text }}"},
        "orchestrator": {"plugin": "experiment", "options": options},
        **extra,
    }
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(settings))
    return path


class SeededClient:
    """A score from the row, the seed and the experiment's shift; logs every request it is sent."""

    name = "seeded"
    supports_seed = True
    requests: list[LLMRequest] = []  # noqa: RUF012 - one log per test, reset by the fixture

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        shift: float = 0.0
        noise: float = 1.0
        fail: list[str] = []  # "row_id@epoch": calls that raise (pydantic copies the default)

    def __init__(self, options: Options) -> None:
        self.options = options

    async def generate(self, request: LLMRequest) -> LLMResponse:
        SeededClient.requests.append(request)
        row = request.metadata["row_id"]
        if f"{row}@{request.metadata.get('epoch')}" in self.options.fail:
            raise RuntimeError(f"seeded refuses {row} in epoch {request.metadata.get('epoch')}")
        score = 5 + _unit("row", row).gauss(0, 1) + self.options.shift
        score += _unit(row, request.params.get("seed")).gauss(0, self.options.noise)
        return LLMResponse(content=f"Score: {score:.6f}", usage=Usage(4, 2), model="seeded")


class NoSeedClient(SeededClient):
    """The same client, but one that takes no seed (as Anthropic's)."""

    name = "noseed"
    supports_seed = False


def _module() -> types.SimpleNamespace:
    @hookimpl
    def register_llm_clients(register: Any) -> None:
        register(SeededClient)
        register(NoSeedClient)

    return types.SimpleNamespace(register_llm_clients=register_llm_clients)


@pytest.fixture(autouse=True)
def _fresh_log() -> None:
    SeededClient.requests = []


SCORES = {"row_plugins": [{"plugin": "score_extractor", "options": {"threshold": 5}}]}


def test_each_row_is_asked_k_times_with_its_own_seed_temperature_and_cache_key(run_suite: RunSuite) -> None:
    options = {**SCORES, "epochs": 3, "epoch_seed": 10, "epoch_temperatures": [0.0, None, 1.0]}
    result = run_suite(options, rows=4, llm={"plugin": "seeded"}, modules=[_module()])
    assert len(result.records) == 4
    assert not result.failures
    sent = [(r.metadata["row_id"], r.metadata["epoch"], r.params) for r in SeededClient.requests]
    assert sorted(sent, key=lambda s: (s[0], s[1])) == [
        (f"r{i:03d}", e, params)
        for i in range(4)
        for e, params in (
            (1, {"seed": 10, "temperature": 0.0}),
            (2, {"seed": 11}),
            (3, {"seed": 12, "temperature": 1.0}),
        )
    ]
    record = result.records[0]
    assert record.metrics["epochs"] == 3
    epochs = record.metrics["epoch_scores"]["default"]
    assert len(set(epochs)) == 3  # each seed its own answer
    assert record.metrics["scores"]["default"] == pytest.approx(sum(epochs) / 3)
    assert len(record.outputs["response"]) == 3
    assert record.metrics["prompt_tokens"] == 3 * 4  # every epoch's call is paid for


def test_cache_keys_include_the_epoch_so_a_client_without_seed_is_asked_k_times_and_replayed_once(
    tmp_path: Path,
) -> None:
    write_rows(tmp_path / "data.csv", 3)
    path = _write_settings(tmp_path, {**SCORES, "epochs": 2}, llm="noseed", utilities=[{"plugin": "response_cache"}])
    registry = build_registry(_module())
    assert run_command(path, registry, strict=False, progress=False, options=RunOptions()) == 0
    first = list(SeededClient.requests)
    assert len(first) == 6
    assert all(r.params == {} for r in first)
    assert len({(r.metadata["row_id"], r.metadata["epoch"]) for r in first}) == 6
    assert len({r.metadata["cache_key"] for r in first}) == 6  # epoch 2 is a new answer, not epoch 1's
    assert run_command(path, registry, strict=False, progress=False, options=RunOptions()) == 0
    assert SeededClient.requests == first, "the second run is answered from the cache, every epoch"


def test_resume_repeats_no_row_whose_epochs_all_finished(tmp_path: Path) -> None:
    write_rows(tmp_path / "data.csv", 6)
    prices = {"*": {"input": 1e5, "output": 1e5}}
    # each call costs (4 + 2) x 0.1 = 0.6: a budget of 5 stops after the 9th call, the 3rd row's last epoch
    budgeted = {"plugin": "price_table", "options": {"prices": prices, "budget": 5}}
    path = _write_settings(tmp_path, {**SCORES, "epochs": 3}, concurrency=1, cost_tracker=budgeted)
    registry = build_registry(_module())
    assert run_command(path, registry, strict=False, progress=False, options=RunOptions(force=True)) == 0
    first = [(r.metadata["row_id"], r.metadata["epoch"]) for r in SeededClient.requests]
    assert len(first) == 9
    assert len(set(first)) == 9
    from elspeth.store import RunStore

    store = RunStore.open(tmp_path / "output" / "elspeth-runs.sqlite", create=False)
    try:
        (run,) = store.runs()
        done = store.finished_rows(run["run_id"])
    finally:
        store.close()
    assert {row for _, row in done} == {"r000", "r001", "r002"}, "a row is done when its 3 epochs are"
    _write_settings(
        tmp_path,
        {**SCORES, "epochs": 3},
        concurrency=1,
        cost_tracker={"plugin": "price_table", "options": {"prices": prices}},
    )
    SeededClient.requests = []
    assert run_command(path, registry, strict=False, progress=False, options=RunOptions(resume=run["run_id"])) == 0
    again = [(r.metadata["row_id"], r.metadata["epoch"]) for r in SeededClient.requests]
    assert sorted(again) == [(f"r{i:03d}", e) for i in range(3, 6) for e in (1, 2, 3)]


def _flags(values: list[bool]) -> list[dict[str, Any]]:
    return [{"scores": {"c": float(v)}, "score_flags": {"c": v}} for v in values]


@pytest.mark.parametrize(("n", "c", "k"), [(5, 2, 1), (5, 2, 3), (6, 0, 2), (6, 6, 4), (7, 3, 7), (4, 3, 2)])
def test_pass_at_k_and_pass_hat_k_are_the_unbiased_estimators(n: int, c: int, k: int) -> None:
    # the estimators are the mean, over every k-subset of the n samples, of "any passed" and "all passed"
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(samples, k))
    assert pass_at_k(n, c, k) == pytest.approx(sum(any(s) for s in subsets) / len(subsets), abs=1e-12)
    assert pass_hat_k(n, c, k) == pytest.approx(sum(all(s) for s in subsets) / len(subsets), abs=1e-12)


def test_each_reducer_of_a_rows_epochs() -> None:
    scores = [{"scores": {"c": v}, "score_flags": {"c": v >= 3}} for v in (1.0, 3.0, 3.0, 5.0, 4.0)]
    got = {name: reduce_epochs(EpochPlan(5, name, 2), scores) for name in ("mean", "median", "mode", "max", "min")}
    assert {name: out["scores"]["c"] for name, out in got.items()} == {
        "mean": 3.2,
        "median": 3.0,
        "mode": 3.0,
        "max": 5.0,
        "min": 1.0,
    }
    assert {name: out["score_flags"]["c"] for name, out in got.items()} == {
        "mean": True,  # 4 of 5 epochs pass: the majority
        "median": True,
        "mode": True,
        "max": True,
        "min": False,  # not every epoch passes
    }
    assert got["mean"]["epoch_scores"] == {"c": [1.0, 3.0, 3.0, 5.0, 4.0]}
    three = reduce_epochs(EpochPlan(5, "at_least_k", 3), _flags([True, False, True, False, True]))
    assert three["scores"]["c"] == 1.0
    assert three["score_flags"]["c"] is True
    four = reduce_epochs(EpochPlan(5, "at_least_k", 4), _flags([True, False, True, False, True]))
    assert four["score_flags"]["c"] is False
    at2 = reduce_epochs(EpochPlan(5, "pass_at_k", 2), _flags([True, False, True, False, False]))
    assert at2["scores"]["c"] == pytest.approx(1 - 3 / 10)
    assert "score_flags" not in at2
    hat2 = reduce_epochs(EpochPlan(5, "pass_hat_k", 2), _flags([True, False, True, False, False]))
    assert hat2["scores"]["c"] == pytest.approx(1 / 10)
    assert reduce_epochs(EpochPlan(2, "mode", 1), [{"scores": {"c": 2.0}}, {"scores": {"c": 1.0}}])["scores"] == {
        "c": 1.0
    }  # a tie: the smallest, whatever the order


def test_within_and_between_row_variance() -> None:
    rows = [[1.0, 2.0, 3.0], [4.0, 4.0, 7.0], [0.0, 1.0, 2.0], [9.0, 8.0, 10.0]]
    summary = epoch_summary(EpochPlan(3), [{"epoch_scores": {"c": r}} for r in rows])["criteria"]["c"]
    within = np.mean([np.var(r, ddof=1) for r in rows])
    of_means = np.var([np.mean(r) for r in rows], ddof=1)
    assert summary["within_row_variance"] == pytest.approx(within, abs=1e-12)
    assert summary["variance_of_row_means"] == pytest.approx(of_means, abs=1e-12)
    assert summary["between_row_variance"] == pytest.approx(of_means - within / 3, abs=1e-12)
    assert summary["icc"] == pytest.approx((of_means - within / 3) / (of_means - within / 3 + within), abs=1e-12)
    assert (summary["rows"], summary["samples"]) == (4, 12)


def test_clustered_standard_errors_agree_with_statsmodels() -> None:
    import statsmodels.api as sm

    rng = np.random.default_rng(3)
    clusters = np.repeat(np.arange(40), 6)
    arm = np.tile([0, 0, 0, 1, 1, 1], 40)
    y = rng.normal(size=40)[clusters] + 0.3 * arm + rng.normal(size=240) * (1 + arm)
    ours = clustered_difference(y, arm, clusters, 0.95)
    assert ours is not None
    fit = sm.OLS(y, sm.add_constant(arm)).fit(cov_type="cluster", cov_kwds={"groups": clusters}, use_t=True)
    assert ours["difference"] == pytest.approx(fit.params[1], abs=1e-10)
    assert ours["se"] == pytest.approx(fit.bse[1], abs=1e-10)
    assert ours["p_value"] == pytest.approx(fit.pvalues[1], abs=1e-10)
    low, high = fit.conf_int(0.05)[1]
    assert ours["ci"] == pytest.approx([low, high], abs=1e-10)
    assert (ours["clusters"], ours["df"], ours["observations"]) == (40, 39, 240)


def test_a_comparison_with_epochs_is_clustered_by_row_and_by_a_column(run_suite: RunSuite) -> None:
    rows = [{"id": f"r{i:02d}", "text": f"t{i}", "doc": f"d{i // 4}"} for i in range(24)]
    experiments = [{"name": "a", "baseline": True}, {"name": "b", "llm_options": {"shift": 0.5, "noise": 1.5}}]
    options = {**SCORES, "epochs": 4, "experiments": experiments, "comparisons": ["score_significance"]}
    result = run_suite(options, rows=rows, llm={"plugin": "seeded"}, modules=[_module()])
    cell = result.aggregates["comparisons"]["b"]["score_significance"]["criteria"]["default"]
    line = cell["clustered"]
    assert (line["cluster_by"], line["clusters"], line["observations"]) == ("row", 24, 2 * 24 * 4)
    observed = [np.mean(r.metrics["epoch_scores"]["default"]) for r in result.records]
    assert line["difference"] == pytest.approx(np.mean(observed[24:]) - np.mean(observed[:24]), abs=1e-9)
    assert line["significant"] is True
    assert line["family_size"] == 1
    by_doc = {**options, "comparisons": [{"plugin": "score_significance", "options": {"cluster_by": "doc"}}]}
    result = run_suite(by_doc, rows=rows, llm={"plugin": "seeded"}, modules=[_module()])
    line = result.aggregates["comparisons"]["b"]["score_significance"]["criteria"]["default"]["clustered"]
    assert (line["cluster_by"], line["clusters"], line["df"]) == ("doc", 6, 5)
    assert "rows sharing a 'doc' are not independent" in line["note"]
    summary = result.aggregates["experiments"]["a"]["aggregates"]["epochs"]["criteria"]["default"]
    assert summary["rows"] == 24
    assert summary["within_row_variance"] > 0


def test_a_single_epoch_sends_no_seed_and_adds_no_clustered_line(run_suite: RunSuite) -> None:
    experiments = [{"name": "a", "baseline": True}, {"name": "b"}]
    options = {**SCORES, "experiments": experiments, "comparisons": ["score_significance"]}
    result = run_suite(options, rows=6, llm={"plugin": "seeded"}, modules=[_module()])
    assert all(r.params == {} and "epoch" not in r.metadata for r in SeededClient.requests)
    cell = result.aggregates["comparisons"]["b"]["score_significance"]["criteria"]["default"]
    assert "clustered" not in cell
    assert "epochs" not in result.aggregates["experiments"]["a"]["aggregates"]
    assert isinstance(result.records[0].outputs["response"], str)


@pytest.mark.parametrize(
    ("options", "where", "says"),
    [
        ({"epochs": 0}, "orchestrator.options.epochs", "greater than or equal to 1"),
        ({"reducer": "average"}, "orchestrator.options.reducer", "'mean'"),
        (
            {"epochs": 2, "reducer": "pass_at_k", "reducer_k": 3},
            "orchestrator.options.reducer_k",
            "k <= epochs: k is 3, orchestrator.options.epochs is 2",
        ),
        ({"epochs": 3, "epoch_temperatures": [0.2]}, "orchestrator.options.epoch_temperatures", "1 temperatures"),
        (
            {"experiments": [{"name": "a", "epochs": -1}]},
            "orchestrator.options.experiments[0].epochs",
            "greater than or equal to 1",
        ),
        (
            {"comparisons": [{"plugin": "score_significance", "options": {"cluster_by": "nope"}}]},
            "orchestrator.options.comparisons[0].options.cluster_by",
            "'nope' is not a column",
        ),
    ],
)
def test_bad_epoch_settings_exit_2_naming_the_field(
    tmp_path: Path, options: dict[str, Any], where: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_rows(tmp_path / "data.csv", 3)
    path = _write_settings(tmp_path, options)
    registry = build_registry(_module())
    try:
        code = run_command(path, registry, strict=False, progress=False, options=RunOptions())
        message = capsys.readouterr().err
    except ConfigError as exc:  # the CLI turns it into exit 2
        code, message = 2, str(exc)
    assert code == 2
    assert where in message
    assert says in message
    assert SeededClient.requests == []


def test_the_clustered_line_of_identical_clusters_is_certain() -> None:
    out = clustered_difference([1.0, 1.0, 2.0, 2.0], [0, 0, 1, 1], ["a", "b", "a", "b"], 0.95)
    assert out is not None
    assert out["p_value"] == 0.0
    assert out["ci"] == [1.0, 1.0]
    assert math.isclose(out["difference"], 1.0)


def test_an_epoch_that_fails_fails_the_row_naming_the_epoch_with_every_call_paid_for(run_suite: RunSuite) -> None:
    llm = {"plugin": "seeded", "options": {"fail": ["r001@2"]}}
    result = run_suite({**SCORES, "epochs": 3}, rows=3, llm=llm, modules=[_module()])
    (failure,) = result.failures
    assert failure.row_id == "r001"
    assert failure.stage == "llm"
    assert "seeded refuses r001 in epoch 2" in failure.error
    assert failure.attempts[0]["epoch"] == 2
    assert failure.metrics["prompt_tokens"] == 4  # epoch 1's call, paid before epoch 2 failed
    assert [r.row_id for r in result.records] == ["r000", "r002"]
