"""Server-rendered inline SVG charts: no script, no third-party library, nothing fetched, and allowed by the CSP.

Colours come from the stylesheet through classes (``series-0`` ...): the CSP forbids inline ``style`` attributes, and
classes let the print stylesheet and high-contrast modes restyle them. Every bar carries a ``<title>`` (a tooltip
and an accessible name), and each chart on a page is paired with a data table holding the same numbers.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

__all__ = ["PALETTE_SIZE", "Series", "axis_label", "nice_ceiling", "stacked_bars"]

PALETTE_SIZE = 8  # series-0 .. series-7 in ui.css (Okabe-Ito: distinguishable with colour-vision deficiencies)
# Sized for two charts side by side on a laptop: text at 15 units renders at about 13 px.
_WIDTH, _HEIGHT = 600, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 62, 26, 14, 38  # right: room for the last day's label


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    values: tuple[int, ...]  # one value per day, in the order of the chart's days


def nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten that is >= value (axis tops people can read at a glance)."""
    if value <= 1:
        return 1
    magnitude: int = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def axis_label(value: int) -> str:
    """Compact axis numbers (2,500 / 25k / 2.5M): they must fit left of the plot at any scale."""
    if value < 10_000:
        return f"{value:,}"
    if value < 1_000_000:
        return f"{value / 1000:g}k"
    return f"{value / 1_000_000:g}M"


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def stacked_bars(days: Sequence[dt.date], series: Sequence[Series], *, title: str, unit: str, chart_id: str) -> Markup:
    """One bar per day, stacked by series."""
    totals = [sum(s.values[i] for s in series) for i in range(len(days))]
    grand = sum(totals)
    top = nice_ceiling(max(totals, default=0))
    plot_w = _WIDTH - _LEFT - _RIGHT
    plot_h = _HEIGHT - _TOP - _BOTTOM
    band = plot_w / max(len(days), 1)
    bar = band * 0.72
    if grand:
        busiest = max(range(len(days)), key=lambda i: totals[i])
        summary = (
            f"{grand:,} {unit} over {len(days)} days; the busiest day was {days[busiest].isoformat()} with "
            f"{totals[busiest]:,}."
        )
    else:
        summary = f"No {unit} in these {len(days)} days."
    parts = [
        f'<svg class="chart" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" focusable="false">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(summary)}</desc>',
    ]
    # Grid lines and y labels at 0, half and top; the half line only where it is a whole number (counts).
    for fraction in (0.0, 0.5, 1.0) if top % 2 == 0 else (0.0, 1.0):
        y = _TOP + plot_h * (1 - fraction)
        parts.append(f'<line class="grid" x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{_fmt(y)}" y2="{_fmt(y)}"/>')
        label = axis_label(int(top * fraction))
        parts.append(f'<text class="axis" x="{_LEFT - 8}" y="{_fmt(y + 5)}" text-anchor="end">{label}</text>')
    for i, day in enumerate(days):
        x = _LEFT + band * i + (band - bar) / 2
        base = float(_TOP + plot_h)
        for index, item in enumerate(series):
            value = item.values[i]
            if value <= 0:
                continue
            height = plot_h * value / top
            base -= height
            tip = f"{day.isoformat()}: {item.label}: {value:,} {unit}"
            parts.append(
                f'<rect class="series-{index % PALETTE_SIZE}" x="{_fmt(x)}" y="{_fmt(base)}" width="{_fmt(bar)}" '
                f'height="{_fmt(max(height, 0.5))}"><title>{escape(tip)}</title></rect>'
            )
        # Label the last day and every 7th before it: weekly ticks that never collide.
        if (len(days) - 1 - i) % 7 == 0:
            parts.append(
                f'<text class="axis" x="{_fmt(x + bar / 2)}" y="{_HEIGHT - 14}" text-anchor="middle">'
                f"{day.strftime('%m-%d')}</text>"
            )
    parts.append(
        f'<line class="baseline" x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{_TOP + plot_h}" y2="{_TOP + plot_h}"/>'
    )
    if not grand:
        parts.append(
            f'<text class="empty" x="{_LEFT + plot_w / 2}" y="{_TOP + plot_h / 2}" '
            f'text-anchor="middle">{escape(summary)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text above is escaped or a number we computed
