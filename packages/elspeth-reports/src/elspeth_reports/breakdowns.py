"""The report's repeated-samples and breakdown parts: ``epochs: K`` and ``group_by: COLUMN`` of an experiment run.

:func:`epochs_part` and :func:`groups_part` read the orchestrator's aggregates into the summary;
:func:`epochs_markdown`, :func:`groups_markdown`, :func:`epochs_html` and :func:`groups_html` render
them. Each says what the figures are (the variance within and between rows; the clustered standard
errors; the family each category's p-values are adjusted in; the categories too small to compare), so
a reader of the report alone can tell.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from elspeth_reports._format import interval, num, p_value, pct, signed

__all__ = ["epochs_html", "epochs_markdown", "epochs_part", "groups_html", "groups_markdown", "groups_part"]

MdTable = Callable[[Sequence[str], Sequence[Sequence[Any]]], list[str]]
HtmlTable = Callable[[Sequence[str], Sequence[Sequence[Any]]], str]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _significance_cells(plugins: Any) -> list[tuple[str, Mapping[str, Any]]]:
    cells = _mapping(_mapping(_mapping(plugins).get("score_significance")).get("criteria"))
    return [(str(c), _mapping(cell)) for c, cell in cells.items()]


def epochs_part(aggs: Mapping[str, Any]) -> dict[str, Any] | None:
    """Each experiment's epochs, reducer and variance split, and each clustered comparison; None without epochs."""
    experiments = []
    for name, exp in _mapping(aggs.get("experiments")).items():
        summary = _mapping(_mapping(_mapping(exp).get("aggregates")).get("epochs"))
        if summary:
            experiments.append({"name": str(name), **summary})
    clustered = []
    for variant, plugins in _mapping(aggs.get("comparisons")).items():
        for criterion, cell in _significance_cells(plugins):
            line = _mapping(cell.get("clustered"))
            if line:
                clustered.append({"variant": str(variant), "criterion": criterion, **line})
    if not experiments and not clustered:
        return None
    return {"experiments": experiments, "clustered": clustered}


def _group_comparisons(comparisons: Any) -> list[dict[str, Any]]:
    out = []
    for variant, plugins in _mapping(comparisons).items():
        for criterion, cell in _significance_cells(plugins):
            out.append(
                {
                    "variant": str(variant),
                    "criterion": criterion,
                    "n": cell.get("n"),
                    "mean_difference": cell.get("mean_difference"),
                    "ci": cell.get("ci"),
                    "p_adjusted": cell.get("p_adjusted"),
                    "family_size": cell.get("family_size"),
                    "significant": cell.get("significant"),
                    "warning": cell.get("warning"),
                }
            )
    return out


def groups_part(aggs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``group_by`` breakdown: per category its rows, each experiment's mean and pass rate, and the comparisons."""
    groups = _mapping(aggs.get("groups"))
    if not groups:
        return None
    categories = []
    for category, entry in _mapping(groups.get("categories")).items():
        entry = _mapping(entry)
        experiments = []
        for name, exp in _mapping(entry.get("experiments")).items():
            stats = _mapping(_mapping(_mapping(_mapping(exp).get("aggregates")).get("score_stats")).get("overall"))
            experiments.append(
                {
                    "name": str(name),
                    "succeeded": _mapping(exp).get("succeeded"),
                    "failed": _mapping(exp).get("failed"),
                    "mean": stats.get("mean"),
                    "pass_rate": stats.get("pass_rate"),
                }
            )
        compared = entry.get("comparisons")
        categories.append(
            {
                "category": str(category),
                "rows": entry.get("rows"),
                "experiments": experiments,
                "comparisons": None if compared is None else _group_comparisons(compared),
                "note": entry.get("note"),
            }
        )
    return {
        "column": groups.get("column"),
        "family": groups.get("family"),
        "min_rows": groups.get("min_rows"),
        "too_few": dict(_mapping(groups.get("too_few"))),
        "categories": categories,
    }


def _variance_rows(part: Mapping[str, Any]) -> list[list[Any]]:
    rows = []
    for exp in part["experiments"]:
        reducer = exp.get("reducer")
        if reducer in ("at_least_k", "pass_at_k", "pass_hat_k"):
            reducer = f"{reducer} (k = {exp.get('k')})"
        for criterion, c in _mapping(exp.get("criteria")).items():
            rows.append(
                [
                    exp["name"],
                    criterion,
                    num(exp.get("epochs")),
                    reducer,
                    num(c.get("rows")),
                    num(c.get("within_row_variance")),
                    num(c.get("between_row_variance")),
                    num(c.get("icc")),
                ]
            )
    return rows


VARIANCE_HEADERS = ["Experiment", "Criterion", "Epochs", "Reducer", "Rows", "Within-row var", "Between-row var", "ICC"]
CLUSTERED_HEADERS = ["Variant", "Criterion", "Clustered by", "Clusters", "Difference", "SE", "CI", "p (Holm)"]
EPOCHS_NOTE = (
    "Each row was asked several times (epochs). Within-row variance is the sampling noise of one row's "
    "answers; between-row variance is the rows' own spread (one-way ANOVA estimate); ICC is the share "
    "of the variance that is the rows'. The clustered comparisons regress every epoch's score on the arm "
    "with cluster-robust (CR1) standard errors, t with clusters - 1 degrees of freedom."
)


def _clustered_rows(part: Mapping[str, Any]) -> list[list[Any]]:
    return [
        [
            c["variant"],
            c["criterion"],
            c.get("cluster_by"),
            num(c.get("clusters")),
            signed(c.get("difference")),
            num(c.get("se")),
            interval(c.get("ci")),
            p_value(c.get("p_adjusted")) + (" (significant)" if c.get("significant") else ""),
        ]
        for c in part["clustered"]
    ]


def _category_rows(part: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    names = [e["name"] for cat in part["categories"] for e in cat["experiments"]]
    order = list(dict.fromkeys(names))
    rows = []
    for cat in part["categories"]:
        by_name = {e["name"]: e for e in cat["experiments"]}
        cells = []
        for name in order:
            exp = by_name.get(name, {})
            rate = f", pass {pct(exp['pass_rate'])}" if exp.get("pass_rate") is not None else ""
            cells.append(f"{num(exp.get('mean'))}{rate}")
        rows.append([cat["category"], num(cat["rows"]), *cells])
    return [str(part["column"]), "Rows", *(f"{n} mean" for n in order)], rows


def _verdict_rows(part: Mapping[str, Any]) -> list[list[Any]]:
    rows = []
    for cat in part["categories"]:
        if cat["comparisons"] is None:
            rows.append([cat["category"], "", "", "", "", cat.get("note") or "not compared"])
            continue
        for c in cat["comparisons"]:
            if c.get("p_adjusted") is None:
                rows.append([cat["category"], c["variant"], c["criterion"], "", "", c.get("warning") or "not tested"])
                continue
            verdict = "significant" if c.get("significant") else "not significant"
            p = f"{p_value(c['p_adjusted'])} (family of {num(c.get('family_size'))}), {verdict}"
            rows.append(
                [cat["category"], c["variant"], c["criterion"], signed(c["mean_difference"]), interval(c["ci"]), p]
            )
    return rows


VERDICT_HEADERS = ["Category", "Variant", "Criterion", "Difference", "CI", "p (Holm)"]


def _too_few_sentence(part: Mapping[str, Any]) -> str:
    few = part["too_few"]
    if not few:
        return f"Every category has at least {part['min_rows']} rows and is compared."
    listed = ", ".join(f"{k} ({v} rows)" for k, v in few.items())
    return f"Not compared, fewer than {part['min_rows']} rows: {listed}."


def epochs_markdown(part: Mapping[str, Any] | None, table: MdTable) -> list[str]:
    """The "Repeated samples" section of the Markdown report; nothing without epochs."""
    if not part:
        return []
    lines = ["## Repeated samples (epochs)", "", EPOCHS_NOTE, ""]
    if part["experiments"]:
        lines += table(VARIANCE_HEADERS, _variance_rows(part))
    if part["clustered"]:
        lines += table(CLUSTERED_HEADERS, _clustered_rows(part))
    return lines


def groups_markdown(part: Mapping[str, Any] | None, table: MdTable, text: Callable[[Any], str]) -> list[str]:
    """The "By COLUMN" section of the Markdown report; nothing without ``group_by``."""
    if not part:
        return []
    headers, rows = _category_rows(part)
    lines = [f"## By {text(part['column'])}", "", f"Multiple testing: {text(part['family'])}.", ""]
    lines += [text(_too_few_sentence(part)), ""]
    lines += table(headers, rows)
    lines += table(VERDICT_HEADERS, _verdict_rows(part))
    return lines


def epochs_html(part: Mapping[str, Any] | None, table: HtmlTable, esc: Callable[[str], str]) -> str:
    """The "Repeated samples" section of the HTML report; empty without epochs."""
    if not part:
        return ""
    html = [f"<h2>Repeated samples (epochs)</h2><p>{esc(EPOCHS_NOTE)}</p>"]
    if part["experiments"]:
        html.append(table(VARIANCE_HEADERS, _variance_rows(part)))
    if part["clustered"]:
        html.append(table(CLUSTERED_HEADERS, _clustered_rows(part)))
    return "".join(html)


def groups_html(part: Mapping[str, Any] | None, table: HtmlTable, esc: Callable[[str], str]) -> str:
    """The "By COLUMN" section of the HTML report; empty without ``group_by``."""
    if not part:
        return ""
    headers, rows = _category_rows(part)
    return (
        f"<h2>By {esc(str(part['column']))}</h2>"
        f"<p>Multiple testing: {esc(str(part['family']))}.</p><p>{esc(_too_few_sentence(part))}</p>"
        + table(headers, rows)
        + table(VERDICT_HEADERS, _verdict_rows(part))
    )
