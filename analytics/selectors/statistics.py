"""Reads of the statistics page: usage by month and year, a period's usage, top users.

They read the rollups, never raw usage events, and each block costs one query: the
organization's (OrgDailyUsage: a row per day, kind and model, whatever the number of users)
for the months, this month's pool use, the chart per day and the models; the per-user
rollups only for the top users: MonthlyUsage for the months, DailyUsage for the fewest days
(`read_plan`).
"""

import datetime as dt
from dataclasses import dataclass, replace

from django.db import connection
from django.db.models import Sum
from django.db.models.functions import TruncMonth

from accounts.models import Organization, User
from analytics.filters import today
from asksage_admin.lib.months import add_months, current_month, month_start
from tokens.models import DailyUsage, MonthlyUsage, OrgDailyUsage, TokenKind
from tokens.selectors import pool_statuses

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
    """Tokens per UTC month and kind, from the organization's rollup: a row per day, kind
    and model (a few thousand a year whatever the users), where MonthlyUsage holds one per
    user, kind and month (240,000 a year at 10,000 users). Equal: both sum the same events."""
    rows = (
        OrgDailyUsage.objects.filter(organization=org)
        .annotate(month=TruncMonth("day"))
        .values("month", "kind")
        .annotate(total=Sum("tokens"))
        .order_by("month", "kind")
    )
    return _by_kind(rows, "month")


def pools_this_month(org: Organization, by_month: dict[dt.date, dict[str, int]]):
    """The pool statuses with this month's use taken from `usage_by_month`'s answer, which
    holds it already: not a second read of the month's MonthlyUsage (a row per user)."""
    used = by_month.get(current_month(), {})
    return [replace(status, used=used.get(status.kind, 0)) for status in pool_statuses(org)]


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


Days = tuple[dt.date, dt.date]  # a range of days, both included


@dataclass(frozen=True)
class ReadPlan:
    """How the top users read a period: MonthlyUsage for `months` (first and last, or
    None), plus DailyUsage's days in `add`, minus DailyUsage's days in `subtract`."""

    months: tuple[dt.date, dt.date] | None
    add: tuple[Days, ...]
    subtract: tuple[Days, ...]


def _days_to_read(days: Days, today: dt.date) -> int:
    """Days of a range that can hold usage: none after today."""
    return max((min(days[1], today) - days[0]).days + 1, 0)


def read_plan(start: dt.date, end: dt.date, today: dt.date) -> ReadPlan:
    """The cheapest exact reading of start…end per user. A whole month is one MonthlyUsage
    row per user and kind; a month the period covers in part is either its days within the
    period (DailyUsage, added) or the whole month minus its days outside the period,
    whichever reads fewer days: 2 November – 1 December is November minus 1 November, and
    December to date (its days after today hold nothing). Exact because the recording adds
    each usage to both tables (MonthlyUsage is the sum of the month's DailyUsage)."""
    monthly: list[dt.date] = []
    add: list[Days] = []
    subtract: list[Days] = []
    month = month_start(start)
    while month <= end:
        after = add_months(month, 1)
        inside = (max(start, month), min(end, after - dt.timedelta(days=1)))
        outside = [
            (month, inside[0] - dt.timedelta(days=1)),
            (inside[1] + dt.timedelta(days=1), after - dt.timedelta(days=1)),
        ]
        outside = [days for days in outside if days[0] <= days[1]]
        cost = sum(_days_to_read(days, today) for days in outside)
        if not outside or cost < _days_to_read(inside, today):
            monthly.append(month)
            subtract += outside
        else:
            add.append(inside)
        month = after
    # Only the first and last months can be read by their days: the months read whole
    # are consecutive, so one range of months.
    months = (monthly[0], monthly[-1]) if monthly else None
    return ReadPlan(months, tuple(add), tuple(subtract))


def _top_users_sql(org_id: int, plan: ReadPlan) -> tuple[str, list]:
    """The plan's rows as (user_id, kind, tokens): MonthlyUsage by its (organization, month)
    index, DailyUsage by its (organization, day) one; subtracted days count negatively."""
    daily, monthly = DailyUsage._meta.db_table, MonthlyUsage._meta.db_table
    adapt = connection.ops.adapt_datefield_value
    parts, params = [], []
    if plan.months:
        parts.append(
            f"SELECT user_id, kind, used AS tokens FROM {monthly} "
            "WHERE organization_id = %s AND month BETWEEN %s AND %s"
        )
        params += [org_id, adapt(plan.months[0]), adapt(plan.months[1])]
    for sign, ranges in (("", plan.add), ("-", plan.subtract)):
        if ranges:
            days = " OR ".join(["day BETWEEN %s AND %s"] * len(ranges))
            parts.append(
                f"SELECT user_id, kind, {sign}tokens AS tokens FROM {daily} "
                f"WHERE organization_id = %s AND ({days})"
            )
            params += [org_id, *(adapt(day) for pair in ranges for day in pair)]
    return " UNION ALL ".join(parts), params


def top_users(org: Organization, start: dt.date, end: dt.date, limit: int = 10) -> list[dict]:
    """The heaviest users of the period, in one query whatever its length: months read one
    MonthlyUsage row per user and kind instead of a DailyUsage row per day and model, and
    a month the period covers in part only its fewer days (`read_plan`): 30 days on the 1st
    read one day of DailyUsage, not 30. Grouped on the user id alone, names fetched for the
    few winners afterwards: joining users before grouping would join every rollup row."""
    part, params = _top_users_sql(org.pk, read_plan(start, end, today()))
    sql = (
        "SELECT user_id, CAST(SUM(tokens) AS BIGINT) AS total, "
        "CAST(SUM(CASE WHEN kind = %s THEN tokens ELSE 0 END) AS BIGINT), "
        "CAST(SUM(CASE WHEN kind = %s THEN tokens ELSE 0 END) AS BIGINT) "
        f"FROM ({part}) AS period "
        "GROUP BY user_id HAVING SUM(tokens) > 0 ORDER BY total DESC, user_id LIMIT %s"
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
