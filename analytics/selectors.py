"""Reads of the analytics pages: the audit trail, a user's history, the statistics.

Statistics read the rollups (DailyUsage, MonthlyUsage), never raw usage events, and each
block costs one query whatever the organization's size.
"""

import calendar
import datetime as dt
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import (
    Q,
    Sum,
)
from django.db.models.functions import Coalesce

from accounts.models import Membership, Organization, User
from analytics.exports import Export
from analytics.filters import ActivityFilter, DateRangeForm, day_bounds, today
from asksage_admin.lib.months import current_month
from audit import chain
from audit.integrity import Verdict, verify
from audit.models import AuditLog
from audit.services import LOGIN, LOGIN_FAILED
from tokens.filters import UserTableFilter
from tokens.models import DailyUsage, MonthlyUsage, TokenKind, TokenRequest, UsageEvent
from tokens.selectors import pool_statuses, user_table_rows

KINDS = TokenKind.values
FORECAST_WINDOW_DAYS = 7


# Audit trail --------------------------------------------------------------------------------


def audit_rows(org: Organization):
    return (
        AuditLog.objects.filter(organization=org)
        .select_related("actor", "target_user")
        .order_by("-created_at", "-id")
    )


def org_member(org: Organization, user_id: int) -> Membership | None:
    return (
        Membership.objects.select_related("user").filter(organization=org, user_id=user_id).first()
    )


def integrity(org: Organization) -> Verdict:
    return verify(chain.chain_key(org.pk))


# User interaction history -------------------------------------------------------------------


@dataclass
class UsageDay:
    day: dt.date
    rows: list[dict] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(row["tokens"] for row in self.rows)


def user_logins(org: Organization, user, limit: int = 20):
    return list(audit_rows(org).filter(target_user=user, action__in=[LOGIN, LOGIN_FAILED])[:limit])


def user_changes(org: Organization, user, limit: int = 50):
    """What was done to the user (limits, flags, requests, policy): not their own logins."""
    return list(
        audit_rows(org).filter(target_user=user).exclude(action__in=[LOGIN, LOGIN_FAILED])[:limit]
    )


def user_usage_by_day(org: Organization, user, start: dt.date, end: dt.date) -> list[UsageDay]:
    rows = (
        DailyUsage.objects.filter(organization=org, user=user, day__range=(start, end))
        .values("day", "kind", "model", "tokens", "events")
        .order_by("-day", "kind", "model")
    )
    days: dict[dt.date, UsageDay] = {}
    for row in rows:
        days.setdefault(row["day"], UsageDay(row["day"])).rows.append(row)
    return list(days.values())


def user_requests(org: Organization, user, limit: int = 20) -> list:
    return list(
        TokenRequest.objects.filter(organization=org, user=user).order_by("-created_at")[:limit]
    )


# Statistics ---------------------------------------------------------------------------------


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
    """A period's usage per day and kind, and per model: both from one scan of the rollups."""

    by_day: dict[dt.date, dict[str, int]]
    by_model: list[dict]


def period_usage(org: Organization, start: dt.date, end: dt.date, models: int = 20) -> PeriodUsage:
    rows = (
        DailyUsage.objects.filter(organization=org, day__range=(start, end))
        .values("day", "kind", "model")
        .annotate(total=Sum("tokens"), requests=Sum("events"))
        .order_by()
    )
    days = (end - start).days + 1
    by_day = {start + dt.timedelta(days=n): dict.fromkeys(KINDS, 0) for n in range(days)}
    by_model: dict[tuple[str, str], dict] = {}
    for row in rows:
        by_day[row["day"]][row["kind"]] += row["total"] or 0
        entry = by_model.setdefault(
            (row["model"], row["kind"]),
            {"model": row["model"], "kind": row["kind"], "total": 0, "requests": 0},
        )
        entry["total"] += row["total"] or 0
        entry["requests"] += row["requests"] or 0
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


@dataclass(frozen=True)
class PoolForecast:
    kind: str
    purchased: int
    used: int
    daily_rate: int
    runs_out: dt.date | None  # None: lasts the month

    @property
    def label(self) -> str:
        return TokenKind(self.kind).label

    @property
    def remaining(self) -> int:
        return max(self.purchased - self.used, 0)

    @property
    def exhausted(self) -> bool:
        return self.purchased > 0 and self.used >= self.purchased


