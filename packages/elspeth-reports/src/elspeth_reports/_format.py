"""Numbers as people read them in a report, shared by the Markdown and HTML renderings."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from elspeth_reports.summary import is_number

__all__ = [
    "ci_label",
    "comparison_table",
    "count_of",
    "currency_of",
    "judge_costs",
    "duration",
    "headline",
    "interval",
    "interval_pct",
    "level",
    "money",
    "num",
    "pairwise_line",
    "p_is",
    "p_value",
    "pct",
    "plain",
    "signed",
]

DASH = "\u2013"  # en dash: a missing value


def num(value: Any, digits: int = 3) -> str:
    """A number with ``digits`` significant digits; a dash for a missing value."""
    if not is_number(value):
        return DASH if value is None else str(value)
    if isinstance(value, int) or (value.is_integer() and abs(value) < 1e15):
        return f"{int(value):,}"
    if abs(value) >= 10**digits:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def signed(value: Any, digits: int = 3) -> str:
    """A number with its sign (a real minus sign)."""
    if not is_number(value):
        return num(value)
    return f"{value:+.{digits}g}".replace("-", "\u2212")  # a real minus sign


def p_value(value: Any) -> str:
    """A p-value: small ones as ``< 0.001``."""
    if not is_number(value):
        return DASH
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def p_is(value: Any) -> str:
    """``p = 0.016`` or ``p < 0.001``: a p-value in a sentence."""
    text = p_value(value)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def pct(value: Any, digits: int = 1) -> str:
    """A share as a percentage."""
    return f"{value * 100:.{digits}f}%" if is_number(value) else DASH


def money(value: Any, currency: Any = None) -> str:
    """A cost in currency units: cents for a unit or more, else three significant digits (``0.00406 EUR``)."""
    if not is_number(value):
        return DASH
    # fractions of a cent matter when a row costs a thousandth of one
    decimals = 2 if abs(value) >= 1 or value == 0 else 2 - math.floor(math.log10(abs(value)))
    text = f"{value:,.{decimals}f}"
    return f"{text} {currency}" if currency else text


def duration(seconds: Any) -> str:
    """A latency or duration as people read it: ``6.14 ms``, ``1.25 s``, ``2 min 5 s``."""
    if not is_number(seconds):
        return DASH
    if abs(seconds) < 1:
        return f"{seconds * 1000:.3g} ms"
    if abs(seconds) < 120:
        return f"{seconds:.3g} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes:,} min {rest} s"


def interval(value: Any, digits: int = 3) -> str:
    """``[low, high]``, or a dash."""
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        return f"[{signed(value[0], digits)}, {signed(value[1], digits)}]"
    return DASH


def level(value: Any, default: str = "") -> str:
    """A confidence or credibility level as ``95%``."""
    return f"{value * 100:g}%" if is_number(value) else default


def count_of(count: Any, one: str, many: str | None = None) -> str:
    """``1 failed row``, ``2 failed rows``."""
    return f"{num(count)} {one if count == 1 else many or one + 's'}"


def ci_label(value: Any) -> str:
    """``95% CI``, or ``CI`` when the level is not known."""
    return f"{level(value)} CI" if is_number(value) else "CI"


def plain(value: Any) -> str:
    """Any value as one line of text."""
    if value is None:
        return DASH
    if is_number(value):
        return num(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {plain(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(plain(v) for v in value)
    return " ".join(str(value).split())


def headline(row: Mapping[str, Any]) -> str:
    """One sentence on a variant's criterion: the difference, its interval, significance and the posterior."""
    parts: list[str] = []
    freq = row.get("frequentist")
    bayes = row.get("bayes")
    if isinstance(freq, Mapping) and is_number(freq.get("mean_difference")):
        diff = float(freq["mean_difference"])
        way = "higher" if diff > 0 else "lower" if diff < 0 else "no different"
        text = f"{way} than the baseline by {num(abs(diff))}" if diff else "no different from the baseline"
        if freq.get("ci"):
            text += f" ({ci_label(freq.get('ci_level'))} {interval(freq['ci'])})"
        parts.append(text)
        correction = freq.get("correction")
        adjusted = f"after {correction.capitalize()} " if isinstance(correction, str) and correction != "none" else ""
        verdict = "significant" if freq.get("significant") else "not significant"
        parts.append(f"{verdict} {adjusted}({p_is(freq.get('p_value'))}, adjusted {p_value(freq.get('p_adjusted'))})")
        parts += _accounting(freq)
    elif isinstance(freq, Mapping) and freq.get("power_warning"):
        parts.append(str(freq["power_warning"]))
    if isinstance(bayes, Mapping) and is_number(bayes.get("prob_variant_better")):
        parts.append(f"P(variant better) = {pct(bayes['prob_variant_better'])}")
    if isinstance(freq, Mapping):
        parts += _pass_rates(freq)
    if isinstance(row.get("pairwise"), Mapping):
        parts.append(pairwise_line(row["pairwise"]))
    return "; ".join(parts) if parts else "no comparison figures"


