"""Holm across variants and criteria, through a real suite: two variants x two criteria make families of four."""

from __future__ import annotations

from typing import Any

import pytest
from scipy import stats

VARIANTS, CRITERIA = ("shifted", "same"), ("a", "b")


def _holm_by_hand(p_values: list[float]) -> list[float]:
    """Holm (1979): the k-th smallest p times (m - k + 1), made non-decreasing, capped at 1; in input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for k, i in enumerate(order, start=1):
        running = max(running, min(1.0, (m - k + 1) * p_values[i]))
        adjusted[i] = running
    return adjusted


def _column(result: Any, group: str, key: str, criterion: str) -> dict[str, Any]:
    return {r.row_id: r.metrics[key][criterion] for r in result.records if r.group == group}


def _suite(run_suite: Any) -> Any:
    return run_suite(
        {
            "criteria": [{"name": c} for c in CRITERIA],
            "row_plugins": [{"plugin": "score_extractor", "options": {"threshold": 5.0}}],
            "comparisons": [{"plugin": "score_significance", "options": {"bootstrap_resamples": 200}}],
            "experiments": [
                {"name": "base", "baseline": True},
                {"name": "shifted", "llm": {"plugin": "gauss", "options": {"mean": 5.35, "seed": 2}}},
                {"name": "same", "llm": {"plugin": "gauss", "options": {"mean": 5.0, "seed": 3}}},
            ],
        },
        llm={"plugin": "gauss", "options": {"mean": 5.0, "seed": 1}},
        prompts={"system": "judge", "user": "Rate {{ criterion }}: {{ text }}"},
        rows=80,
        concurrency=8,
    )


def _cells(suite: Any) -> dict[tuple[str, str], dict[str, Any]]:
    comparisons = suite.aggregates["comparisons"]
    return {(v, c): comparisons[v]["score_significance"]["criteria"][c] for v in VARIANTS for c in CRITERIA}


def test_the_primary_family_is_every_variant_and_criterion_adjusted_by_holm(run_suite: Any) -> None:
    suite = _suite(run_suite)
    cells = _cells(suite)
    raw = []
    for variant, criterion in cells:
        base, var = _column(suite, "base", "scores", criterion), _column(suite, variant, "scores", criterion)
        ids = sorted(base)
        expected = stats.ttest_rel([var[i] for i in ids], [base[i] for i in ids]).pvalue
        assert cells[variant, criterion]["p_value"] == pytest.approx(expected, rel=1e-9)
        raw.append(float(expected))
    adjusted = _holm_by_hand(raw)
    for cell, p_adjusted in zip(cells.values(), adjusted, strict=True):
        assert cell["family_size"] == 4
        assert cell["p_adjusted"] == pytest.approx(p_adjusted, rel=1e-9)
        assert cell["significant"] is (p_adjusted < 0.05)
    # a step-down, not Bonferroni: some adjusted p-value is below four times its raw one, and below 1
    assert any(a < min(1.0, 4 * p) for a, p in zip(adjusted, raw, strict=True))
    assert cells["shifted", "a"]["significant"] or cells["shifted", "b"]["significant"]
    assert not cells["same", "a"]["significant"]
    assert not cells["same", "b"]["significant"]


def test_the_mcnemar_family_counts_discordant_pairs_and_is_holm_adjusted(run_suite: Any) -> None:
    suite = _suite(run_suite)
    cells = _cells(suite)
    raw = []
    for (variant, criterion), cell in cells.items():
        base, var = _column(suite, "base", "score_flags", criterion), _column(suite, variant, "score_flags", criterion)
        lost = sum(1 for i in base if base[i] and not var[i])
        gained = sum(1 for i in base if not base[i] and var[i])
        mcnemar = cell["mcnemar"]
        assert (mcnemar["n"], mcnemar["pass_to_fail"], mcnemar["fail_to_pass"]) == (80, lost, gained)
        discordant = lost + gained
        # Changed by issue 16, point 2: the pass-rate comparison is the exact conditional McNemar test at
        # every size (it used to switch to the continuity-corrected chi-square at 25 discordant pairs), so
        # that its Clopper-Pearson interval of the difference is the inversion of the same test.
        expected = stats.binomtest(min(lost, gained), discordant, 0.5).pvalue if discordant else 1.0
        assert mcnemar["p_value"] == pytest.approx(expected, rel=1e-9)
        raw.append(float(expected))
    for cell, p_adjusted in zip(cells.values(), _holm_by_hand(raw), strict=True):
        assert cell["mcnemar"]["family_size"] == 4
        assert cell["mcnemar"]["p_adjusted"] == pytest.approx(p_adjusted, rel=1e-9)
        assert cell["mcnemar"]["significant"] is (p_adjusted < 0.05)