@dataclass(frozen=True)
class UserForecast:
    user_id: int
    name: str
    email: str
    kind: str
    used: int
    limit: int
    daily_rate: int
    reaches: dt.date

    @property
    def kind_label(self) -> str:
        return TokenKind(self.kind).label


def _month_end(day: dt.date) -> dt.date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _run_out_day(day: dt.date, remaining: int, rate: int) -> dt.date | None:
    """The day `remaining` tokens are gone at `rate` a day, counting from `day`; None if it
    is after the month's last day."""
    if remaining <= 0:
        return day
    if rate <= 0:
        return None
    days = -(-remaining // rate)  # ceiling
    out = day + dt.timedelta(days=days - 1)
    return out if out <= _month_end(day) else None


def _users_at_risk(
    org: Organization, start: dt.date, end: dt.date, days_left: int, limit: int
) -> list[dict]:
    """Members whose use this month plus their window rate × days left reaches their max.

    Raw SQL because the window is grouped once per user and kind first (a CTE) and only
    then joined to memberships and this month's usage; the ORM would put the month's usage
    in the GROUP BY and evaluate it for every rollup row. In integers:
    used × window + recent × days left ≥ max × window.
    """
    window = FORECAST_WINDOW_DAYS
    daily, monthly = DailyUsage._meta.db_table, MonthlyUsage._meta.db_table
    members, users = Membership._meta.db_table, User._meta.db_table
    limit_sql = (
        "CASE r.kind WHEN 'inference' THEN m.max_inference_tokens ELSE m.max_embedding_tokens END"
    )
    sql = f"""
        WITH recent AS (
            SELECT user_id, kind, CAST(SUM(tokens) AS BIGINT) AS recent FROM {daily}
            WHERE organization_id = %s AND day BETWEEN %s AND %s
            GROUP BY user_id, kind
        )
        SELECT r.user_id, u.name, u.email, r.kind, COALESCE(mu.used, 0), {limit_sql}, r.recent
        FROM recent r
        JOIN {members} m ON m.user_id = r.user_id AND m.organization_id = %s
        JOIN {users} u ON u.id = r.user_id
        LEFT JOIN {monthly} mu ON mu.user_id = r.user_id AND mu.kind = r.kind AND mu.month = %s
            AND mu.organization_id = %s
        WHERE r.recent > 0 AND {limit_sql} > 0
          AND COALESCE(mu.used, 0) * {window} + r.recent * %s >= {limit_sql} * {window}
        ORDER BY u.email, r.kind
        LIMIT %s
    """
    params = [org.pk, start, end, org.pk, current_month(), org.pk, days_left, limit]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = ["user_id", "name", "email", "kind", "used", "limit", "recent"]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    for row in rows:
        row["used"], row["limit"], row["recent"] = (
            int(row["used"]),
            int(row["limit"]),
            int(row["recent"]),
        )
    return rows


def forecast(org: Organization, statuses=None, limit: int = 50):
    """Pools and users who run out before the month ends, at the last 7 days' daily rate.

    Three queries: the pools' recent use, the pool statuses (unless given), the users at risk.
    """
    day = today()
    window_start = day - dt.timedelta(days=FORECAST_WINDOW_DAYS - 1)
    days_left = (_month_end(day) - day).days + 1  # today included
    statuses = statuses if statuses is not None else pool_statuses(org, with_used=True)
    recent = dict.fromkeys(KINDS, 0)
    for row in (
        DailyUsage.objects.filter(organization=org, day__range=(window_start, day))
        .values("kind")
        .annotate(total=Sum("tokens"))
        .order_by()
    ):
        recent[row["kind"]] = row["total"] or 0
    pools = []
    for status in statuses:
        rate = recent[status.kind] // FORECAST_WINDOW_DAYS
        remaining = status.purchased - status.used
        runs_out = _run_out_day(day, remaining, rate) if status.purchased else None
        pools.append(PoolForecast(status.kind, status.purchased, status.used, rate, runs_out))

    at_risk = _users_at_risk(org, window_start, day, days_left, limit)
    users = []
    for row in at_risk:
        rate = max(row["recent"] // FORECAST_WINDOW_DAYS, 1)
        reaches = _run_out_day(day, row["limit"] - row["used"], rate) or _month_end(day)
        users.append(
            UserForecast(
                row["user_id"],
                row["name"],
                row["email"],
                row["kind"],
                row["used"],
                row["limit"],
                row["recent"] // FORECAST_WINDOW_DAYS,
                reaches,
            )
        )
    users.sort(key=lambda u: (u.reaches, u.email))
    return pools, users


# Exports ------------------------------------------------------------------------------------


class BadQuery(ValueError):
    """The query string of an export cannot be honoured; the message says why."""


def _period(params) -> tuple[dt.date, dt.date]:
    form = DateRangeForm(params)
    if not form.is_valid():
        raise BadQuery(form.error_text())
    return form.period()


def export_users(org: Organization, params) -> Export:
    """The User Management table with the filters it shows (search, role, paid, banned, near)."""
    filterset = UserTableFilter(params, queryset=user_table_rows(org))
    if not filterset.is_valid():
        raise BadQuery(
            "Some filters were not understood: "
            + "; ".join(f"{f} — {' '.join(e)}" for f, e in filterset.errors.items())
        )
    rows = filterset.qs.order_by("name", "id").values_list(
        "name",
        "email",
        "membership__role",
        "is_paid",
        "is_banned",
        "membership__max_inference_tokens",
        "inf_used",
        "inf_prev",
        "membership__max_embedding_tokens",
        "emb_used",
        "total_used",
        "last_login",
    )
    header = [
        "Name",
        "Email",
        "Role",
        "Paid",
        "Banned",
        "Max Inference Tokens",
        "Inference used this month",
        "Inference used last month",
        "Max Embedding Tokens",
        "Embedding used this month",
        "Total used",
        "Last login (UTC)",
    ]
    kinds = ["text", "text", "text", "bool", "bool", "int", "int", "int", "int", "int", "int"]
    return Export("users", header, rows, [*kinds, "time"])


def export_usage_events(org: Organization, params) -> Export:
    start, end = _period(params)
    low, high = day_bounds(start, end)
    rows = (
        UsageEvent.objects.filter(organization=org, created_at__gte=low, created_at__lt=high)
        .order_by("created_at", "id")
        .values_list("created_at", "user__email", "kind", "model", "tokens")
    )
    header = ["Time (UTC)", "User email", "Kind", "Model", "Tokens"]
    return Export("usage-events", header, rows, ["time", "text", "text", "text", "int"])


def export_daily_usage(org: Organization, params) -> Export:
    start, end = _period(params)
    rows = (
        DailyUsage.objects.filter(organization=org, day__range=(start, end))
        .order_by("day", "user__email", "kind", "model")
        .values_list("day", "user__email", "user__name", "kind", "model", "tokens", "events")
    )
    header = ["Day", "User email", "User name", "Kind", "Model", "Tokens", "Events"]
    kinds = ["date", "text", "text", "text", "text", "int", "int"]
    return Export("daily-usage", header, rows, kinds)


def export_token_requests(org: Organization, params) -> Export:
    start, end = _period(params)
    low, high = day_bounds(start, end)
    rows = (
        TokenRequest.objects.filter(organization=org, created_at__gte=low, created_at__lt=high)
        .order_by("created_at", "id")
        .values_list(
            "created_at",
            "user__email",
            "kind",
            "amount",
            "reason",
            "current_max",
            "status",
            "granted",
            "note",
            "decided_at",
        )
    )
    header = [
        "Requested (UTC)",
        "User email",
        "Kind",
        "Requested amount",
        "Reason",
        "Max when asked",
        "Status",
        "Granted",
        "Note",
        "Decided (UTC)",
    ]
    kinds = ["time", "text", "text", "int", "text", "int", "text", "int", "text", "time"]
    return Export("token-requests", header, rows, kinds)


def export_activity(org: Organization, params) -> Export:
    filterset = ActivityFilter(params, queryset=audit_rows(org))
    if not filterset.is_valid():
        raise BadQuery(filterset.error_text())
    rows = filterset.qs.values_list(
        "created_at",
        "actor__email",
        "actor_label",
        "action",
        "target_user__email",
        "column",
        "old_value",
        "new_value",
        "batch_id",
        "details",
        "ip",
        "seq",
        "hash",
    )
    header = [
        "Time (UTC)",
        "Actor email",
        "Actor label",
        "Action",
        "Target email",
        "Column",
        "Old",
        "New",
        "Batch",
        "Details",
        "IP",
        "Chain position",
        "Hash",
    ]
    kinds = ["time", "text", "text", "text", "text", "text", "text", "text", "uuid", "json"]
    return Export("activity", header, rows, [*kinds, "ip", "int", "text"])


EXPORTS = {
    "users": export_users,
    "usage-events": export_usage_events,
    "daily-usage": export_daily_usage,
    "token-requests": export_token_requests,
    "activity": export_activity,
}
