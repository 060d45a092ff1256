"""Numbers as people read them in a report, shared by the Markdown and HTML renderings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from elspeth_reports.summary import is_number

__all__ = [
    "ci_label",
    "comparison_table",
    "count_of",
    "headline",
    "interval",
    "level",
    "money",
    "num",
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


def pct(value: Any, digits: int = 1) -> str:
    """A share as a percentage."""
    return f"{value * 100:.{digits}f}%" if is_number(value) else DASH


def money(value: Any, currency: Any = None) -> str:
    """A cost with enough digits for fractions of a cent."""
    if not is_number(value):
        return DASH
    text = f"{value:.4f}" if abs(value) >= 0.01 else f"{value:.6f}"
    return f"{text} {currency}" if currency else text


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
        parts.append(
            f"{verdict} {adjusted}(p = {p_value(freq.get('p_value'))}, adjusted {p_value(freq.get('p_adjusted'))})"
        )
        parts += _accounting(freq)
    elif isinstance(freq, Mapping) and freq.get("power_warning"):
        parts.append(str(freq["power_warning"]))
    if isinstance(bayes, Mapping) and is_number(bayes.get("prob_variant_better")):
        parts.append(f"P(variant better) = {pct(bayes['prob_variant_better'])}")
    return "; ".join(parts) if parts else "no comparison figures"


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
            f"{signed(itt.get('mean_difference'))} (p = {p_value(freq.get('itt_p_value'))}, {verdict})"
        )
    equivalence = freq.get("equivalence")
    if isinstance(equivalence, Mapping) and isinstance(equivalence.get("no_worse"), Mapping):
        claim = equivalence["no_worse"]
        holds = "holds" if claim.get("holds") else "not shown"
        parts.append(
            f"no worse than the baseline by more than {num(equivalence.get('margin'))}: {holds} "
            f"(adjusted p = {p_value(claim.get('p_adjusted'))})"
        )
    if freq.get("p_values_hold") is False:
        parts.append("these p-values do not hold: an experiment stopped early on what it saw")
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
