"""The analytics summary as Markdown.

Every piece of run data (experiment names, errors, row ids) is untrusted: ``&``, ``<`` and ``>`` become
HTML entities, so a Markdown renderer that passes HTML through shows the text rather than running it,
and table cells have their pipes escaped and line breaks folded so one value cannot break a table.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from elspeth_reports._format import (
    comparison_table,
    count_of,
    headline,
    interval,
    money,
    num,
    pct,
    plain,
)
from elspeth_reports.breakdowns import epochs_markdown, groups_markdown

__all__ = ["md_text", "render_markdown"]


def md_text(value: Any) -> str:
    """Untrusted text made inert for Markdown: HTML-escaped, on one line, no pipes, code spans or links."""
    text = " ".join(plain(value).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for char in ("\\", "|", "`"):
        text = text.replace(char, "\\" + char)
    return text.replace("](", "]\\(")  # no link: run data must not turn into a link a reader might follow


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(md_text(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _run(summary: Mapping[str, Any]) -> list[str]:
    run, rows = summary["run"], summary["rows"]
    facts = [
        ("Run id", run["run_id"]),
        ("Orchestrator", run["orchestrator"]),
        ("Status", run["status"]),
        ("Started", run["started_at"] or None),
        ("Finished", run["finished_at"] or None),
        ("Duration (s)", run["duration_s"]),
        ("Input rows", rows["input_rows"]),
        ("Records", rows["records"]),
        ("Failures", rows["failures"]),
        ("Rows not run", rows["not_run"]),
    ]
    if run.get("security_level"):
        facts.append(("Security level", run["security_level"]))
    cost = summary["cost"]["run"]
    if cost:
        facts.append(("Total cost", money(cost["total"], cost.get("currency"))))
    return ["## Run", "", *_table(["Fact", "Value"], facts)]


def _experiments(summary: Mapping[str, Any]) -> list[str]:
    exps = summary["experiments"]
    if not exps:
        return []
    rows = []
    for e in exps:
        scores = (e.get("scores") or {}).get("overall") or {}
        ci = scores.get("ci")
        rows.append(
            [
                e["name"] + (" (baseline)" if e["baseline"] else ""),
                e["rows"],
                e["succeeded"],
                e["failed"],
                e["not_run"],
                num(scores.get("mean")),
                interval(ci) if ci else None,
                pct(scores.get("pass_rate")),
                money((e.get("cost") or {}).get("total")),
                num((e.get("latency") or {}).get("p95")),
                (e.get("early_stop") or {}).get("reason") if e.get("early_stop") else None,
            ]
        )
    headers = ["Experiment", "Rows", "OK", "Failed", "Not run", "Mean score", "CI", "Pass rate", "Cost", "p95 (s)"]
    return ["## Experiments", "", *_table([*headers, "Early stop"], rows)]


def _comparisons(summary: Mapping[str, Any]) -> list[str]:
    comps = summary.get("comparisons")
    if comps is None or not summary["experiments"]:  # no experiments, nothing that could be compared
        return []
    lines = ["## Comparisons with the baseline", ""]
    if not comps:
        return [*lines, "No variant was compared with a baseline in this run.", ""]
    for comp in comps:
        lines += [f"### {md_text(comp['variant'])} vs {md_text(comp['baseline'])}", ""]
        for row in comp["criteria"]:
            lines.append(f"- **{md_text(row['criterion'])}**: {md_text(headline(row))}")
        lines.append("")
        headers, rows = comparison_table(comp["criteria"])
        if rows:
            lines += _table(headers, rows)
            first = next((r.get("frequentist") for r in comp["criteria"] if r.get("frequentist")), None) or {}
            if first.get("ci_method"):
                lines += [f"Intervals: {md_text(first['ci_method'])}.", ""]
        warnings = [
            f"{row['criterion']}: {(row.get('frequentist') or {}).get('power_warning')}"
            for row in comp["criteria"]
            if (row.get("frequentist") or {}).get("power_warning")
        ]
        warnings += [w for row in comp["criteria"] for w in row.get("warnings", [])]
        warnings += [f"{plugin} failed: {error}" for plugin, error in comp["errors"].items()]
        if warnings:
            lines += ["Warnings:", "", *[f"- {md_text(w)}" for w in warnings], ""]
        for plugin, value in comp["other"].items():
            lines += [f"Other figures from {md_text(plugin)}: {md_text(json.dumps(value, default=str))}", ""]
    return lines


def _recommendations(summary: Mapping[str, Any]) -> list[str]:
    recs = summary["recommendations"]
    if not recs:
        return []
    lines = ["## Recommendations", ""]
    for name, rec in recs.items():
        lines.append(f"- **{md_text(name)}**: {md_text(rec.get('recommendation'))} ({md_text(rec.get('reason'))})")
        lines += [f"  - caveat: {md_text(c)}" for c in rec.get("caveats") or []]
    return [*lines, ""]


def _failures(summary: Mapping[str, Any]) -> list[str]:
    fails, retries = summary["failures"], summary["retries"]
    lines = ["## Failures and retries", ""]
    if not fails["count"]:
        lines += ["No row failed.", ""]
    else:
        by_stage = ", ".join(f"{k}: {v}" for k, v in fails["by_stage"].items())
        rows_word = "row" if fails["count"] == 1 else "rows"
        lines += [f"{fails['count']} failed {rows_word} ({md_text(by_stage)}).", ""]
        rows = [[f["row_id"], f["experiment"], f["stage"], f["attempts"], f["error"]] for f in fails["examples"]]
        if rows:
            shown = f"First {len(rows)} of {fails['count']}" if len(rows) < fails["count"] else "All"
            lines += [f"{shown}:", "", *_table(["Row", "Experiment", "Stage", "Attempts", "Error"], rows)]
    lines += [
        f"Retries: {count_of(retries['failed_row_retries'], 'extra attempt')} on "
        f"{count_of(retries['failed_rows_retried'], 'failed row')}; "
        f"{count_of(retries['record_retries'], 'retry', 'retries')} on "
        f"{count_of(retries['records_retried'], 'finished row')}.",
        "",
    ]
    early = summary["early_stop"]
    if early:
        lines += ["Early stop:", ""]
        lines += [f"- **{md_text(k)}**: {md_text((v or {}).get('reason', v))}" for k, v in early.items()]
        lines.append("")
    return lines


def _cost(summary: Mapping[str, Any]) -> list[str]:
    run, per = summary["cost"]["run"], summary["cost"]["experiments"]
    if not run and not per:
        return []
    lines = ["## Cost", ""]
    if run:
        lines += [f"Run total: {md_text(money(run['total'], run.get('currency')))}", ""]
    if per:
        rows = [
            [n, money(c["total"]), money(c["mean_per_row"]), num(c["tokens"]), c["rows_with_cost"]]
            for n, c in per.items()
        ]
        lines += _table(["Experiment", "Cost", "Mean per row", "Tokens", "Rows with cost"], rows)
    return lines


def _plain_aggregates(summary: Mapping[str, Any]) -> list[str]:
    aggs = summary.get("aggregates")
    if not aggs:
        return []
    from elspeth import flatten

    rows = [[k, v] for k, v in flatten(aggs).items()]
    return ["## Aggregates", "", *_table(["Metric", "Value"], rows)]


def _gates(summary: Mapping[str, Any]) -> list[str]:
    """The quality gates first of all: a pull request's reviewer reads this section to see why CI failed."""
    gates = summary.get("gates") or []
    if not gates:
        return []
    failed = sum(1 for g in gates if not g["passed"])
    verdict = f"{failed} of {len(gates)} gates failed" if failed else f"all {len(gates)} gates passed"
    rows = [[g["name"], "passed" if g["passed"] else "**FAILED**", g["detail"]] for g in gates]
    return ["## Gates", "", f"{verdict[0].upper()}{verdict[1:]}.", "", *_table(["Gate", "Result", "Figures"], rows)]


def render_markdown(summary: Mapping[str, Any]) -> str:
    """The whole report as Markdown text."""
    run = summary["run"]
    lines = [f"# Analytics report: {md_text(run['name'])}", ""]
    lines += _run(summary)
    lines += _gates(summary)
    lines += _recommendations(summary)
    lines += _comparisons(summary)
    lines += epochs_markdown(summary.get("epochs"), _table)
    lines += groups_markdown(summary.get("groups"), _table, md_text)
    lines += _experiments(summary)
    lines += _cost(summary)
    lines += _failures(summary)
    lines += _plain_aggregates(summary)
    generator = summary["report"]
    lines += [f"_Written by {md_text(generator['generator'])} at {md_text(generator['written_at'])}._", ""]
    return "\n".join(lines)
