"""Usage retention and the monthly partitions: old months of events go whole, with an audit
row each, their rollups stay; the partitions of the coming months exist before they are
needed. Every test runs on both databases: PostgreSQL drops partitions, SQLite (no
partitions) deletes by month; each asserts what is true of its own."""

import datetime as dt

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection

from analytics.selectors.statistics import period_usage, usage_by_month
from audit.models import AuditLog
from tests.factories import UsageEventFactory, usage_recorded
from tokens import partitions
from tokens.models import OrgDailyUsage, PeriodicRun, UsageEvent, UsageEventKey
from tokens.retention import retained_since, usage_retention_apply
from tokens.rollup import org_daily_usage_rebuild, rollup_mismatches
from tokens.tasks import usage_partitions_sweep, usage_retention

NOW = dt.datetime(2026, 6, 17, 10, 30, tzinfo=dt.UTC)
PARTITIONED = connection.vendor == "postgresql"


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
    its rollups, daily and monthly in agreement as the recording writes them; on PostgreSQL
    each month in its own partition."""
    settings.USAGE_RETENTION_MONTHS = 3
    partitions.months_ensure(month(2026, 2), month(2026, 6))
    for day, count in [(dt.date(2026, 2, 27), 3), (dt.date(2026, 3, 1), 2), (NOW.date(), 1)]:
        for _ in range(count):
            UsageEventFactory(organization=org_a, user=bob, created_at=at(day), tokens=100)
        usage_recorded(organization=org_a, user=bob, day=day, tokens=100 * count, events=count)
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
    if PARTITIONED:
        assert month(2026, 2) not in partitions.month_partitions(partitions.EVENTS)
        assert month(2026, 3) in partitions.month_partitions(partitions.EVENTS)


def test_the_statistics_of_a_dropped_month_still_read(history, org_a):
    before = period_usage(org_a, dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    usage_retention_apply(now=NOW)

    after = period_usage(org_a, dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    assert after == before and after.by_day[dt.date(2026, 2, 27)]["inference"] == 300
    assert usage_by_month(org_a)[month(2026, 2)]["inference"] == 300


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


def test_rows_the_default_partition_caught_go_with_their_month(org_a, bob, clock, settings):
    """A month older than any partition: PostgreSQL's DEFAULT partition caught its row, and
    retention drops it from there; SQLite deletes it by month like any other."""
    settings.USAGE_RETENTION_MONTHS = 3
    UsageEventFactory(organization=org_a, user=bob, created_at=at(dt.date(2025, 11, 3)))
    if PARTITIONED:
        assert partitions.months_in_default(partitions.EVENTS) == [month(2025, 11)]

    assert usage_retention_apply(now=NOW) == [(month(2025, 11), 1)]
    assert not UsageEvent.objects.exists()
    if PARTITIONED:
        assert partitions.months_in_default(partitions.EVENTS) == []


def claim_on_sqlite(event: UsageEvent) -> None:
    """The event's key claims, as SQLite's recording writes them (`tokens.usage_api.sqlite`);
    PostgreSQL's trigger wrote them already with the event."""
    if PARTITIONED:
        return
    for key_month in UsageEventKey.months_claimed(event.created_at):
        UsageEventKey.objects.create(
            idempotency_key=event.idempotency_key,
            organization_id=event.organization_id,
            month=key_month,
            id=event.pk,
            created_at=event.created_at,
        )


def test_the_nightly_sweep_keeps_the_keys_of_this_month_and_the_previous_only(org_a, bob, clock):
    """The keys of March go, May's (the previous month) and July's stay, every event stays:
    PostgreSQL drops March's key partition, creates the coming months and moves the stray July
    event (made before July existed) into its partition; SQLite deletes March's key rows."""
    stray = UsageEventFactory(
        organization=org_a, user=bob, created_at=at(dt.date(2026, 7, 2)), idempotency_key="k7"
    )
    old_key = UsageEventFactory(
        organization=org_a, user=bob, created_at=at(dt.date(2026, 3, 9)), idempotency_key="k3"
    )
    may = UsageEventFactory(
        organization=org_a, user=bob, created_at=at(dt.date(2026, 5, 2)), idempotency_key="k5"
    )
    for event in (stray, old_key, may):
        claim_on_sqlite(event)
    partitions.months_ensure(month(2026, 3), month(2026, 3))
    in_march = UsageEventKey.objects.filter(month=month(2026, 3))
    assert in_march.get().id == old_key.pk

    summary = usage_partitions_sweep.enqueue().return_value

    assert not in_march.exists()
    assert sorted(UsageEventKey.objects.values_list("idempotency_key", flat=True)) == ["k5", "k7"]
    assert UsageEventKey.objects.get(idempotency_key="k7").id == stray.pk
    assert UsageEvent.objects.count() == 3
    if PARTITIONED:
        events = partitions.month_partitions(partitions.EVENTS)
        keys = partitions.month_partitions(partitions.KEYS)
        assert {month(2026, 6), month(2026, 7), month(2026, 8)} <= events.keys()
        assert {month(2026, 5), month(2026, 6), month(2026, 7), month(2026, 8)} <= keys.keys()
        assert month(2026, 3) not in keys  # keys are kept for this month and the previous one
        assert "dropped 1 key partition(s): tokens_usagekey_2026_03" in summary
        assert partitions.months_in_default(partitions.EVENTS) == []
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM tokens_usageevent_2026_07")
            assert cursor.fetchall() == [(stray.pk,)]
    else:  # no partitions to create: the sweep deletes the key rows past the window
        assert summary == "Created 0 partition(s): none; dropped 1 key partition(s): 1 key row(s)."
    # Run again the same night: nothing more.
    assert usage_partitions_sweep.enqueue().return_value.endswith("ran already")


def test_an_event_of_a_month_without_partition_is_still_recorded(org_a, bob):
    far = at(dt.date(2031, 5, 1))
    event = UsageEventFactory(organization=org_a, user=bob, created_at=far)
    assert UsageEvent.objects.get(pk=event.pk).created_at == far
    if PARTITIONED:  # caught by the DEFAULT partition until the sweep creates May 2031
        assert month(2031, 5) in partitions.months_in_default(partitions.EVENTS)
