"""The figures of a pairwise comparison, from its verdicts: wins, ties, the win rate and the position bias."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from elspeth_judges._binomial import sign_test, wilson

__all__ = ["figures"]


def figures(verdicts: Sequence[Any], alpha: float, *, both_orders: bool) -> dict[str, Any]:
    """Per criterion and overall: the outcome counts, the win rate with its interval and test, the position bias."""
    by_criterion: dict[str, list[Any]] = {}
    for verdict in verdicts:
        by_criterion.setdefault(verdict.pair.criterion, []).append(verdict)
    cells = {c: _cell(vs, alpha, both_orders) for c, vs in by_criterion.items()}
    return {"criteria": cells, "position_bias": _position(verdicts, alpha), "alpha": alpha}


def _outcomes(verdicts: Sequence[Any], both_orders: bool) -> tuple[list[str | None], int]:
    """One outcome per pair (``variant``, ``baseline``, ``tie`` or None), and how many pairs' two verdicts disagreed."""
    if not both_orders:
        return [v.side for v in verdicts], 0
    sides: dict[str, list[str | None]] = {}
    for verdict in verdicts:
        sides.setdefault(verdict.pair.row_id, []).append(verdict.side)
    outcomes: list[str | None] = []
    inconsistent = 0
    for both in sides.values():
        if None in both:
            outcomes.append(None)
        elif len(set(both)) == 1:
            outcomes.append(both[0])
        else:
            inconsistent += 1
            outcomes.append("tie")
    return outcomes, inconsistent


def _cell(verdicts: Sequence[Any], alpha: float, both_orders: bool) -> dict[str, Any]:
    outcomes, inconsistent = _outcomes(verdicts, both_orders)
    wins, losses = outcomes.count("variant"), outcomes.count("baseline")
    decided = wins + losses
    p = sign_test(wins, decided)
    interval = wilson(wins, decided)
    cell: dict[str, Any] = {
        "pairs": len(outcomes),
        "variant_wins": wins,
        "baseline_wins": losses,
        "ties": outcomes.count("tie"),
        "refused": outcomes.count(None),
        "inconsistent": inconsistent if both_orders else None,
        "variant_win_rate": wins / decided if decided else None,
        "win_rate_ci": list(interval) if interval is not None else None,
        "p_value": p,
        "p_adjusted": p,
        "significant": p is not None and p < alpha,
        "direction": None if not decided else "higher" if wins > losses else "lower" if losses > wins else "equal",
        "position_bias": _position(verdicts, alpha),
    }
    return cell


def _position(verdicts: Sequence[Any], alpha: float) -> dict[str, Any]:
    """How often the response shown first won, among verdicts that picked one; 0.5 is no bias."""
    first = sum(1 for v in verdicts if v.winner == "A")
    second = sum(1 for v in verdicts if v.winner == "B")
    decided = first + second
    p = sign_test(first, decided)
    rate = first / decided if decided else None
    return {
        "first_wins": first,
        "second_wins": second,
        "first_win_rate": rate,
        "bias": rate - 0.5 if rate is not None else None,
        "p_value": p,
        "biased": p is not None and p < alpha,
    }
