"""Reads of the statistics page: usage by month and year, a period's usage, top users.

They read the rollups, never raw usage events, and each block costs one query: the
organization's (OrgDailyUsage: a row per day, kind and model, whatever the number of users)
for the totals, the chart per day and the models; MonthlyUsage per month; DailyUsage (per
user) only for the top users of a date range.
"""

import datetime as dt
from dataclasses import dataclass

from django.db.models import Q, Sum
from django.db.models.functions import Coalesce

from accounts.models import Organization, User
from tokens.models import DailyUsage, MonthlyUsage, OrgDailyUsage, TokenKind

KINDS = TokenKind.values


def _by_kind(rows, key: str) -> dict:
    """{key value: {kind: tokens}} from rows of (key, kind, tokens)."""
    result: dict = {}
    for row in rows:
        result.setdefault(row[key], dict.fromkeys(KINDS, 0))[row["kind"]] = row["total"] or 0
    return result


def by_year(by_month: dict[dt.date, dict[str, int]]) -> list[dict]:
    """Months grouped by year, newest year first, each with its total."""
    years: dict[int, dict] = {}
    for month, kinds in by_month.items():
        year = years.setdefault(month.year, {"year": month.year, "months": [], "total": 0})
        year["months"].append({"month": month, **kinds, "total": sum(kinds.values())})
        year["total"] += sum(kinds.values())
    return sorted(years.values(), key=lambda y: y["year"], reverse=True)


def usage_by_month(org: Organization) -> dict[dt.date, dict[str, int]]:
    rows = (
        MonthlyUsage.objects.filter(organization=org)
        .values("month", "kind")
        .annotate(total=Sum("used"))
        .order_by("month", "kind")
    )
    return _by_kind(rows, "month")


@dataclass(frozen=True)
class PeriodUsage:
    """A period's usage per day and kind, and per model: both from one range of the
    organization's rollup (days × kinds × models rows, not one per user)."""

    by_day: dict[dt.date, dict[str, int]]
    by_model: list[dict]


def period_usage(org: Organization, start: dt.date, end: dt.date, models: int = 20) -> PeriodUsage:
    rows = (
        OrgDailyUsage.objects.filter(organization=org, day__range=(start, end))
        .values_list("day", "kind", "model", "tokens", "events")
        .order_by()
    )
    days = (end - start).days + 1
    by_day = {start + dt.timedelta(days=n): dict.fromkeys(KINDS, 0) for n in range(days)}
    by_model: dict[tuple[str, str], dict] = {}
    for day, kind, model, tokens, events in rows:
        by_day[day][kind] += tokens
        entry = by_model.setdefault(
            (model, kind), {"model": model, "kind": kind, "total": 0, "requests": 0}
        )
        entry["total"] += tokens
        entry["requests"] += events
    ranked = sorted(by_model.values(), key=lambda m: (-m["total"], m["model"], m["kind"]))
    return PeriodUsage(by_day, ranked[:models])


def top_users(org: Organization, start: dt.date, end: dt.date, limit: int = 10) -> list[dict]:
    """The heaviest users of the period. Grouped on the user id alone, names fetched for the
    few winners afterwards: joining users before grouping would join every rollup row."""
    rows = list(
        DailyUsage.objects.filter(organization=org, day__range=(start, end))
        .values("user_id")
        .annotate(
            total=Sum("tokens"),
            inference=Coalesce(Sum("tokens", filter=Q(kind="inference")), 0),
            embedding=Coalesce(Sum("tokens", filter=Q(kind="embedding")), 0),
        )
        .order_by("-total", "user_id")[:limit]
    )
    people = User.objects.filter(pk__in=[row["user_id"] for row in rows]).values_list(
        "pk", "name", "email"
    )
    names = {pk: (name, email) for pk, name, email in people} if rows else {}
    for row in rows:
        row["user__name"], row["user__email"] = names.get(row["user_id"], ("", ""))
    return rows
