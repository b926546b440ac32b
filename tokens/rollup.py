"""The usage rollups kept beside the events: rebuilding them and checking them.

Two of them: the organization-level rollup (OrgDailyUsage) and each member's lifetime total
(Membership.total_used, User Management's "Total usage"). The usage API maintains both in the
recording transaction (`usage_api.sqlite`, `usage_api.postgres`); code that writes usage in
bulk (the seed commands) rebuilds them afterwards. `rollup_mismatches` and
`usage_total_mismatches` are the consistency checks: each must equal the sum of the usage
events (per organization, UTC day, kind and model; per member).
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Count, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from accounts.models import Membership
from tokens.models import DailyUsage, MonthlyUsage, OrgDailyUsage, UsageEvent
from tokens.retention import retained_since

Key = tuple[int, dt.date, str, str]  # organization, day, kind, model


def rebuild_sql(org_filter: str = "") -> str:
    """INSERT … SELECT of the rollup from DailyUsage, grouped (one statement, any size)."""
    return (
        f"INSERT INTO {connection.ops.quote_name(OrgDailyUsage._meta.db_table)} "
        "(organization_id, day, kind, model, tokens, events) "
        "SELECT organization_id, day, kind, model, SUM(tokens), SUM(events) "
        f"FROM {connection.ops.quote_name(DailyUsage._meta.db_table)} {org_filter} "
        "GROUP BY organization_id, day, kind, model"
    )


@transaction.atomic
def org_daily_usage_rebuild(*, organization_ids: Iterable[int] | None = None) -> int:
    """Replace the organizations' rollup rows (all when None) by the sum of their DailyUsage.

    For bulk writers of DailyUsage (seeds); returns the number of rollup rows written.
    """
    rows = OrgDailyUsage.objects.all()
    org_filter, params = "", []
    if organization_ids is not None:
        ids = list(organization_ids)
        if not ids:
            return 0
        rows = rows.filter(organization_id__in=ids)
        org_filter = f"WHERE organization_id IN ({', '.join(['%s'] * len(ids))})"
        params = ids
    rows.delete()
    with connection.cursor() as cursor:
        cursor.execute(rebuild_sql(org_filter), params)
        return cursor.rowcount


def org_daily_usage_add(
    *, organization_id: int, day: dt.date, kind: str, model: str, tokens: int, events: int
) -> None:
    """Add to one rollup row, creating it (an upsert): for writers of single DailyUsage rows."""
    table = connection.ops.quote_name(OrgDailyUsage._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (organization_id, day, kind, model, tokens, events) "
            "VALUES (%s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (organization_id, day, kind, model, shard) DO UPDATE SET "
            f"tokens = {table}.tokens + excluded.tokens, events = {table}.events + excluded.events",
            [organization_id, connection.ops.adapt_datefield_value(day), kind, model]
            + [tokens, events],
        )


# Days this far back get no more usage: a usage statement writes the UTC day it starts on
# and commits within seconds, so yesterday may still be written just after midnight.
FOLD_AFTER_DAYS = 2


@transaction.atomic
def org_daily_usage_fold(*, today: dt.date) -> int:
    """Fold the rollup's shards (see OrgDailyUsage) of days before `today` − FOLD_AFTER_DAYS + 1
    into shard 0: one row per organization, day, kind and model again, so the statistics of
    past days read as few rows as before. Sums are unchanged; returns the rows folded away.

    Its rows are locked first (PostgreSQL); no usage statement writes those days any more.
    """
    table = connection.ops.quote_name(OrgDailyUsage._meta.db_table)
    before = connection.ops.adapt_datefield_value(today - dt.timedelta(days=FOLD_AFTER_DAYS - 1))
    past_shards = f"FROM {table} WHERE day < %s AND shard <> 0"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SELECT 1 {past_shards} FOR UPDATE", [before])
        cursor.execute(
            f"INSERT INTO {table} (organization_id, day, kind, model, shard, tokens, events) "
            "SELECT organization_id, day, kind, model, 0, SUM(tokens), SUM(events) "
            f"{past_shards} GROUP BY organization_id, day, kind, model "
            "ON CONFLICT (organization_id, day, kind, model, shard) DO UPDATE SET "
            f"tokens = {table}.tokens + excluded.tokens, events = {table}.events + excluded.events",
            [before],
        )
        cursor.execute(f"DELETE {past_shards}", [before])
        return cursor.rowcount


@dataclass(frozen=True)
class Mismatch:
    """One (organization, day, kind, model) where the rollup and its source disagree:
    (tokens, events) on each side, (0, 0) where a side has no row."""

    key: Key
    rollup: tuple[int, int]
    source: tuple[int, int]


def _totals(queryset, day_field: str, tokens, events) -> dict[Key, tuple[int, int]]:
    rows = (
        queryset.values_list("organization_id", day_field, "kind", "model")
        .annotate(t=tokens, n=events)
        .order_by()
    )
    return {(o, d, k, m): (int(t or 0), int(n or 0)) for o, d, k, m, t, n in rows}


def _compare(rollup: dict, source: dict) -> list[Mismatch]:
    return [
        Mismatch(key, rollup.get(key, (0, 0)), source.get(key, (0, 0)))
        for key in sorted(rollup.keys() | source.keys(), key=str)
        if rollup.get(key, (0, 0)) != source.get(key, (0, 0))
    ]


def rollup_mismatches(*, organization_id: int | None = None, against: str = "events"):
    """Where OrgDailyUsage differs from the sum of the usage events (`against="events"`: each
    event counted on its UTC day) or of DailyUsage (`against="daily"`); empty when consistent.

    Reads every event of the organization: a verification, not a page's query.
    """
    scope = {} if organization_id is None else {"organization_id": organization_id}
    rollup_rows = OrgDailyUsage.objects.filter(**scope)
    if against == "daily":
        source = _totals(DailyUsage.objects.filter(**scope), "day", Sum("tokens"), Sum("events"))
    else:
        events = UsageEvent.objects.filter(**scope).annotate(
            utc_day=TruncDate("created_at", tzinfo=dt.UTC)
        )
        # Months past the retention window kept their rollup but not their events.
        if (since := retained_since(timezone.now())) is not None:
            rollup_rows = rollup_rows.filter(day__gte=since)
            events = events.filter(created_at__gte=dt.datetime.combine(since, dt.time(), dt.UTC))
        source = _totals(events, "utc_day", Sum("tokens"), Count("id"))
    rollup = _totals(rollup_rows, "day", Sum("tokens"), Sum("events"))
    return _compare(rollup, source)


# --- Each member's lifetime total (Membership.total_used) -------------------------------------


def membership_totals_rebuild(*, organization_ids: Iterable[int] | None = None) -> int:
    """Set the members' totals (of the organizations given, all when None) to the sum of their
    MonthlyUsage there: for bulk writers of MonthlyUsage (seeds). Returns the members updated.

    One UPDATE with a correlated sum, each read from MonthlyUsage's unique index (user first).
    """
    members = Membership.objects.all()
    if organization_ids is not None:
        members = members.filter(organization_id__in=list(organization_ids))
    used = (
        MonthlyUsage.objects.filter(user=OuterRef("user"), organization=OuterRef("organization"))
        .order_by()
        .values("user")
        .annotate(total=Sum("used"))
        .values("total")
    )
    return members.update(total_used=Coalesce(Subquery(used), Value(0)))


@dataclass(frozen=True)
class TotalMismatch:
    """A member whose total differs from the sum of their usage in the organization."""

    organization_id: int
    user_id: int
    total: int
    source: int


def usage_total_mismatches(
    *, organization_id: int | None = None, against: str = "events"
) -> list[TotalMismatch]:
    """Members whose `total_used` differs from the sum of their usage events in their
    organization (`against="events"`) or of their MonthlyUsage there (`against="monthly"`);
    empty when consistent. Reads every event of the organization: a verification.

    Retention never lowers a total: for the months whose events it dropped, the events'
    side counts those months' MonthlyUsage instead (written with the events, kept).
    """
    scope = {} if organization_id is None else {"organization_id": organization_id}
    monthly = MonthlyUsage.objects.filter(**scope)
    if against == "monthly":
        parts = [(monthly, "used")]
    else:
        events = UsageEvent.objects.filter(**scope)
        parts = [(events, "tokens")]
        if (since := retained_since(timezone.now())) is not None:
            parts = [
                (events.filter(created_at__gte=dt.datetime.combine(since, dt.time(), dt.UTC)),
                 "tokens"),
                (monthly.filter(month__lt=since), "used"),
            ]  # fmt: skip
    sums: dict[tuple[int, int], int] = {}
    for rows, column in parts:
        for o, u, t in (
            rows.values_list("organization_id", "user_id").annotate(t=Sum(column)).order_by()
        ):
            sums[(o, u)] = sums.get((o, u), 0) + int(t)
    members = Membership.objects.filter(**scope).values_list(
        "organization_id", "user_id", "total_used"
    )
    return [
        TotalMismatch(o, u, total, sums.get((o, u), 0))
        for o, u, total in members.order_by("organization_id", "user_id").iterator()
        if total != sums.get((o, u), 0)
    ]
