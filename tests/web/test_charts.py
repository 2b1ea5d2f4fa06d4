"""Server-drawn charts: one mark per day with data, each with its ISO date; geometry inside the plot."""

from __future__ import annotations

import datetime as dt

from keeprouter.web import charts
from keeprouter.web.charts import Table

D1, D2, D3 = dt.date(2026, 11, 1), dt.date(2026, 11, 3), dt.date(2026, 11, 30)
EMPTY = Table(("Date",), ())


def test_nice_ceiling() -> None:
    assert [charts.nice_ceiling(v) for v in (0, 0.7, 1, 3, 7, 12, 99.5, 100, 2400)] == [
        1,
        1,
        1,
        5,
        10,
        20,
        100,
        100,
        2500,
    ]


def test_stacked_bars_one_bar_per_recorded_day_stacked_within_the_plot() -> None:
    series = [("Prompt", {D1: 100, D3: 50}), ("Completion", {D1: 20, D2: 0})]
    c = charts.stacked_bars("c", "Tokens", series, lambda v: f"{v:g}", EMPTY)
    prompt, completion = c.series
    assert [m.date for m in prompt.marks] == ["2026-11-01", "2026-11-30"]
    assert [m.date for m in completion.marks] == ["2026-11-01"]  # a zero is no mark
    assert prompt.marks[0].label == "2026-11-01 · Prompt: 100"
    top = completion.marks[0]
    assert abs((top.y + top.h) - prompt.marks[0].y) < 0.01  # stacked on the prompt bar
    for m in (*prompt.marks, *completion.marks):
        assert c.left <= m.x and m.x + m.w <= c.right and c.top - 0.01 <= m.y and m.y + m.h <= c.bottom + 0.01
    assert [t.label for t in c.x_ticks] == ["2026-11-01", "2026-11-15", "2026-11-30"]
    assert c.y_ticks[-1].label == "200"  # 120 rounds up to a readable maximum


def test_lines_skip_missing_days_and_honour_a_fixed_maximum() -> None:
    c = charts.lines("u", "Uptime", [("a", {D1: 100.0, D2: None, D3: 50.0}), ("b", {})], str, EMPTY, y_max=100.0)
    a, b = c.series
    assert [m.date for m in a.marks] == ["2026-11-01", "2026-11-30"] and b.marks == ()
    assert a.points == f"{a.marks[0].x},{a.marks[0].y} {a.marks[1].x},{a.marks[1].y}"
    assert a.marks[0].y == c.top and a.marks[1].y == (c.top + c.bottom) / 2


def test_a_chart_without_data_is_empty() -> None:
    assert charts.lines("x", "X", [("a", {D1: None})], str, EMPTY).empty
    assert charts.stacked_bars("x", "X", [], str, EMPTY).empty
