"""``group_by: COLUMN``: every aggregate and comparison per category, families stated, small categories listed."""

from __future__ import annotations

from typing import Any

import pytest

from elspeth import ConfigError

ROWS = [
    {"id": f"r{i:02d}", "text": f"item {i}", "kind": ["book", "film", ""][i % 3] if i < 24 else "toy"}
    for i in range(26)
]
OPTIONS = {
    "group_by": "kind",
    "row_plugins": [{"plugin": "score_extractor", "options": {"threshold": 5}}],
    "aggregators": ["score_stats"],
    "comparisons": ["score_significance"],
    "experiments": [
        {"name": "a", "baseline": True},
        {"name": "b", "llm_options": {"seed": 1}},
        {"name": "c", "llm_options": {"seed": 2, "fail_rows": ["r01", "r04"]}},
    ],
}


def test_every_aggregate_and_comparison_is_given_per_category(run_suite: Any) -> None:
    result = run_suite(OPTIONS, rows=ROWS, llm={"plugin": "gauss"})
    groups = result.aggregates["groups"]
    cats = groups["categories"]
    assert list(cats) == ["book", "film", "(missing)", "toy"]
    assert {k: v["rows"] for k, v in cats.items()} == {"book": 8, "film": 8, "(missing)": 8, "toy": 2}
    film = cats["film"]["experiments"]
    assert (film["c"]["succeeded"], film["c"]["failed"]) == (6, 2)  # r01 and r04 are films, failed in c
    assert film["a"]["aggregates"]["score_stats"]["overall"]["count"] == 8
    book = cats["book"]["comparisons"]
    for variant in ("b", "c"):
        cell = book[variant]["score_significance"]["criteria"]["default"]
        assert cell["family_size"] == 2  # this category's two variants x one criterion
        assert cell["rows"]["used"] == 8
    dropped = cats["film"]["comparisons"]["c"]["score_significance"]["criteria"]["default"]["rows"]
    assert dropped["used"] == 6
    assert dropped["variant"]["failed"] == 2
    # the overall comparison is unchanged by the breakdown
    overall = result.aggregates["comparisons"]["b"]["score_significance"]["criteria"]["default"]
    assert overall["rows"]["used"] == 26
    # a category below group_min_rows is aggregated, stated, and not compared
    assert groups["too_few"] == {"toy": 2}
    assert cats["toy"]["comparisons"] is None
    assert "fewer than group_min_rows = 5" in cats["toy"]["note"]
    assert cats["toy"]["experiments"]["a"]["aggregates"]["score_stats"]["overall"]["count"] == 2
    assert "within the category" in groups["family"]


def test_group_by_with_epochs_gives_each_category_its_variance_split(run_suite: Any) -> None:
    result = run_suite({**OPTIONS, "epochs": 2}, rows=ROWS, llm={"plugin": "gauss"})
    book = result.aggregates["groups"]["categories"]["book"]["experiments"]["a"]["aggregates"]
    assert book["epochs"]["criteria"]["default"]["rows"] == 8
    cell = result.aggregates["groups"]["categories"]["book"]["comparisons"]["b"]["score_significance"]
    assert cell["criteria"]["default"]["clustered"]["clusters"] == 8


def test_a_group_by_column_not_in_the_data_is_a_settings_error(run_suite: Any) -> None:
    with pytest.raises(ConfigError) as info:
        run_suite({**OPTIONS, "group_by": "genre"}, rows=ROWS, llm={"plugin": "gauss"})
    assert "orchestrator.options.group_by" in str(info.value)
    assert "'genre' is not a column" in str(info.value)
