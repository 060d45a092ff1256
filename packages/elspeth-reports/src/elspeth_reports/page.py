"""The visual report as one HTML page: styles and SVG charts inline, no script, nothing fetched.

A Content-Security-Policy in the page forbids scripts and every outside resource, so even a browser
that met some markup this module failed to escape would neither run it nor reach the network.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from elspeth import Record, RunResult, flatten
from elspeth_reports._format import (
    COMPARISON_NUMERIC,
    ci_label,
    comparison_table,
    count_of,
    headline,
    interval,
    money,
    num,
    p_value,
    pct,
    plain,
)
from elspeth_reports.breakdowns import epochs_html, groups_html
from elspeth_reports.summary import is_number
from elspeth_reports.svg import ForestRow, bar_chart, distribution_chart, esc, forest_plot

__all__ = ["ChartFields", "render_html"]

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1d1d1f;
margin:0;background:#f6f7f9}
main{max-width:960px;margin:0 auto;padding:24px 28px 48px;background:#fff}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 8px;border-bottom:2px solid #e6e8eb;
padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
.sub{color:#555;margin:0 0 16px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
.card{border:1px solid #e1e4e8;border-radius:8px;padding:8px 12px;min-width:120px}
.card b{display:block;font-size:18px}.card span{color:#555;font-size:12px}
table{border-collapse:collapse;width:100%;margin:8px 0 12px;font-size:13px}
th,td{border:1px solid #e1e4e8;padding:4px 7px;text-align:left;vertical-align:top}
th{background:#f3f4f6}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.chart{max-width:100%;height:auto;display:block;margin:6px 0}
.warn{background:#fff6e0;border-left:4px solid #E69F00;padding:6px 10px;margin:6px 0}
.bad{background:#fdecea;border-left:4px solid #D55E00;padding:6px 10px;margin:6px 0}
.rec{background:#eaf4fb;border-left:4px solid #0072B2;padding:6px 10px;margin:6px 0}
.muted{color:#666}code{font-size:12px;word-break:break-all}
footer{margin-top:32px;color:#777;font-size:12px}
"""


@dataclass(frozen=True)
class ChartFields:
    """Which record metrics the charts read."""

    scores: str = "scores"
    latency: str = "latency_s"
    cost: str = "cost"


def _group(record: Record, fallback: str) -> str:
    return record.group if record.group is not None else fallback


def _series(records: Sequence[Record], order: Sequence[str], fallback: str, key: str) -> list[tuple[str, list[float]]]:
    out: dict[str, list[float]] = {name: [] for name in order}
    for r in records:
        value = r.metrics.get(key)
        if is_number(value):
            out.setdefault(_group(r, fallback), []).append(float(value))
    return [(name, values) for name, values in out.items() if values]


def _scores(
    records: Sequence[Record], order: Sequence[str], fallback: str, key: str
) -> dict[str, dict[str, list[float]]]:
    """Criterion -> group -> scores."""
    out: dict[str, dict[str, list[float]]] = {}
    for r in records:
        value = r.metrics.get(key)
        cells = value.items() if isinstance(value, Mapping) else [(key, value)]
        for criterion, score in cells:
            if is_number(score):
                per = out.setdefault(str(criterion), {name: [] for name in order})
                per.setdefault(_group(r, fallback), []).append(float(score))
    return out


_NUM = ' class="n"'


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[int] = (), cls: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td{_NUM if i in numeric else ''}>{esc(plain(c))}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _card(value: str, label: str) -> str:
    return f'<div class="card"><b>{esc(value)}</b><span>{esc(label)}</span></div>'


def _header(summary: Mapping[str, Any], title: str) -> str:
    run, rows, cost = summary["run"], summary["rows"], summary["cost"]["run"]
    cards = [
        _card(run["status"], "status"),
        _card(num(rows["input_rows"]), "input rows"),
        _card(num(rows["records"]), "records"),
        _card(num(rows["failures"]), "failures"),
        _card(f"{num(run['duration_s'])} s", "duration"),
    ]
    if cost:
        cards.append(_card(money(cost["total"], cost.get("currency")), "total cost"))
    if run.get("security_level"):
        cards.append(_card(str(run["security_level"]), "security level"))
    sub = f"Run {run['run_id']} · {run['orchestrator']} · {run['started_at'] or ''}"
    return f'<h1>{esc(title)}</h1><p class="sub">{esc(sub)}</p><div class="cards">{"".join(cards)}</div>'


def _recommendations(summary: Mapping[str, Any]) -> str:
    recs = summary["recommendations"]
    if not recs:
        return ""
    parts = ["<h2>Recommendation</h2>"]
    for name, rec in recs.items():
        caveats = "".join(f"<li>{esc(c)}</li>" for c in rec.get("caveats") or [])
        parts.append(
            f'<div class="rec"><b>{esc(name)}</b>: {esc(rec.get("recommendation"))} '
            f'<span class="muted">({esc(rec.get("reason"))})</span>{f"<ul>{caveats}</ul>" if caveats else ""}</div>'
        )
    return "".join(parts)


