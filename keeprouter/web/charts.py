"""Charts drawn on the server as inline SVG: all geometry computed here, the template only prints it.

A chart needs no script and no network, and each carries the table of its own data, so a screen
reader (or the Markdown form) gets every figure. Each mark has its ISO date and a label for its
`<title>` tooltip. Only days with data get a mark; the x axis spans the first such day to the last.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 12, 28  # plot margins, room for the axis labels
SERIES_CLASSES = 6  # colours in the stylesheet: .s0 .. .s5


@dataclass(frozen=True, slots=True)
class Table:
    """A data table: the chart's figures, or any tabular section of a page."""

    head: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]  # cells: str, or a pages.common.Link


@dataclass(frozen=True, slots=True)
class Mark:
    x: float
    y: float
    w: float  # bars only
    h: float
    date: str  # ISO
    label: str  # "2026-11-30 · Prompt: 1,234 tokens"


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    css: str  # "s0".."s5"
    marks: tuple[Mark, ...]
    points: str  # polyline "x,y x,y ..." for line charts, "" for bars


@dataclass(frozen=True, slots=True)
class Tick:
    pos: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    id: str
    title: str
    kind: str  # "bar" | "line"
    series: tuple[Series, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    table: Table
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM

    @property
    def empty(self) -> bool:
        return not any(s.marks for s in self.series)


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^n at or above `value` (an axis maximum that reads well)."""
    if value <= 0:
        return 1.0
    base = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * base >= value * (1 - 1e-12):
            return float(step * base)
    return float(10 * base)  # pragma: no cover - the loop always returns


def _x_axis(days: Sequence[dt.date]) -> tuple[Callable[[dt.date], float], float, tuple[Tick, ...]]:
    """Position of each date across the plot, the width of one day's slot, and the axis labels."""
    first, last = min(days), max(days)
    span = (last - first).days + 1
    slot = (WIDTH - RIGHT - LEFT) / span

    def x(d: dt.date) -> float:
        return LEFT + slot * ((d - first).days + 0.5)

    picks = [first] if span == 1 else [first, first + dt.timedelta(days=(span - 1) // 2), last]
    return x, slot, tuple(Tick(round(x(d), 1), d.isoformat()) for d in dict.fromkeys(picks))


def compact(value: float) -> str:
    """An axis label that fits the left margin: 950, 2.5k, 10k, 1.2M (the chart's title names the unit)."""
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= div:
            return f"{value / div:.1f}".removesuffix(".0") + suffix
    return f"{value:.0f}"


def _y_axis(top_value: float, fmt: Callable[[float], str]) -> tuple[Callable[[float], float], tuple[Tick, ...]]:
    bottom = HEIGHT - BOTTOM
    scale = (bottom - TOP) / top_value

    def y(v: float) -> float:
        return bottom - v * scale

    return y, tuple(Tick(round(y(top_value * f), 1), fmt(top_value * f)) for f in (0, 0.5, 1))


def stacked_bars(
    chart_id: str,
    title: str,
    series: Sequence[tuple[str, Mapping[dt.date, float]]],
    fmt: Callable[[float], str],
    table: Table,
    *,
    tick_fmt: Callable[[float], str] | None = None,
) -> Chart:
    """One bar per day with data, its series stacked bottom to top in the order given; `fmt` labels
    the marks, `tick_fmt` (default `fmt`) the y axis."""
    days = sorted({d for _, values in series for d, v in values.items() if v})
    if not days:
        return Chart(chart_id, title, "bar", (), (), (), table)
    x, slot, x_ticks = _x_axis(days)
    totals = {d: sum(values.get(d, 0) for _, values in series) for d in days}
    y, y_ticks = _y_axis(nice_ceiling(max(totals.values())), tick_fmt or fmt)
    width = max(min(slot * 0.7, 24.0), 1.0)
    base = dict.fromkeys(days, 0.0)
    out = []
    for i, (name, values) in enumerate(series):
        marks = []
        for d in days:
            v = float(values.get(d, 0))
            if not v:
                continue
            y0, y1 = y(base[d]), y(base[d] + v)
            base[d] += v
            left, label = round(x(d) - width / 2, 2), f"{d.isoformat()} · {name}: {fmt(v)}"
            marks.append(Mark(left, round(y1, 2), round(width, 2), round(y0 - y1, 2), d.isoformat(), label))
        out.append(Series(name, f"s{i % SERIES_CLASSES}", tuple(marks), ""))
    return Chart(chart_id, title, "bar", tuple(out), y_ticks, x_ticks, table)


def lines(
    chart_id: str,
    title: str,
    series: Sequence[tuple[str, Mapping[dt.date, float | None]]],
    fmt: Callable[[float], str],
    table: Table,
    *,
    y_max: float | None = None,
    tick_fmt: Callable[[float], str] | None = None,
) -> Chart:
    """One line per series through its days with data (a dot per day); `tick_fmt` as for bars."""
    days = sorted({d for _, values in series for d, v in values.items() if v is not None})
    if not days:
        return Chart(chart_id, title, "line", (), (), (), table)
    x, _, x_ticks = _x_axis(days)
    highest = max(v for _, values in series for v in values.values() if v is not None)
    y, y_ticks = _y_axis(y_max if y_max is not None else nice_ceiling(highest), tick_fmt or fmt)
    at = {d: (round(x(d), 2), d.isoformat()) for d in days}  # each day's position and ISO date, once
    out = []
    for i, (name, values) in enumerate(series):
        marks = []
        for d, v in sorted(values.items()):
            if v is not None:
                px, iso = at[d]
                marks.append(Mark(px, round(y(v), 2), 0, 0, iso, f"{iso} · {name}: {fmt(v)}"))
        points = " ".join(f"{m.x},{m.y}" for m in marks)
        out.append(Series(name, f"s{i % SERIES_CLASSES}", tuple(marks), points))
    return Chart(chart_id, title, "line", tuple(out), y_ticks, x_ticks, table)