def _pass_rates(freq: Mapping[str, Any]) -> list[str]:
    """The paired pass-rate line (McNemar), after the mean's: a second family, a second question."""
    parts: list[str] = []
    mcnemar = freq.get("mcnemar")
    if isinstance(mcnemar, Mapping) and is_number(mcnemar.get("p_value")):
        rates = (
            f"pass rate {pct(mcnemar['baseline_pass_rate'])} → {pct(mcnemar.get('variant_pass_rate'))} "
            if is_number(mcnemar.get("baseline_pass_rate"))
            else "pass rate "
        )
        parts.append(
            rates + f"({signed(mcnemar.get('difference'))}, {interval(mcnemar.get('ci'))}, exact McNemar "
            f"{p_is(mcnemar['p_value'])}, adjusted {p_value(mcnemar.get('p_adjusted'))})"
        )
    return parts


def pairwise_line(judge: Mapping[str, Any]) -> str:
    """A pairwise judge's verdict, its certainty and the position bias it measured."""
    text = (
        f"the judge ({judge.get('plugin')}) preferred the variant in {num(judge.get('variant_wins'))} "
        f"of {num(judge.get('pairs'))} pairs ({num(judge.get('baseline_wins'))} the baseline, "
        f"{num(judge.get('ties'))} ties; win rate {pct(judge.get('variant_win_rate'))}, "
        f"95% CI {interval_pct(judge.get('win_rate_ci'))}, sign test {p_is(judge.get('p_value'))}, "
        f"{'significant' if judge.get('significant') else 'not significant'})"
    )
    bias = judge.get("position_bias")
    if isinstance(bias, Mapping) and is_number(bias.get("first_win_rate")):
        said = "biased" if bias.get("biased") else "no significant bias"
        text += (
            f"; position bias: the response shown first won {pct(bias['first_win_rate'])} of decided pairs "
            f"({p_is(bias.get('p_value'))}, {said})"
        )
    return text


def interval_pct(value: Any) -> str:
    """``[37.3%, 72.4%]``: an interval of a share."""
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        return f"[{pct(value[0])}, {pct(value[1])}]"
    return DASH


_REASONS = {"failed": "failed", "missing_score": "unscored", "not_run": "not run", "unpaired": "unpaired"}


def _dropped(rows: Mapping[str, Any]) -> str:
    """``variant 120 failed, 30 unscored; baseline 150 unpaired``: the rows a test left out, per experiment."""
    out = []
    for arm in ("baseline", "variant"):
        value = rows.get(arm)
        counts: Mapping[str, Any] = value if isinstance(value, Mapping) else {}
        said = [f"{num(counts[k])} {label}" for k, label in _REASONS.items() if is_number(counts.get(k)) and counts[k]]
        if said:
            out.append(f"{arm} {', '.join(said)}")
    return "; ".join(out)