def _forest_rows(comparisons: Sequence[Mapping[str, Any]]) -> list[ForestRow]:
    rows = []
    for comp in comparisons:
        for row in comp["criteria"]:
            f, b = row.get("frequentist") or {}, row.get("bayes") or {}
            est, ci, note = f.get("mean_difference"), f.get("ci"), ""
            if is_number(est) and ci:
                note = f"p adj {p_value(f.get('p_adjusted'))}" + (" ✓" if f.get("significant") else "")
            elif is_number(b.get("mean_difference")) and b.get("credible_interval"):
                est, ci, note = b["mean_difference"], b["credible_interval"], "credible interval"
            else:
                continue
            if is_number(b.get("prob_variant_better")):
                note += f" · P(better) {pct(b['prob_variant_better'], 0)}"
            design = str(f.get("design") or b.get("design") or "")
            if design == "unpaired":  # a difference of two means, not a mean of per-row differences
                note = f"unpaired · {note}"
            label = f"{comp['variant']} · {row['criterion']}"
            rows.append(
                ForestRow(
                    label,
                    float(est),
                    float(ci[0]),
                    float(ci[1]),
                    note.strip(" ·"),
                    bool(f.get("significant")),
                    variant=comp["variant"],
                    criterion=row["criterion"],
                    design=design,
                )
            )
    return rows


_UNPAIRED_NOTE = (
    " Lines marked unpaired had no matching row ids: they show the difference of the two means with its "
    "Welch interval, not a mean of paired differences."
)


def _forest_title(rows: Sequence[ForestRow]) -> str:
    """Paired only when every line is: an unpaired (Welch) line is a difference of means, not of pairs."""
    designs = {row.design for row in rows}
    if designs == {"paired"}:
        return "Paired differences from the baseline"
    if designs == {"unpaired"}:
        return "Differences of means from the baseline (unpaired)"
    if designs == {"paired", "unpaired"}:
        return "Differences from the baseline (paired and unpaired)"
    return "Differences from the baseline"


def _comparisons(summary: Mapping[str, Any]) -> str:
    comps = summary.get("comparisons")
    if comps is None or not summary["experiments"]:  # no experiments, nothing that could be compared
        return ""
    parts = ["<h2>Comparisons with the baseline</h2>"]
    if not comps:
        return parts[0] + '<p class="muted">No variant was compared with a baseline in this run.</p>'
    forest = _forest_rows(comps)
    if forest:
        first: Mapping[str, Any] = next(
            (r["frequentist"] for c in comps for r in c["criteria"] if r.get("frequentist")), {}
        )
        parts.append(
            f'<figure data-chart="forest">{forest_plot(forest, _forest_title(forest))}'
            f'<figcaption class="muted">Mean difference (variant minus baseline) per variant and criterion with its '
            f"{esc(ci_label(first.get('ci_level')))}; the dashed line is no difference; orange lines are significant "
            f"after {esc(str(first.get('correction') or 'no').capitalize())} correction."
            f"{_UNPAIRED_NOTE if any(r.design == 'unpaired' for r in forest) else ''}</figcaption></figure>"
        )
    for comp in comps:
        parts.append(f"<h3>{esc(comp['variant'])} vs {esc(comp['baseline'])}</h3><ul>")
        parts += [f"<li><b>{esc(r['criterion'])}</b>: {esc(headline(r))}</li>" for r in comp["criteria"]]
        parts.append("</ul>")
        headers, rows = comparison_table(comp["criteria"])
        if rows:
            parts.append(_table(headers, rows, numeric=COMPARISON_NUMERIC))
        for r in comp["criteria"]:
            warning = (r.get("frequentist") or {}).get("power_warning")
            if warning:
                parts.append(f'<div class="warn">Power — {esc(r["criterion"])}: {esc(warning)}</div>')
            parts += [f'<div class="warn">{esc(w)}</div>' for w in r.get("warnings", [])]
        parts += [f'<div class="bad">{esc(p)} failed: {esc(e)}</div>' for p, e in comp["errors"].items()]
    return "".join(parts)


def _distributions(result: RunResult, order: Sequence[str], fallback: str, fields: ChartFields) -> str:
    per = _scores(result.records, order, fallback, fields.scores)
    parts = ["<h2>Score distributions</h2>"]
    if not per:
        return parts[0] + f'<p class="muted">No record carries scores in the metric {esc(fields.scores)!s}.</p>'
    for criterion, groups in per.items():
        chart = distribution_chart(list(groups.items()), f"Scores: {criterion}", "score")
        parts.append(
            f'<figure data-chart="scores" data-criterion="{esc(criterion)}"><h3>{esc(criterion)}</h3>{chart}'
            '<figcaption class="muted">Box: quartiles and median; whiskers: lowest to highest; dots: rows; '
            "◆: mean.</figcaption></figure>"
        )
    return "".join(parts)


