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
from analytics.models import ClosedUsageMonth, CumulativeUsage
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


# Cumulative totals pay off from this many whole months: below, the two ends read about as
# many rows as the months themselves.
CUMULATIVE_FROM_MONTHS = 4


def _uses_cumulative(plan: ReadPlan) -> bool:
    first, last = plan.months or (None, None)
    return bool(first) and (last.year - first.year) * 12 + last.month - first.month >= (
        CUMULATIVE_FROM_MONTHS - 1
    )


def _months_sql(
    org_id: int, months: tuple[dt.date, dt.date], cumulative: bool
) -> tuple[list[str], list]:
    """The whole months' rows: MonthlyUsage, or, when `cumulative`, the last closed month c
    among them (`analytics.cumulative`) as cum(c) − cum(first − 1), then MonthlyUsage after c
    (all of them when none is closed: the page is right before the closing ran)."""
    monthly = MonthlyUsage._meta.db_table
    adapt = connection.ops.adapt_datefield_value
    first, last = adapt(months[0]), adapt(months[1])
    # Every kind named: MonthlyUsage's index is (organization, kind, month), and without the
    # kind PostgreSQL scanned the whole table for a month or two (42 against 28 ms at 10M).
    sql = (
        f"SELECT user_id, kind, used AS tokens FROM {monthly} WHERE organization_id = %s "
        f"AND kind IN ({', '.join(['%s'] * len(KINDS))}) AND month BETWEEN %s AND %s"
    )
    if not cumulative:
        return [sql], [org_id, *KINDS, first, last]
    cum, marks = CumulativeUsage._meta.db_table, ClosedUsageMonth._meta.db_table
    closed = (
        f"(SELECT MAX(month) FROM {marks} WHERE organization_id = %s AND month BETWEEN %s AND %s)"
    )
    before = adapt(add_months(months[0], -1))
    parts = [
        f"SELECT user_id, kind, total AS tokens FROM {cum} "
        f"WHERE organization_id = %s AND month = {closed}",
        f"SELECT user_id, kind, -total AS tokens FROM {cum} "
        f"WHERE organization_id = %s AND month = %s AND {closed} IS NOT NULL",
        f"{sql} AND month > COALESCE({closed}, %s)",
    ]
    params = [org_id, org_id, first, last, org_id, before, org_id, first, last]
    return parts, [*params, org_id, *KINDS, first, last, org_id, first, last, before]


def _top_users_sql(org_id: int, plan: ReadPlan, cumulative: bool) -> tuple[str, list]:
    """The plan's rows as (user_id, kind, tokens): MonthlyUsage (or the cumulative totals)
    by its (organization, month) index, DailyUsage by its (organization, day) one;
    subtracted days count negatively."""
    daily = DailyUsage._meta.db_table
    adapt = connection.ops.adapt_datefield_value
    parts, params = [], []
    if plan.months:
        parts, params = _months_sql(org_id, plan.months, cumulative)
    for sign, ranges in (("", plan.add), ("-", plan.subtract)):
        if ranges:
            days = " OR ".join(["day BETWEEN %s AND %s"] * len(ranges))
            parts.append(
                f"SELECT user_id, kind, {sign}tokens AS tokens FROM {daily} "
                f"WHERE organization_id = %s AND ({days})"
            )
            params += [org_id, *(adapt(day) for pair in ranges for day in pair)]
    return " UNION ALL ".join(parts), params


_KIND_SUM = "CAST(SUM(CASE WHEN kind = %s THEN tokens ELSE 0 END) AS BIGINT)"
# With the cumulative totals, the period's total of each kind over every user (a window over
# the groups, before the LIMIT): the check that they were up to date.
_GRAND_TOTALS = ", CAST(SUM(SUM(tokens)) OVER () AS BIGINT), SUM(" + _KIND_SUM + ") OVER ()"


def _top_rows(org_id: int, plan: ReadPlan, limit: int, cumulative: bool) -> list[tuple]:
    part, params = _top_users_sql(org_id, plan, cumulative)
    sql = (
        f"SELECT user_id, CAST(SUM(tokens) AS BIGINT) AS total, {_KIND_SUM}, {_KIND_SUM}"
        f"{_GRAND_TOTALS if cumulative else ''} FROM ({part}) AS period "
        "GROUP BY user_id HAVING SUM(tokens) > 0 ORDER BY total DESC, user_id LIMIT %s"
    )
    kinds = [TokenKind.INFERENCE, TokenKind.EMBEDDING]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*kinds, *(kinds[:1] if cumulative else []), *params, limit])
        return cursor.fetchall()


def _adds_up(rows: list[tuple], expected: dict[str, int]) -> bool:
    """Whether the period's per-kind totals over all users (the rows' last two columns)
    equal the organization's own rollup: a closed month written into since its closing
    makes them differ (usage only adds up, so an error cannot cancel out)."""
    total, inference = (int(rows[0][4]), int(rows[0][5])) if rows else (0, 0)
    return (total, inference) == (sum(expected.values()), expected.get(TokenKind.INFERENCE, 0))


def period_totals(period: PeriodUsage) -> dict[str, int]:
    """The period's tokens per kind, from its days."""
    return {kind: sum(day[kind] for day in period.by_day.values()) for kind in KINDS}


def top_users(
    org: Organization,
    start: dt.date,
    end: dt.date,
    limit: int = 10,
    *,
    expected: dict[str, int] | None = None,
) -> list[dict]:
    """The heaviest users of the period, in one query whatever its length: months read one
    MonthlyUsage row per user and kind instead of a DailyUsage row per day and model, and
    a month the period covers in part only its fewer days (`read_plan`): 30 days on the 1st
    read one day of DailyUsage, not 30. Given the period's `expected` totals per kind, four
    whole months or more read the cumulative totals at their two ends instead
    (`analytics.cumulative`), and are read again from MonthlyUsage in the rare case they do
    not add up to `expected`. Grouped on the user id alone, names fetched for the few
    winners afterwards: joining users before grouping would join every rollup row."""
    plan = read_plan(start, end, today())
    cumulative = expected is not None and _uses_cumulative(plan)
    rows = _top_rows(org.pk, plan, limit, cumulative)
    if cumulative and not _adds_up(rows, expected):
        rows = _top_rows(org.pk, plan, limit, False)
    rows = [
        {
            "user_id": row[0],
            "total": int(row[1]),
            "inference": int(row[2]),
            "embedding": int(row[3]),
        }
        for row in rows
    ]
    people = User.objects.filter(pk__in=[row["user_id"] for row in rows]).values_list(
        "pk", "name", "email"
    )
    names_by_pk = {pk: (name, email) for pk, name, email in people} if rows else {}
    for row in rows:
        row["user__name"], row["user__email"] = names_by_pk.get(row["user_id"], ("", ""))
    return rows
