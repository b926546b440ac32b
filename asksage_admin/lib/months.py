"""UTC calendar months, represented by the date of their first day."""

import datetime as dt

from django.utils import timezone


def month_start(day: dt.date | dt.datetime | None = None) -> dt.date:
    if day is None:
        day = timezone.now()
    if isinstance(day, dt.datetime):
        day = day.astimezone(dt.UTC).date() if timezone.is_aware(day) else day.date()
    return day.replace(day=1)


def add_months(month: dt.date, count: int) -> dt.date:
    index = month.year * 12 + (month.month - 1) + count
    return dt.date(index // 12, index % 12 + 1, 1)


def current_month() -> dt.date:
    return month_start(timezone.now())


def previous_month() -> dt.date:
    return add_months(current_month(), -1)
