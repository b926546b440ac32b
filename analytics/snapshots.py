"""Snapshots of the forecast's "users at risk": computed by a periodic task, read by the page.

The list sums the last 7 days of every member whose month could reach their max: on the 1st
to the 6th of a month that counts all of last month, 7,400 of 20,000 members at 10 million
events, 1–2 s. The statistics page reads the organization's snapshot instead and says when it
was computed; `forecast_snapshots_refresh` (analytics.tasks, every 5 minutes) recomputes each
active organization's snapshot once it is FORECAST_SNAPSHOT_MAX_AGE_MINUTES old or from
another day, so the page never pays for it. Without a snapshot of the current month (a new
organization, a fresh install, the month's first minutes) the page computes it live once and
stores it. The pools' forecast stays live: it reads the organization's rollup, cheap.

Snapshots are bookkeeping (a cache of what the rollups say), not a user's write: no audit
row. Idempotent: a refresh replaces the organization's one row whole; two at once store the
same rows.
"""

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from accounts.models import Organization
from analytics.filters import today
from analytics.models import ForecastSnapshot
from analytics.selectors import forecast as forecast_selectors
from asksage_admin.lib.wording import counted

TASK_EVERY = dt.timedelta(minutes=5)  # analytics.tasks.forecast_snapshots_refresh's cron


@dataclass(frozen=True)
class UsersAtRisk:
    users: list[forecast_selectors.UserForecast]
    as_of: dt.datetime


def snapshot_refresh(*, org: Organization) -> ForecastSnapshot:
    """Compute the organization's users at risk now and store them (replacing the last)."""
    day = today()
    rows = forecast_selectors.users_at_risk_rows(org, day)
    snapshot = ForecastSnapshot(organization=org, day=day, computed_at=timezone.now(), rows=rows)
    # One INSERT … ON CONFLICT UPDATE: two refreshes at once cannot collide on the key.
    ForecastSnapshot.objects.bulk_create(
        [snapshot],
        update_conflicts=True,
        unique_fields=["organization"],
        update_fields=["day", "computed_at", "rows"],
    )
    return snapshot


def users_at_risk(org: Organization) -> UsersAtRisk:
    """The page's list: the stored snapshot, one query; computed and stored when there is
    none for this month (its `used` is the month's use, so last month's list says nothing)."""
    snapshot = ForecastSnapshot.objects.filter(organization=org).first()
    day = today()
    if snapshot is None or (snapshot.day.year, snapshot.day.month) != (day.year, day.month):
        snapshot = snapshot_refresh(org=org)
    users = forecast_selectors.user_forecasts(snapshot.rows, snapshot.day)
    return UsersAtRisk(users, snapshot.computed_at)


def snapshots_refresh_stale() -> str:
    """Recompute the snapshot of every active organization that has none, one from another
    day, or one that would pass FORECAST_SNAPSHOT_MAX_AGE_MINUTES before the next run."""
    now, day = timezone.now(), today()
    max_age = dt.timedelta(minutes=settings.FORECAST_SNAPSHOT_MAX_AGE_MINUTES)
    fresh = ForecastSnapshot.objects.filter(day=day, computed_at__gt=now - max_age + TASK_EVERY)
    stale = (
        Organization.objects.filter(status=Organization.Status.ACTIVE)
        .exclude(pk__in=fresh.values("organization_id"))
        .order_by("pk")
    )
    done = 0
    for org in stale:
        snapshot_refresh(org=org)
        done += 1
    return f"Refreshed {counted(done, 'forecast snapshot')}."
