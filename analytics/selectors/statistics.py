"""Reads of the statistics page: usage by month and year, a period's usage, top users.

They read the rollups, never raw usage events, and each block costs one query: the
organization's (OrgDailyUsage: a row per day, kind and model, whatever the number of users)
for the totals, the chart per day and the models; MonthlyUsage per month, and for the top
users' whole months; DailyUsage (per user) only for the top users' other days.
"""

import datetime as dt
from dataclasses import dataclass

from django.db import connection
from django.db.models import Sum

from accounts.models import Organization, User
from asksage_admin.lib.months import add_months, month_start
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


def whole_months(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date] | None:
    """The first and last months lying wholly within start…end (both included), or None."""
    first = start if start.day == 1 else add_months(month_start(start), 1)
    after = end + dt.timedelta(days=1)
    last = add_months(month_start(after), -1)  # the last month ending on or before `end`
    return (first, last) if first <= last else None


def _top_users_sql(org_id: int, start: dt.date, end: dt.date) -> tuple[str, list]:
    """Per-user totals of the period: MonthlyUsage for its whole months (one row per user,
    kind and month, equal to the sum of that month's DailyUsage: both are written by the
    same recording), DailyUsage for the days before and after them."""
    daily, monthly = DailyUsage._meta.db_table, MonthlyUsage._meta.db_table
    adapt = connection.ops.adapt_datefield_value
    months = whole_months(start, end)
    if months is None:
        return (
            f"SELECT user_id, kind, tokens FROM {daily} "
            "WHERE organization_id = %s AND day BETWEEN %s AND %s",
            [org_id, adapt(start), adapt(end)],
        )
    first, last = months
    head_end = first - dt.timedelta(days=1)
    tail_start = add_months(last, 1)
    sql = (
        f"SELECT user_id, kind, used AS tokens FROM {monthly} "
        "WHERE organization_id = %s AND month BETWEEN %s AND %s "
        f"UNION ALL SELECT user_id, kind, tokens FROM {daily} WHERE organization_id = %s "
        "AND (day BETWEEN %s AND %s OR day BETWEEN %s AND %s)"
    )
    days = [adapt(start), adapt(head_end), adapt(tail_start), adapt(end)]
    return sql, [org_id, adapt(first), adapt(last), org_id, *days]


def top_users(org: Organization, start: dt.date, end: dt.date, limit: int = 10) -> list[dict]:
    """The heaviest users of the period, in one query whatever its length: whole months read
    one MonthlyUsage row per user and kind instead of a DailyUsage row per day and model.
    Grouped on the user id alone, names fetched for the few winners afterwards: joining users
    before grouping would join every rollup row."""
    part, params = _top_users_sql(org.pk, start, end)
    sql = (
        "SELECT user_id, CAST(SUM(tokens) AS BIGINT) AS total, "
        "CAST(SUM(CASE WHEN kind = %s THEN tokens ELSE 0 END) AS BIGINT), "
        "CAST(SUM(CASE WHEN kind = %s THEN tokens ELSE 0 END) AS BIGINT) "
        f"FROM ({part}) AS period "
        "GROUP BY user_id ORDER BY total DESC, user_id LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [TokenKind.INFERENCE, TokenKind.EMBEDDING, *params, limit])
        names = ["user_id", "total", "inference", "embedding"]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    people = User.objects.filter(pk__in=[row["user_id"] for row in rows]).values_list(
        "pk", "name", "email"
    )
    names_by_pk = {pk: (name, email) for pk, name, email in people} if rows else {}
    for row in rows:
        row["total"], row["inference"], row["embedding"] = (
            int(row["total"]),
            int(row["inference"]),
            int(row["embedding"]),
        )
        row["user__name"], row["user__email"] = names_by_pk.get(row["user_id"], ("", ""))
    return rows
