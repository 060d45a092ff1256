"""Advice on each variant, derived from its own figures: what moved, by how much, how sure, and what undercuts it.

The recommendation plugin judges an experiment against a target; this reads the comparison itself, so
two variants of one run get different sentences whenever their figures differ: a variant that gained
on the rows it kept but lost under intention-to-treat, one stopped early, one shown no worse within a
margin, one a biased judge preferred.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from elspeth_reports._format import currency_of, duration, interval, level, money, num, p_is, pct, signed
from elspeth_reports.summary import is_number

__all__ = ["advice"]


def advice(summary: Mapping[str, Any]) -> list[tuple[str, str, list[str]]]:
    """Per variant: its name, a one-line verdict and the sentences behind it."""
    out = []
    for comp in summary.get("comparisons") or []:
        lines: list[str] = []
        verdicts: list[str] = []
        for row in comp["criteria"]:
            freq = row.get("frequentist")
            if isinstance(freq, Mapping) and is_number(freq.get("mean_difference")):
                verdict, said = _criterion(str(row["criterion"]), freq, row.get("bayes"))
                verdicts.append(verdict)
                lines += said
            elif isinstance(freq, Mapping) and freq.get("power_warning"):
                lines.append(f"{row['criterion']}: no test: {freq['power_warning']}")
            if isinstance(row.get("pairwise"), Mapping):
                lines.append(_pairwise(str(row["criterion"]), row["pairwise"]))
        lines += _running_costs(summary, str(comp["variant"]), str(comp["baseline"]))
        if lines:
            out.append((str(comp["variant"]), _overall(str(comp["variant"]), verdicts), lines))
    return out


def _criterion(name: str, freq: Mapping[str, Any], bayes: Any) -> tuple[str, list[str]]:
    diff = float(freq["mean_difference"])
    moved = "rose" if diff > 0 else "fell" if diff < 0 else "did not move"
    base, var = freq.get("baseline_mean"), freq.get("variant_mean")
    text = f"{name} {moved}" + (f" by {num(abs(diff))}" if diff else "")
    if is_number(base) and is_number(var):
        text += f" ({num(base)} → {num(var)}"
        if is_number(base) and base:
            text += f", {signed(diff / abs(base) * 100, 2)}%" if diff else ""
        text += ")"
    text += f", {level(freq.get('ci_level'), '')} CI {interval(freq.get('ci'))}".replace(",  CI", ", CI")
    significant = bool(freq.get("significant"))
    text += f", {p_is(freq.get('p_value'))} ({'significant' if significant else 'not significant'}"
    text += f" after {str(freq.get('correction') or 'no').capitalize()} correction over {num(freq.get('family_size'))})"
    if isinstance(bayes, Mapping) and is_number(bayes.get("prob_variant_better")):
        text += f"; the posterior puts P(better) at {pct(bayes['prob_variant_better'])}"
    lines = [text + "."]
    lines += _caveats(freq, diff)
    if significant:
        verdict = ("better" if diff > 0 else "worse") + f" on {name}"
    else:
        verdict = _equivalent(name, freq) or f"no clear difference on {name}"
    tags = _tags(freq)
    if tags:
        verdict += f" (but {' and '.join(tags)})"
    return verdict, lines


def _tags(freq: Mapping[str, Any]) -> list[str]:
    """The caveats that can overturn a verdict, in a few words for its headline."""
    tags = []
    if (freq.get("itt") or {}).get("same_as_primary") is False and freq.get("itt_agrees") is False:
        tags.append("the intention-to-treat line disagrees")
    if freq.get("p_values_hold") is False:
        tags.append("it was stopped early")
    return tags


def _caveats(freq: Mapping[str, Any], diff: float) -> list[str]:
    lines = []
    rows, itt = freq.get("rows") or {}, freq.get("itt") or {}
    if itt.get("same_as_primary") is False and is_number(itt.get("mean_difference")):
        imputed = itt.get("imputed") or {}
        left = ", ".join(f"{num(v)} of the {arm}'s" for arm, v in imputed.items() if is_number(v) and v)
        flips = (itt["mean_difference"] > 0) != (diff > 0) and bool(itt["mean_difference"]) and bool(diff)
        how = (
            "reverses the sign"
            if flips
            else "gives the same verdict"
            if freq.get("itt_agrees")
            else "changes the verdict"
        )
        lines.append(
            f"Counting the rows left out ({left or 'some'}) as the worst score, {num(itt.get('worst_score'))}, the "
            f"difference is {signed(itt['mean_difference'])} ({p_is(freq.get('itt_p_value'))}): that {how}; "
            f"the estimate above rests on the {num(rows.get('used'))} rows both experiments scored."
        )
    if freq.get("p_values_hold") is False:
        lines.append(
            str(freq.get("stop_warning") or "An early stop means the fixed-n p-values do not hold").rstrip(".") + "."
        )
    mcnemar = freq.get("mcnemar") or {}
    if is_number(mcnemar.get("difference")) and is_number(mcnemar.get("p_adjusted")):
        lines.append(
            f"The pass rate went {pct(mcnemar.get('baseline_pass_rate'))} → {pct(mcnemar.get('variant_pass_rate'))} "
            f"(exact McNemar, adjusted {p_is(mcnemar['p_adjusted'])})."
        )
    if freq.get("power_warning") and not freq.get("significant"):
        lines.append(f"Power: {freq['power_warning']}.")
    return lines


def _equivalent(name: str, freq: Mapping[str, Any]) -> str | None:
    eq = freq.get("equivalence") or {}
    tost, worse = eq.get("tost") or {}, eq.get("no_worse") or {}
    if tost.get("equivalent"):
        return f"equivalent on {name} within ±{num(eq.get('margin'))} (TOST {p_is(tost.get('p_value'))})"
    if worse.get("holds"):
        return f"no worse on {name} by more than {num(eq.get('margin'))} (adjusted {p_is(worse.get('p_adjusted'))})"
    return None


def _pairwise(name: str, judge: Mapping[str, Any]) -> str:
    rate = judge.get("variant_win_rate")
    text = f"The judge on {name} preferred the variant in {pct(rate)} of decided pairs ({p_is(judge.get('p_value'))})"
    bias = judge.get("position_bias") or {}
    if bias.get("biased"):
        text += (
            f", but it picks the response shown first {pct(bias.get('first_win_rate'))} of the time: with the order "
            "drawn per row that bias is spread over both arms, yet its verdicts say more about position than quality"
        )
    return text + "."


def _overall(variant: str, verdicts: Sequence[str]) -> str:
    if not verdicts:
        return f"{variant}: no test could be made."
    return f"{variant}: " + "; ".join(verdicts) + "."


def _running_costs(summary: Mapping[str, Any], variant: str, baseline: str) -> list[str]:
    """What the variant costs per row and how long it takes, against the baseline: the price of the change."""
    exps = {e["name"]: e for e in summary.get("experiments") or []}
    v, b = exps.get(variant) or {}, exps.get(baseline) or {}
    lines = []
    vc, bc = (v.get("cost") or {}).get("mean_per_row"), (b.get("cost") or {}).get("mean_per_row")
    if is_number(vc) and is_number(bc):
        change = f" ({signed((vc - bc) / bc * 100, 2)}%)" if bc else ""
        cur = currency_of(summary)
        lines.append(f"Its calls cost {money(vc, cur)} a row against the baseline's {money(bc, cur)}{change}.")
    vl, bl = (v.get("latency") or {}).get("median"), (b.get("latency") or {}).get("median")
    if is_number(vl) and is_number(bl):
        lines.append(f"Median latency {duration(vl)} against the baseline's {duration(bl)}.")
    return lines
