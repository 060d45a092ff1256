"""HTML sections shared shape with the Markdown: the gates, the advice per variant and the judges' cost.

Kept apart from ``page`` (the charts and tables) so each module stays one screenful of concerns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from elspeth_reports._format import judge_costs, plain
from elspeth_reports.advice import advice
from elspeth_reports.svg import esc

__all__ = ["advice_html", "gates_html", "judges_html", "table_html"]

_NUM = ' class="n"'


def table_html(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[int] = (), cls: str = ""
) -> str:
    """A table whose every cell is escaped run data; ``numeric`` columns right-aligned."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td{_NUM if i in numeric else ''}>{esc(plain(c))}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def gates_html(summary: Mapping[str, Any]) -> str:
    """The quality gates, failed ones marked: why CI passed or failed, first thing after the run."""
    gates = summary.get("gates") or []
    if not gates:
        return ""
    failed = sum(1 for g in gates if not g["passed"])
    verdict = f"{failed} of {len(gates)} gates failed." if failed else f"All {len(gates)} gates passed."
    rows = "".join(
        f'<tr class="gate {"passed" if g["passed"] else "failed"}"><td>{esc(g["name"])}</td>'
        f"<td>{'passed' if g['passed'] else '<b>FAILED</b>'}</td><td>{esc(g['detail'])}</td></tr>"
        for g in gates
    )
    return (
        f'<h2>Gates</h2><div class="{"bad" if failed else "rec"}">{esc(verdict)}</div>'
        f'<table class="gates"><thead><tr><th>Gate</th><th>Result</th><th>Figures</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def advice_html(summary: Mapping[str, Any]) -> str:
    """Each variant's verdict and the sentences behind it (see :mod:`elspeth_reports.advice`)."""
    said = advice(summary)
    if not said:
        return ""
    parts = ["<h2>What the figures say</h2>"]
    for variant, verdict, sentences in said:
        items = "".join(f"<li>{esc(s)}</li>" for s in sentences)
        parts.append(
            f'<div class="rec advice" data-variant="{esc(variant)}"><b>{esc(verdict)}</b><ul>{items}</ul></div>'
        )
    return "".join(parts)


def judges_html(summary: Mapping[str, Any]) -> str:
    """What the judges' calls cost, apart from the experiments' own calls."""
    rows = judge_costs(summary)
    if not rows:
        return ""
    return "<h3>Judges' calls (apart from the experiments' own)</h3>" + table_html(
        ["Experiment", "Judge", "Calls", "Cached", "Tokens", "Cost"], rows, numeric=(2, 3, 4, 5), cls="judges"
    )
