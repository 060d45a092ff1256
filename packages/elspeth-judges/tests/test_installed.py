"""The distribution is found through its entry point and registers each plugin in the experiment's domains."""

from __future__ import annotations

from elspeth.discovery import load_registry


def test_every_judge_is_listed_from_this_distribution() -> None:
    registry = load_registry(environ={})
    found = {(p.domain, p.name): p for p in registry if p.distribution == "elspeth-judges"}
    assert set(found) == {
        ("row_plugin", "rubric_judge"),
        ("row_plugin", "reference_match"),
        ("baseline_comparison", "pairwise_judge"),
        ("aggregator", "judge_cost"),
    }
    assert all(p.status == "ok" for p in found.values()), [p.to_dict() for p in found.values()]
    assert found["row_plugin", "rubric_judge"].version == "0.1.0"
