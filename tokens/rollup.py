"""The organization-level usage rollup (OrgDailyUsage): rebuilding it and checking it.

The usage API maintains it row by row in the recording transaction (`usage_api.sqlite`,
`usage_api.postgres`); code that writes DailyUsage in bulk (the seed commands) rebuilds the
organization's rows from DailyUsage afterwards. `rollup_mismatches` is the consistency check:
the rollup must equal the sum of the usage events, per organization, UTC day, kind and model.
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from tokens.models import DailyUsage, OrgDailyUsage, UsageEvent
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
            "ON CONFLICT (organization_id, day, kind, model) DO UPDATE SET "
            f"tokens = {table}.tokens + excluded.tokens, events = {table}.events + excluded.events",
            [organization_id, connection.ops.adapt_datefield_value(day), kind, model]
            + [tokens, events],
        )


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
