"""Small server-rendered SVG charts: geometry computed here, drawn by `analytics/charts.html`.

No library and no JavaScript: the SVG prints, works offline, and each chart's numbers are
also rendered as a table for screen readers.
"""

import datetime as dt
from dataclasses import dataclass, field

from asksage_admin.lib.amounts import short_tokens
from tokens.models import TokenKind

KINDS = TokenKind.values
KIND_LABELS = dict(TokenKind.choices)

SERIES_CLASSES = {"inference": "s-inference", "embedding": "s-embedding"}


@dataclass
class Rect:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass
class Label:
    x: float
    y: float
    text: str
    anchor: str = "middle"


@dataclass
class Chart:
    title: str
    width: int
    height: int
    rects: list[Rect] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    gridlines: list[Label] = field(default_factory=list)  # y position and value text
    legend: list[tuple[str, str]] = field(default_factory=list)  # (css class, label)
    empty: bool = False


def _nice_max(value: int) -> int:
    """A round axis maximum at or above `value` (1, 2, 2.5 or 5 × a power of ten)."""
    if value <= 0:
        return 1
    power = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return int(step * power)
    return 10 * power


def columns(
    title: str,
    categories: list[str],
    series: list[tuple[str, str, list[int]]],
    *,
    width: int = 720,
    height: int = 240,
    label_every: int = 1,
) -> Chart:
    """Vertical stacked columns: one per category, one coloured part per series.

    `series` is [(css key, label, values per category)].
    """
    left, right, top, bottom = 56, 8, 10, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(values[i] for _, _, values in series) for i in range(len(categories))]
    top_value = _nice_max(max(totals, default=0))
    chart = Chart(title, width, height, empty=not any(totals))
    chart.legend = [(SERIES_CLASSES.get(key, key), label) for key, label, _ in series]
    for n in range(5):
        value = top_value * n / 4
        y = top + plot_h - plot_h * n / 4
        chart.gridlines.append(Label(left, round(y, 1), short_tokens(int(value)), "end"))
    if not categories:
        return chart
    slot = plot_w / len(categories)
    bar = max(slot * 0.7, 1)
    for i, category in enumerate(categories):
        x = left + slot * i + (slot - bar) / 2
        base = top + plot_h
        for key, label, values in series:
            value = values[i]
            if value <= 0:
                continue
            h = plot_h * value / top_value
            base -= h
            chart.rects.append(
                Rect(
                    round(x, 1),
                    round(base, 1),
                    round(bar, 1),
                    round(h, 1),
                    SERIES_CLASSES.get(key, key),
                    f"{category} — {label}: {value:,}",
                )
            )
        if i % label_every == 0:
            chart.labels.append(Label(round(x + bar / 2, 1), height - 10, category))
    return chart


def bars(
    title: str,
    items: list[tuple[str, int, str]],
    *,
    width: int = 720,
    row: int = 26,
) -> Chart:
    """Horizontal bars, one per item: [(label, value, css key)], longest scaled to the width."""
    left, right = min(200, width // 3), 60
    height = max(row * len(items) + 8, 40)
    top_value = max((value for _, value, _ in items), default=0) or 1
    chart = Chart(title, width, height, empty=not any(value for _, value, _ in items))
    plot_w = width - left - right
    for i, (label, value, key) in enumerate(items):
        y = 4 + row * i
        w = plot_w * value / top_value
        css = SERIES_CLASSES.get(key, key)
        chart.rects.append(
            Rect(
                left,
                y + 3,
                round(max(w, 1 if value else 0), 1),
                row - 8,
                css,
                f"{label}: {value:,}",
            )
        )
        chart.labels.append(Label(left - 8, y + row / 2 + 4, label[:32], "end"))
        chart.labels.append(
            Label(round(left + w + 6, 1), y + row / 2 + 4, short_tokens(value), "start")
        )
    return chart


# The statistics page's charts ---------------------------------------------------------------


def month_chart(by_month: dict[dt.date, dict[str, int]]) -> Chart:
    months = list(by_month)
    return columns(
        "Tokens used per month",
        [f"{m:%b %y}" for m in months],
        [(k, KIND_LABELS[k], [by_month[m][k] for m in months]) for k in KINDS],
        label_every=-(-len(months) // 10) or 1,
    )


def day_chart(by_day: dict[dt.date, dict[str, int]], start: dt.date, end: dt.date) -> Chart:
    days = list(by_day)
    return columns(
        f"Tokens used per day, {start:%Y-%m-%d} to {end:%Y-%m-%d}",
        [f"{d:%b %d}" for d in days],
        [(k, KIND_LABELS[k], [by_day[d][k] for d in days]) for k in KINDS],
        label_every=-(-len(days) // 10) or 1,
    )


def pool_chart(statuses) -> Chart:
    return bars(
        "Purchased, allocated and used this month",
        [
            (f"{s.label} {what}", value, css)
            for s in statuses
            for what, value, css in (
                ("purchased", s.purchased, "s-purchased"),
                ("allocated", s.allocated, "s-allocated"),
                ("used", s.used, "s-used"),
            )
        ],
    )


def top_users_chart(top: list[dict]) -> Chart:
    return bars(
        "Top users",
        [(u["user__name"] or u["user__email"], u["total"], "s-user") for u in top],
        width=520,
    )


def model_chart(models: list[dict]) -> Chart:
    return bars(
        "Usage by model",
        [
            (f"{m['model']} ({KIND_LABELS.get(m['kind'], m['kind'])})", m["total"], m["kind"])
            for m in models
        ],
        width=520,
    )
