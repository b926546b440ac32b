"""The statistics page's charts, drawn with the geometry in `asksage_admin/lib/charts.py`."""

import datetime as dt

from django.utils.dates import WEEKDAYS_ABBR
from django.utils.html import format_html_join
from django.utils.safestring import SafeString

from asksage_admin.lib.charts import Chart, bars, columns
from tokens.models import TokenKind

KINDS = TokenKind.values
KIND_LABELS = dict(TokenKind.choices)


# The statistics page's charts ---------------------------------------------------------------


def month_chart(by_month: dict[dt.date, dict[str, int]]) -> Chart:
    months = list(by_month)
    return columns(
        "Tokens used per month",
        [f"{m:%b %Y}" for m in months],
        [(k, KIND_LABELS[k], [by_month[m][k] for m in months]) for k in KINDS],
        label_every=-(-len(months) // 8) or 1,
    )


def day_chart(by_day: dict[dt.date, dict[str, int]], start: dt.date, end: dt.date) -> Chart:
    days = list(by_day)
    return columns(
        f"Tokens used per day, {start:%Y-%m-%d} to {end:%Y-%m-%d}",
        [f"{d:%b} {d.day}" for d in days],
        [(k, KIND_LABELS[k], [by_day[d][k] for d in days]) for k in KINDS],
        label_every=-(-len(days) // 10) or 1,
    )


def day_rows(by_day: dict[dt.date, dict[str, int]]) -> SafeString:
    """The day chart's numbers as table rows, newest first, built here rather than by a
    template loop: a year is 366 rows, and the loop with its `date` and `intcomma` filters
    took about 100 ms of the page on the benchmark machine (this takes a few)."""
    return format_html_join(
        "",
        '<tr><th scope="row">{} {}</th><td class="num">{}</td><td class="num">{}</td>'
        '<td class="num">{}</td></tr>',
        (
            (
                WEEKDAYS_ABBR[day.weekday()],
                f"{day:%Y-%m-%d}",
                f"{kinds['inference']:,}",
                f"{kinds['embedding']:,}",
                f"{sum(kinds.values()):,}",
            )
            for day, kinds in reversed(by_day.items())
        ),
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


def person_labels(people: list[tuple[str, str]]) -> list[str]:
    """A label per (name, email): the name, with the email beside it when two people share
    the name (two "Dana Okafor" bars must not look the same); the email when there is no name."""
    names = [name.strip() for name, _email in people]
    return [
        f"{name} ({email})" if name and names.count(name) > 1 else (name or email)
        for name, (_name, email) in zip(names, people, strict=True)
    ]


def top_users_chart(top: list[dict]) -> Chart:
    people = [(u["user__name"] or "", u["user__email"]) for u in top]
    labels = person_labels(people)
    return bars(
        "Top users",
        [
            (label, u["total"], "s-user", f"{name or email} <{email}>")
            for label, u, (name, email) in zip(labels, top, people, strict=True)
        ],
        width=520,
    )


def model_chart(models: list[dict], names: dict[str, str] | None = None) -> Chart:
    """`names`: display names by the gateway's model name (the catalogue's); else the name."""
    names = names or {}
    return bars(
        "Usage by model",
        [
            (
                f"{names.get(m['model'], m['model'])} ({KIND_LABELS.get(m['kind'], m['kind'])})",
                m["total"],
                m["kind"],
            )
            for m in models
        ],
        width=520,
    )