def _accounting(freq: Mapping[str, Any]) -> list[str]:
    """The rows used and left out, the intention-to-treat line, the "no worse" claim and an early stop."""
    parts: list[str] = []
    rows = freq.get("rows")
    if isinstance(rows, Mapping) and is_number(rows.get("used")):
        dropped = _dropped(rows)
        parts.append(f"on {num(rows['used'])} rows" + (f" (left out: {dropped})" if dropped else ", none left out"))
    itt = freq.get("itt")
    if isinstance(itt, Mapping) and itt.get("same_as_primary") is False:
        verdict = "the same verdict" if freq.get("itt_agrees") else "a different verdict"
        parts.append(
            f"intention-to-treat, a failed or unscored row as {num(itt.get('worst_score'))}: "
            f"{signed(itt.get('mean_difference'))} ({p_is(freq.get('itt_p_value'))}, {verdict})"
        )
    equivalence = freq.get("equivalence")
    if isinstance(equivalence, Mapping) and isinstance(equivalence.get("no_worse"), Mapping):
        claim = equivalence["no_worse"]
        holds = "holds" if claim.get("holds") else "not shown"
        parts.append(
            f"no worse than the baseline by more than {num(equivalence.get('margin'))}: {holds} "
            f"(adjusted {p_is(claim.get('p_adjusted'))})"
        )
    tost = equivalence.get("tost") if isinstance(equivalence, Mapping) else None
    if isinstance(equivalence, Mapping) and isinstance(tost, Mapping) and is_number(tost.get("p_value")):
        verdict = "equivalent" if tost.get("equivalent") else "equivalence not shown"
        parts.append(f"TOST within ±{num(equivalence.get('margin'))}: {verdict} ({p_is(tost['p_value'])})")
    if freq.get("p_values_hold") is False:
        parts.append(str(freq.get("stop_warning") or "these p-values do not hold: an experiment stopped early"))
    return parts


COMPARISON_NUMERIC = (2, 3, 6, 7, 9, 10, 11)
"""The columns of :func:`comparison_table` that hold numbers (right-aligned in HTML)."""


def comparison_table(criteria: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """A variant's criteria against the baseline as a table: its headers and one row per criterion.

    The interval column is named with its level (``95% CI``) and the adjusted p column with the
    correction (``Holm``), both taken from the first criterion with frequentist figures.
    """
    rows: list[list[Any]] = []
    for row in criteria:
        f, b = row.get("frequentist") or {}, row.get("bayes") or {}
        cliffs = signed(f.get("cliffs_delta"))
        rows.append(
            [
                row["criterion"],
                f.get("design"),
                f.get("n"),
                signed(f.get("mean_difference")),
                interval(f.get("ci")),
                f.get("test"),
                p_value(f.get("p_value")),
                p_value(f.get("p_adjusted")),
                "yes" if f.get("significant") else "no" if f else None,
                signed(f.get("cohens_d")),
                f"{cliffs} ({f['cliffs_label']})" if f.get("cliffs_label") else cliffs,
                pct(b.get("prob_variant_better")),
                interval(b.get("credible_interval")),
            ]
        )
    first = next((r.get("frequentist") for r in criteria if r.get("frequentist")), None) or {}
    correction = str(first.get("correction") or "").capitalize() or "adjusted"
    headers = ["Criterion", "Design", "n", "Δ mean", ci_label(first.get("ci_level")), "Test", "p", correction]
    headers += ["Significant", "Cohen's d", "Cliff's δ", "P(better)", "Credible interval"]
    return headers, rows


def currency_of(summary: Mapping[str, Any]) -> str:
    """The price table's currency (``USD`` unless it says otherwise), or nothing without a cost tracker."""
    run = (summary.get("cost") or {}).get("run") or {}
    return str(run.get("currency") or "")


def judge_costs(summary: Mapping[str, Any]) -> list[list[Any]]:
    """One row per judge and experiment: calls, cached calls, tokens and cost, kept apart from the experiment's."""
    cur, rows = currency_of(summary), []
    for e in summary.get("experiments") or []:
        for label, c in ((e.get("judge_cost") or {}).get("judges") or {}).items():
            tokens = (c.get("prompt_tokens") or 0) + (c.get("completion_tokens") or 0)
            rows.append(
                [
                    e["name"],
                    f"row judge {label}",
                    c.get("calls"),
                    c.get("cached"),
                    num(tokens),
                    money(c.get("cost"), cur),
                ]
            )
    for comp in summary.get("comparisons") or []:
        seen = {
            r["pairwise"]["plugin"]: r["pairwise"] for r in comp["criteria"] if isinstance(r.get("pairwise"), Mapping)
        }
        for plugin, judge in seen.items():
            c = judge.get("judge") or {}
            tokens = (c.get("prompt_tokens") or 0) + (c.get("completion_tokens") or 0)
            rows.append(
                [comp["variant"], plugin, c.get("calls"), c.get("cached"), num(tokens), money(c.get("cost"), cur)]
            )
    return rows
