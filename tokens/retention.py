"""Usage retention: the raw usage events of months older than USAGE_RETENTION_MONTHS go, a
whole month at a time, each month with an audit row on the platform's chain.

The rollups stay (MonthlyUsage, DailyUsage, OrgDailyUsage): the statistics, the forecast and
the user table read them, never the events, so old months still read; only the per-event
detail (exports of those months, the events' admin) is gone. The current month and the
USAGE_RETENTION_MONTHS before it are kept; 0 keeps everything.

PostgreSQL: the month's partition is detached and dropped (`tokens.partitions`), never
emptied row by row; rows the DEFAULT partition caught are first moved into their month's
partition, so they go with it. SQLite has no partitions: there the month's events are
deleted, one DELETE per month (the embedded database of development and demos, not of a
platform that keeps years of events). Idempotent: a month gone is not found again.
"""

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.db.models.functions import TruncMonth

from asksage_admin.lib.audit_actions import AuditAction
from asksage_admin.lib.months import add_months, month_start
from audit.services import audit_record
from tokens import partitions
from tokens.models import UsageEvent

ACTOR = "usage retention"


def retained_since(now: dt.datetime) -> dt.date | None:
    """The first month whose events are kept (None: all are)."""
    months = settings.USAGE_RETENTION_MONTHS
    return add_months(month_start(now), -months) if months else None


def _utc(month: dt.date) -> dt.datetime:
    return dt.datetime.combine(month, dt.time(), tzinfo=dt.UTC)


def expired_months(now: dt.datetime) -> list[dt.date]:
    """The months of events older than the window, oldest first."""
    since = retained_since(now)
    if since is None:
        return []
    if partitions.is_partitioned():
        for stray in partitions.months_in_default(partitions.EVENTS):
            if stray < since:
                partitions.month_create(partitions.EVENTS, stray)
        return sorted(m for m in partitions.month_partitions(partitions.EVENTS) if m < since)
    months = (
        UsageEvent.objects.filter(created_at__lt=_utc(since))
        .annotate(month=TruncMonth("created_at", tzinfo=dt.UTC))
        .values_list("month", flat=True)
        .distinct()
    )
    return sorted({month_start(m) for m in months})


def usage_month_drop(*, month: dt.date) -> int:
    """Drop one month's events with its audit row; returns how many there were."""
    events = UsageEvent.objects.filter(
        created_at__gte=_utc(month), created_at__lt=_utc(add_months(month, 1))
    )
    count = events.count()  # before the lock: nothing is added to a month this old
    with transaction.atomic():
        if partitions.is_partitioned():
            partitions.month_drop(partitions.EVENTS, month)
        else:
            events._raw_delete(events.db)
        audit_record(
            action=AuditAction.USAGE_EVENTS_DROPPED,
            actor_label=ACTOR,
            new=f"{month:%Y-%m}",
            events=count,
            retention_months=settings.USAGE_RETENTION_MONTHS,
        )
    return count


def usage_retention_apply(*, now: dt.datetime) -> list[tuple[dt.date, int]]:
    """Drop every month older than the window, each in its own transaction (a failure keeps
    the months already dropped, and their audit rows). Returns (month, events) pairs."""
    with transaction.atomic():
        months = expired_months(now)
    return [(month, usage_month_drop(month=month)) for month in months]
