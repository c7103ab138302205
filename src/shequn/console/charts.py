"""Server-rendered inline SVG charts (no chart library, nothing for the browser to fetch)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape


def last_months(now: datetime, count: int, latest: str | None = None) -> list[str]:
    """count consecutive YYYY-MM labels ending at the later of now's month and latest."""
    end = now.strftime("%Y-%m")
    if latest and latest > end:
        end = latest
    year, month = int(end[:4]), int(end[5:7])
    out = []
    for _ in range(count):
        out.append(f"{year:04d}-{month:02d}")
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return out[::-1]


def _nice_step(value: float) -> float:
    """A round step (1, 2, 2.5 or 5 × 10^n) at or above value."""
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def bar_chart(
    points: Sequence[tuple[str, int]],
    *,
    value_label: Callable[[int], str],
    title: str,
    width: int = 1100,
    height: int = 260,
    ticks: int = 4,
    axis_label: Callable[[int, str], str] | None = None,
) -> Markup:
    """A vertical bar chart (e.g. GMV by month) with a labelled y axis and a tooltip per bar.

    axis_label(index, label) gives the text under a bar ("" for none), e.g. to label only every week of days.
    """
    left, right, top, bottom = 64, 8, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    step = _nice_step(max((v for _, v in points), default=0) / ticks)
    top_value = step * ticks
    n = max(len(points), 1)
    slot = plot_w / n
    bar_w = max(slot * 0.62, 2)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        f'preserveAspectRatio="xMidYMid meet">'
    ]
    for i in range(ticks + 1):
        frac = i / ticks
        y = top + plot_h - frac * plot_h
        parts.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(value_label(int(step * i)))}</text>"
        )
    for i, (label, value) in enumerate(points):
        h = plot_h * value / top_value if top_value else 0
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h - h
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{max(h, 0):.1f}" rx="2">'
            f"<title>{escape(label)}: {escape(value_label(value))}</title></rect>"
        )
        text = axis_label(i, label) if axis_label else (label[2:] if len(points) > 8 else label)
        if text:
            parts.append(
                f'<text class="axis" x="{x + bar_w / 2:.1f}" y="{height - 10}" text-anchor="middle">'
                f"{escape(text)}</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))


@dataclass(frozen=True)
class HBar:
    """One row of a horizontal bar list."""

    label: str
    value: int
    display: str
    share: float  # 0..1 of the largest (or of the total) value


def hbars(rows: Sequence[tuple[str, int]], display: Callable[[int], str], *, of_total: bool = False) -> list[HBar]:
    """Rows scaled against the largest value (or the total) for the bar list partial."""
    base = sum(v for _, v in rows) if of_total else max((v for _, v in rows), default=0)
    return [HBar(label, value, display(value), (value / base) if base else 0.0) for label, value in rows]


def bar_svg(share: float, css: str = "hbar") -> Markup:
    """A tiny inline bar filling share (0..1) of its cell."""
    pct = max(0.0, min(1.0, share)) * 100
    return Markup(
        f'<svg class="{escape(css)}" viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true">'
        f'<rect class="track" x="0" y="0" width="100" height="10" rx="2"/>'
        f'<rect class="fill" x="0" y="0" width="{pct:.2f}" height="10" rx="2"/></svg>'
    )