def _cost_latency(
    summary: Mapping[str, Any], result: RunResult, order: Sequence[str], fallback: str, fields: ChartFields
) -> str:
    parts = ["<h2>Cost and latency</h2>"]
    per_cost = summary["cost"]["experiments"]
    costs = [(n, float(c["total"])) for n, c in per_cost.items() if is_number(c.get("total"))]
    if not costs:
        costs = [(n, math.fsum(v)) for n, v in _series(result.records, order, fallback, fields.cost)]
    run_cost = summary["cost"]["run"] or {}
    currency = run_cost.get("currency") or ""
    if costs:
        chart = bar_chart(costs, "Cost per experiment", f"cost {currency}".strip(), lambda v: money(v, currency))
        parts.append(f'<figure data-chart="cost"><h3>Cost per experiment</h3>{chart}</figure>')
    else:
        parts.append('<p class="muted">No cost recorded (configure a cost tracker to see one).</p>')
    latency = _series(result.records, order, fallback, fields.latency)
    if latency:
        chart = distribution_chart(latency, "Latency per row", "seconds")
        parts.append(
            f'<figure data-chart="latency"><h3>Latency per row</h3>{chart}'
            f'<figcaption class="muted">Per row, from the metric {esc(fields.latency)}; box: quartiles; '
            "◆: mean.</figcaption></figure>"
        )
    else:
        parts.append(f'<p class="muted">No record carries a latency in the metric {esc(fields.latency)}.</p>')
    return "".join(parts)


def _experiments(summary: Mapping[str, Any]) -> str:
    exps = summary["experiments"]
    if not exps:
        return ""
    rows = []
    for e in exps:
        scores = (e.get("scores") or {}).get("overall") or {}
        lat = e.get("latency") or {}
        rows.append(
            [
                e["name"] + (" (baseline)" if e["baseline"] else ""),
                e["rows"],
                e["succeeded"],
                e["failed"],
                e["not_run"],
                num(scores.get("mean")),
                interval(scores.get("ci")),
                pct(scores.get("pass_rate")),
                money((e.get("cost") or {}).get("total")),
                num(lat.get("median")),
                num(lat.get("p95")),
                (e.get("early_stop") or {}).get("reason") if e.get("early_stop") else None,
            ]
        )
    headers = ["Experiment", "Rows", "OK", "Failed", "Not run", "Mean score", "CI", "Pass rate", "Cost"]
    headers += ["Median latency (s)", "p95 latency (s)", "Early stop"]
    return "<h2>Experiments</h2>" + _table(headers, rows, numeric=(1, 2, 3, 4, 5, 7, 8, 9, 10))


def _failures(summary: Mapping[str, Any]) -> str:
    fails, retries = summary["failures"], summary["retries"]
    parts = ["<h2>Failures and retries</h2>"]
    if not fails["count"]:
        parts.append('<p class="muted">No row failed.</p>')
    else:
        stages = ", ".join(f"{k}: {v}" for k, v in fails["by_stage"].items())
        rows_word = "row" if fails["count"] == 1 else "rows"
        parts.append(f"<p>{esc(fails['count'])} failed {rows_word} ({esc(stages)}).</p>")
        rows = [[f["row_id"], f["experiment"], f["stage"], f["attempts"], f["error"]] for f in fails["examples"]]
        if rows:
            parts.append(_table(["Row", "Experiment", "Stage", "Attempts", "Error"], rows, numeric=(3,)))
            if len(rows) < fails["count"]:
                parts.append(f'<p class="muted">First {len(rows)} of {fails["count"]} shown.</p>')
    parts.append(
        f"<p>Retries: {esc(count_of(retries['failed_row_retries'], 'extra attempt'))} on "
        f"{esc(count_of(retries['failed_rows_retried'], 'failed row'))}; "
        f"{esc(count_of(retries['record_retries'], 'retry', 'retries'))} "
        f"on {esc(count_of(retries['records_retried'], 'finished row'))}.</p>"
    )
    for name, stop in summary["early_stop"].items():
        reason = stop.get("reason") if isinstance(stop, Mapping) else stop
        parts.append(f'<div class="warn">Stopped early — {esc(name)}: {esc(reason)}</div>')
    return "".join(parts)


def _plain_aggregates(summary: Mapping[str, Any]) -> str:
    aggs = summary.get("aggregates")
    if not aggs:
        return ""
    return "<h2>Aggregates</h2>" + _table(["Metric", "Value"], list(flatten(aggs).items()), numeric=(1,))


def render_html(summary: Mapping[str, Any], result: RunResult, title: str | None, fields: ChartFields) -> str:
    """The whole page."""
    run = summary["run"]
    heading = title or f"Experiment report: {run['name']}"
    order = [e["name"] for e in summary["experiments"]]
    fallback = run["name"] or "all rows"
    body = [
        _header(summary, heading),
        _recommendations(summary),
        _comparisons(summary),
        epochs_html(summary.get("epochs"), _table, esc),
        groups_html(summary.get("groups"), _table, esc),
        _distributions(result, order, fallback, fields),
        _cost_latency(summary, result, order, fallback, fields),
        _experiments(summary),
        _failures(summary),
        _plain_aggregates(summary),
        f"<footer>Written by {esc(summary['report']['generator'])} at {esc(summary['report']['written_at'])}. "
        "Self-contained: opens offline, runs no script.</footer>",
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(_CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{esc(heading)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )
