"""Charts as inline SVG, drawn in Python: distributions, a forest plot and bars.

Every label is run data and therefore untrusted: all text goes through :func:`esc` and every attribute
value is double-quoted and escaped, so a name like ``<script>`` is drawn as text and never parsed as markup.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["PALETTE", "ForestRow", "bar_chart", "distribution_chart", "esc", "forest_plot", "quantile"]

# Okabe-Ito: tells colours apart for the common kinds of colour blindness.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
WIDTH = 880
LANE = 34
TOP = 30
BOTTOM = 44
RIGHT = 24


def esc(value: object) -> str:
    """Text or an attribute value, escaped for HTML and SVG (quotes included)."""
    return html.escape(str(value), quote=True)


def _short(label: str, limit: int = 34) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _label_width(labels: Sequence[str]) -> int:
    longest = max((len(_short(s)) for s in labels), default=4)
    return min(260, max(90, 7 * longest + 16))


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) with linear interpolation, as numpy's default."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _nice_step(span: float, ticks: int = 8) -> float:
    raw = span / ticks if span > 0 else 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


@dataclass(frozen=True)
class _Scale:
    low: float
    high: float
    left: float
    right: float
    step: float

    @classmethod
    def fit(
        cls,
        values: Sequence[float],
        left: float,
        right: float,
        *,
        include_zero: bool = False,
        span: tuple[float, float] | None = None,
    ) -> _Scale:
        lo, hi = min(values), max(values)
        if span is not None:  # the quantity's own range (0-1 for a score or rate), widened only by data outside it
            low, high = min(lo, span[0]), max(hi, span[1])
            step = _nice_step(high - low)
            return cls(math.floor(low / step) * step, math.ceil(high / step) * step, left, right, step)
        if include_zero:
            lo, hi = min(lo, 0.0), max(hi, 0.0)
        if hi == lo:
            lo, hi = (lo - abs(lo) * 0.5, hi + abs(hi) * 0.5) if lo else (-1.0, 1.0)
        pad = (hi - lo) * 0.04
        # a bar chart starts at zero exactly; everything else gets a little room at both ends
        lo = lo if include_zero and lo == 0 else lo - pad
        hi = hi if include_zero and hi == 0 else hi + pad
        step = _nice_step(hi - lo)
        return cls(math.floor(lo / step) * step, math.ceil(hi / step) * step, left, right, step)

    def __call__(self, value: float) -> float:
        return self.left + (value - self.low) / (self.high - self.low) * (self.right - self.left)

    def ticks(self) -> list[float]:
        count = round((self.high - self.low) / self.step) + 1
        return [round(self.low + i * self.step, 12) for i in range(count)]


def _tick_text(value: float) -> str:
    return f"{value:.4g}".replace("-", "\u2212")  # a real minus sign


def _axis(scale: _Scale, top: float, bottom: float, unit: str) -> list[str]:
    parts = ['<g class="axis" font-size="11" fill="#555">']
    for tick in scale.ticks():
        x = scale(tick)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom}" stroke="#e3e3e3"/>')
        parts.append(f'<text x="{x:.1f}" y="{bottom + 14}" text-anchor="middle">{esc(_tick_text(tick))}</text>')
    if unit:
        middle = (scale.left + scale.right) / 2
        parts.append(f'<text x="{middle:.1f}" y="{bottom + 32}" text-anchor="middle" fill="#333">{esc(unit)}</text>')
    parts.append("</g>")
    return parts


def _svg(kind: str, height: float, title: str, body: list[str]) -> str:
    return (
        f'<svg class="chart {esc(kind)}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height:.0f}" '
        f'width="{WIDTH}" height="{height:.0f}" role="img" aria-label="{esc(title)}">'
        f"<title>{esc(title)}</title>{''.join(body)}</svg>"
    )


def _jitter(i: int) -> float:
    return ((i * 2654435761) % 1000) / 1000 - 0.5


def distribution_chart(
    groups: Sequence[tuple[str, Sequence[float]]],
    title: str,
    unit: str = "",
    max_points: int = 1000,
    *,
    span: tuple[float, float] | None = None,
    include_zero: bool = False,
) -> str:
    """One lane per group: a box (quartiles, median), whiskers to min and max, the values as dots, the mean as ◆.

    ``span`` fixes the axis to a quantity's own range (a score of 0 to 1), ``include_zero`` starts it at 0
    (latencies): an axis that starts where the data happen to start exaggerates small differences.
    """
    groups = [(name, list(values)) for name, values in groups if values]
    labels = [name for name, _ in groups]
    left = _label_width(labels)
    height = TOP + LANE * len(groups) + BOTTOM
    every = [v for _, vs in groups for v in vs]
    scale = _Scale.fit(every, left, WIDTH - RIGHT, span=span, include_zero=include_zero)
    body = _axis(scale, TOP - 8, TOP + LANE * len(groups), unit)
    for lane, (name, values) in enumerate(groups):
        mid = TOP + LANE * lane + LANE / 2
        colour = PALETTE[lane % len(PALETTE)]
        q1, med, q3 = quantile(values, 0.25), quantile(values, 0.5), quantile(values, 0.75)
        mean = math.fsum(values) / len(values)
        summary = f"{name}: n={len(values)}, median {med:.4g}, quartiles {q1:.4g} to {q3:.4g}, mean {mean:.4g}"
        part = [f'<g class="lane" data-group="{esc(name)}"><title>{esc(summary)}</title>']
        part.append(
            f'<text x="{left - 8}" y="{mid + 4:.1f}" text-anchor="end" font-size="12">{esc(_short(name))}</text>'
        )
        part.append(
            f'<line x1="{scale(min(values)):.1f}" x2="{scale(max(values)):.1f}" y1="{mid:.1f}" y2="{mid:.1f}" '
            f'stroke="{colour}" stroke-width="1.5"/>'
        )
        box_w = max(scale(q3) - scale(q1), 1.5)
        part.append(
            f'<rect class="box" x="{scale(q1):.1f}" y="{mid - 9:.1f}" width="{box_w:.1f}" height="18" '
            f'fill="{colour}" fill-opacity="0.18" stroke="{colour}" stroke-width="1.5"/>'
        )
        part.append(
            f'<line x1="{scale(med):.1f}" x2="{scale(med):.1f}" y1="{mid - 9:.1f}" y2="{mid + 9:.1f}" '
            f'stroke="{colour}" stroke-width="2.5"/>'
        )
        step = max(1, math.ceil(len(values) / max_points))
        for i, value in enumerate(values[::step]):
            y = mid + _jitter(i) * 14
            part.append(f'<circle cx="{scale(value):.1f}" cy="{y:.1f}" r="2.3" fill="{colour}" fill-opacity="0.55"/>')
        x = scale(mean)
        part.append(
            f'<path class="mean" d="M{x:.1f} {mid - 6:.1f} L{x + 5:.1f} {mid:.1f} L{x:.1f} {mid + 6:.1f} '
            f'L{x - 5:.1f} {mid:.1f} Z" fill="#fff" stroke="#222" stroke-width="1.2"/>'
        )
        part.append("</g>")
        body += part
    return _svg("distribution", height, title, body)


@dataclass(frozen=True)
class ForestRow:
    """One line of a forest plot: an estimate with its interval."""

    label: str
    estimate: float
    low: float
    high: float
    note: str = ""
    highlight: bool = False
    variant: str = ""
    criterion: str = ""
    design: str = ""


def forest_plot(rows: Sequence[ForestRow], title: str, unit: str = "difference from the baseline") -> str:
    """Estimates with their intervals, one line each, and the zero line (no difference) marked."""
    left = _label_width([r.label for r in rows])
    notes = max((len(r.note) for r in rows), default=0)
    right = WIDTH - RIGHT - min(300, 6.2 * notes + 12)
    height = TOP + LANE * len(rows) + BOTTOM
    scale = _Scale.fit([v for r in rows for v in (r.low, r.high, r.estimate)], left, right, include_zero=True)
    bottom = TOP + LANE * len(rows)
    body = _axis(scale, TOP - 8, bottom, unit)
    zero = scale(0.0)
    body.append(
        f'<line class="zero" x1="{zero:.1f}" x2="{zero:.1f}" y1="{TOP - 14}" y2="{bottom}" stroke="#222" '
        f'stroke-width="1.2" stroke-dasharray="4 3"/>'
        f'<text x="{zero:.1f}" y="{TOP - 17}" text-anchor="middle" font-size="11">0 = no difference</text>'
    )
    for i, row in enumerate(rows):
        mid = TOP + LANE * i + LANE / 2
        colour = "#D55E00" if row.highlight else "#0072B2"
        tip = f"{row.label}: {row.estimate:.4g} [{row.low:.4g}, {row.high:.4g}] {row.note}".strip()
        body.append(
            f'<g class="forest-row" data-variant="{esc(row.variant)}" data-criterion="{esc(row.criterion)}" '
            f'data-design="{esc(row.design)}">'
            f"<title>{esc(tip)}</title>"
            f'<text x="{left - 8}" y="{mid + 4:.1f}" text-anchor="end" font-size="12">{esc(_short(row.label))}</text>'
            f'<line class="ci" x1="{scale(row.low):.1f}" x2="{scale(row.high):.1f}" y1="{mid:.1f}" y2="{mid:.1f}" '
            f'stroke="{colour}" stroke-width="2.5"/>'
            f'<line x1="{scale(row.low):.1f}" x2="{scale(row.low):.1f}" y1="{mid - 5:.1f}" y2="{mid + 5:.1f}" '
            f'stroke="{colour}" stroke-width="2"/>'
            f'<line x1="{scale(row.high):.1f}" x2="{scale(row.high):.1f}" y1="{mid - 5:.1f}" y2="{mid + 5:.1f}" '
            f'stroke="{colour}" stroke-width="2"/>'
            f'<rect class="estimate" x="{scale(row.estimate) - 5:.1f}" y="{mid - 5:.1f}" width="10" height="10" '
            f'fill="{colour}"/>'
            f'<text x="{right + 12:.1f}" y="{mid + 4:.1f}" font-size="11" fill="#333">{esc(row.note)}</text>'
            "</g>"
        )
    return _svg("forest", height, title, body)


def bar_chart(
    items: Sequence[tuple[str, float]], title: str, unit: str = "", fmt: Callable[[float], str] = _tick_text
) -> str:
    """One horizontal bar per item, its value written beside it."""
    left = _label_width([name for name, _ in items])
    right = WIDTH - RIGHT - 90
    height = TOP + LANE * len(items) + BOTTOM
    scale = _Scale.fit([0.0, *[v for _, v in items]], left, right, include_zero=True)
    body = _axis(scale, TOP - 8, TOP + LANE * len(items), unit)
    for i, (name, value) in enumerate(items):
        mid = TOP + LANE * i + LANE / 2
        x0, x1 = sorted((scale(0.0), scale(value)))
        body.append(
            f'<g class="bar" data-group="{esc(name)}"><title>{esc(f"{name}: {fmt(value)}")}</title>'
            f'<text x="{left - 8}" y="{mid + 4:.1f}" text-anchor="end" font-size="12">{esc(_short(name))}</text>'
            f'<rect x="{x0:.1f}" y="{mid - 10:.1f}" width="{max(x1 - x0, 1):.1f}" height="20" '
            f'fill="{PALETTE[i % len(PALETTE)]}"/>'
            f'<text x="{x1 + 6:.1f}" y="{mid + 4:.1f}" font-size="11">{esc(fmt(value))}</text></g>'
        )
    return _svg("bars", height, title, body)
