"""Usage retention and the monthly partitions: old months of events go whole, with an audit
row each, their rollups stay; the partitions of the coming months exist before they are
needed (PostgreSQL; SQLite deletes by month and has no partitions)."""

import datetime as dt

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection

from analytics.selectors.statistics import period_usage, usage_by_month
from audit.models import AuditLog
from tests.factories import DailyUsageFactory, MonthlyUsageFactory, UsageEventFactory
from tokens import partitions
from tokens.models import OrgDailyUsage, PeriodicRun, UsageEvent, UsageEventKey
from tokens.retention import retained_since, usage_retention_apply
from tokens.rollup import org_daily_usage_rebuild, rollup_mismatches
from tokens.tasks import usage_partitions_sweep, usage_retention

NOW = dt.datetime(2026, 6, 17, 10, 30, tzinfo=dt.UTC)
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="partitions are PostgreSQL's"
)


def month(year: int, number: int) -> dt.date:
    return dt.date(year, number, 1)


def at(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def history(org_a, bob, clock, settings):
    """Bob's usage in February (past a 3-month window), March (kept) and June (now), with
    its rollups; on PostgreSQL each month in its own partition."""
    settings.USAGE_RETENTION_MONTHS = 3
    partitions.months_ensure(month(2026, 2), month(2026, 6))
    for day, count in [(dt.date(2026, 2, 27), 3), (dt.date(2026, 3, 1), 2), (NOW.date(), 1)]:
        for _ in range(count):
            UsageEventFactory(organization=org_a, user=bob, created_at=at(day), tokens=100)
        DailyUsageFactory(organization=org_a, user=bob, day=day, tokens=100 * count, events=count)
        MonthlyUsageFactory(organization=org_a, user=bob, month=day.replace(day=1), used=100)
    org_daily_usage_rebuild()


def test_retention_drops_the_months_past_the_window_and_keeps_their_rollups(history, org_a):
    assert retained_since(NOW) == month(2026, 3)

    assert usage_retention_apply(now=NOW) == [(month(2026, 2), 3)]

    days = sorted(e.created_at.date() for e in UsageEvent.objects.all())
    assert days == [dt.date(2026, 3, 1)] * 2 + [NOW.date()]
    # The statistics of February still read: its rollups stay.
    february = OrgDailyUsage.objects.get(organization=org_a, day=dt.date(2026, 2, 27))
    assert (february.tokens, february.events) == (300, 3)
    assert rollup_mismatches() == []  # the check skips months past the window
    (audit,) = AuditLog.objects.filter(action="usage.events_dropped")
    assert (audit.organization, audit.actor_label, audit.new_value) == (
        None,
        "usage retention",
        "2026-02",
    )
    assert audit.details["events"] == 3
    if connection.vendor == "postgresql":
        assert month(2026, 2) not in partitions.month_partitions(partitions.EVENTS)
        assert month(2026, 3) in partitions.month_partitions(partitions.EVENTS)


def test_the_statistics_of_a_dropped_month_still_read(history, org_a):
    before = period_usage(org_a, dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    usage_retention_apply(now=NOW)

    after = period_usage(org_a, dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    assert after == before and after.by_day[dt.date(2026, 2, 27)]["inference"] == 300
    assert usage_by_month(org_a)[month(2026, 2)]["inference"] == 100


def test_retention_run_again_finds_nothing_to_drop(history):
    usage_retention_apply(now=NOW)
    assert usage_retention_apply(now=NOW) == []
    assert AuditLog.objects.filter(action="usage.events_dropped").count() == 1


def test_the_nightly_task_runs_retention_once_a_night(history):
    assert usage_retention.enqueue().return_value.startswith("Dropped 1 month(s)")
    assert usage_retention.enqueue().return_value.endswith("ran already")
    assert PeriodicRun.objects.get(job="usage_retention").period == "2026-06-17"
    assert UsageEvent.objects.count() == 3


def test_a_retention_of_zero_keeps_every_event(history, settings):
    settings.USAGE_RETENTION_MONTHS = 0
    assert usage_retention_apply(now=NOW) == []
    assert UsageEvent.objects.count() == 6


def test_the_command_lists_then_drops(history, capsys):
    call_command("usage_retention", "--dry-run")
    assert "Kept from 2026-03; would drop: 2026-02." in capsys.readouterr().out
    assert UsageEvent.objects.count() == 6
    call_command("usage_retention")
    assert "Dropped 1 month(s) of usage events: 2026-02 (3 events)." in capsys.readouterr().out
    assert UsageEvent.objects.count() == 3


@postgres_only
def test_rows_the_default_partition_caught_go_with_their_month(org_a, bob, clock, settings):
    settings.USAGE_RETENTION_MONTHS = 3
    UsageEventFactory(organization=org_a, user=bob, created_at=at(dt.date(2025, 11, 3)))
    assert partitions.months_in_default(partitions.EVENTS) == [month(2025, 11)]

    assert usage_retention_apply(now=NOW) == [(month(2025, 11), 1)]
    assert not UsageEvent.objects.exists()
    assert partitions.months_in_default(partitions.EVENTS) == []


@postgres_only
def test_the_nightly_sweep_creates_the_coming_months_and_moves_strays(org_a, bob, clock):
    stray = UsageEventFactory(
        organization=org_a, user=bob, created_at=at(dt.date(2026, 7, 2)), idempotency_key="k7"
    )
    old_key = UsageEventFactory(
        organization=org_a, user=bob, created_at=at(dt.date(2026, 3, 9)), idempotency_key="k3"
    )
    partitions.months_ensure(month(2026, 3), month(2026, 3))
    in_march = UsageEventKey.objects.filter(month=month(2026, 3))
    assert in_march.get().id == old_key.pk

    summary = usage_partitions_sweep.enqueue().return_value

    events = partitions.month_partitions(partitions.EVENTS)
    keys = partitions.month_partitions(partitions.KEYS)
    assert {month(2026, 6), month(2026, 7), month(2026, 8)} <= events.keys()
    assert {month(2026, 5), month(2026, 6), month(2026, 7), month(2026, 8)} <= keys.keys()
    assert month(2026, 3) not in keys  # keys are kept for this month and the previous one
    assert not in_march.exists()
    assert "dropped 1 key partition(s): tokens_usagekey_2026_03" in summary
    # The stray July event (made before July existed) now sits in July's partition.
    assert partitions.months_in_default(partitions.EVENTS) == []
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM tokens_usageevent_2026_07")
        assert cursor.fetchall() == [(stray.pk,)]
    assert UsageEventKey.objects.get(idempotency_key="k7").id == stray.pk
    assert UsageEvent.objects.count() == 2
    # Run again the same night: nothing more.
    assert usage_partitions_sweep.enqueue().return_value.endswith("ran already")


@postgres_only
def test_an_event_of_a_month_without_partition_is_still_recorded(org_a, bob):
    far = at(dt.date(2031, 5, 1))
    event = UsageEventFactory(organization=org_a, user=bob, created_at=far)
    assert UsageEvent.objects.get(pk=event.pk).created_at == far
    assert month(2031, 5) in partitions.months_in_default(partitions.EVENTS)


def test_on_sqlite_the_sweep_deletes_the_keys_past_their_window(org_a, bob, clock):
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL drops the keys' partitions")
    for key, day in [("old", dt.date(2026, 4, 30)), ("may", dt.date(2026, 5, 2))]:
        UsageEventKey.objects.create(
            idempotency_key=key,
            organization=org_a,
            month=day.replace(day=1),
            id=1,
            created_at=at(day),
        )
    assert partitions.partitions_sweep(month=month(2026, 6)) == {
        "created": [],
        "dropped": ["1 key row(s)"],
    }
    assert list(UsageEventKey.objects.values_list("idempotency_key", flat=True)) == ["may"]
