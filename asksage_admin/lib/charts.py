"""Small server-rendered SVG charts: geometry computed here, drawn by `analytics/charts.html`.

No library and no JavaScript: the SVG prints, works offline, and each chart's numbers are
also rendered as a table for screen readers. Here in lib (no app imports) so both the panel's
statistics (analytics) and the member's own page (tokens) draw with it.
"""

from dataclasses import dataclass, field

from django.utils.html import format_html_join
from django.utils.safestring import SafeString

from asksage_admin.lib.amounts import short_tokens

SERIES_CLASSES = {"inference": "s-inference", "embedding": "s-embedding"}
MAX_COLUMN = 64  # the widest column, in viewBox units


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

    @property
    def rects_svg(self) -> SafeString:
        """The rects as SVG, built here rather than by a template loop: a year's day chart
        has 732 of them, and the loop took about 70 ms of the statistics page on the
        benchmark machine. Numbers as `str()` writes them, as the loop did (localize off)."""
        return format_html_join(
            "",
            '<rect class="{}" x="{}" y="{}" width="{}" height="{}" rx="2"><title>{}</title></rect>',
            ((r.css, r.x, r.y, r.width, r.height, r.title) for r in self.rects),
        )


def nice_ticks(value: int, most: int = 5) -> list[int]:
    """Round axis ticks from 0 to at or above `value`: steps of 1, 2 or 5 × a power of ten,
    at most `most` intervals (23M → 0, 5M, 10M, 15M, 20M, 25M; never 6.25M)."""
    if value <= 0:
        return [0]
    power = 1
    while True:
        for step in (power, 2 * power, 5 * power):
            intervals = -(-value // step)  # ceiling
            if intervals <= most:
                return [step * n for n in range(intervals + 1)]
        power *= 10


def fit(text: str, chars: int) -> str:
    """`text` cut to `chars` characters with an ellipsis; the full text stays in the title."""
    return text if len(text) <= chars else text[: chars - 1].rstrip() + "…"


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

    `series` is [(css key, label, values per category)]. No usage at all draws nothing: the
    page says so in words instead of an axis of zeros.
    """
    left, right, top, bottom = 56, 8, 10, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(values[i] for _, _, values in series) for i in range(len(categories))]
    chart = Chart(title, width, height, empty=not any(totals))
    chart.legend = [(SERIES_CLASSES.get(key, key), label) for key, label, _ in series]
    if chart.empty:
        return chart
    ticks = nice_ticks(max(totals))
    top_value = ticks[-1]
    for value in ticks:
        y = top + plot_h - plot_h * value / top_value
        chart.gridlines.append(Label(left, round(y, 1), short_tokens(value), "end"))
    slot = plot_w / len(categories)
    bar = min(max(slot * 0.7, 1), MAX_COLUMN)  # one day alone is a column, not a wall
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


CHAR_WIDTH = 6.6  # an average character of the 11px label font, in viewBox units


def bars(
    title: str,
    items: list[tuple[str, int, str] | tuple[str, int, str, str]],
    *,
    width: int = 720,
    row: int = 36,
) -> Chart:
    """Horizontal bars, one per item: [(label, value, css key[, hover text])], the longest
    scaled to the width. Each label sits on its own line above its bar, so a long model name
    has the whole width and is cut (with "…", in full on hover) only past it."""
    right = 64
    height = max(row * len(items) + 4, 40)
    top_value = max((item[1] for item in items), default=0) or 1
    chart = Chart(title, width, height, empty=not any(item[1] for item in items))
    if chart.empty:
        return chart
    plot_w = width - right
    chars = int(width / CHAR_WIDTH)
    for i, (label, value, key, *hover) in enumerate(items):
        y = 4 + row * i
        w = plot_w * value / top_value
        css = SERIES_CLASSES.get(key, key)
        chart.rects.append(
            Rect(
                0,
                y + 17,
                round(max(w, 1 if value else 0), 1),
                row - 22,
                css,
                f"{hover[0] if hover else label}: {value:,}",
            )
        )
        chart.labels.append(Label(0, y + 12, fit(label, chars), "start"))
        chart.labels.append(Label(round(w + 6, 1), y + row - 9, short_tokens(value), "start"))
    return chart
