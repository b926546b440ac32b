"""Migrations of the tokens app: data migrations run against today's models, schema ones
migrated back and forth."""

import datetime as dt
import importlib

import pytest
from django.apps import apps
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from asksage_admin.lib.months import current_month
from tests.factories import MonthlyUsageFactory, UsageEventFactory
from tokens.models import DailyUsage, MonthlyUsage, OrgDailyUsage, UsageEvent
from tokens.rollup import rollup_mismatches

backfill = importlib.import_module("tokens.migrations.0009_usage_event_balance_backfill")


def test_legacy_events_with_a_key_get_the_balance_their_retry_was_answered_with(bob, org_a):
    MonthlyUsageFactory(organization=org_a, user=bob, used=7_000)
    last_month = current_month() - dt.timedelta(days=1)
    MonthlyUsageFactory(organization=org_a, user=bob, used=3_000, month=last_month.replace(day=1))
    now = UsageEventFactory(organization=org_a, user=bob, idempotency_key="a")
    old = UsageEventFactory(
        organization=org_a,
        user=bob,
        idempotency_key="b",
        created_at=dt.datetime.combine(last_month, dt.time(12), tzinfo=dt.UTC),
    )
    keyless = UsageEventFactory(organization=org_a, user=bob)
    recorded = UsageEventFactory(
        organization=org_a, user=bob, idempotency_key="c", used_after=1, max_after=2
    )

    backfill.backfill(apps, None)

    balances = dict(UsageEvent.objects.values_list("pk", "used_after"))
    assert balances == {now.pk: 7_000, old.pk: 3_000, keyless.pk: None, recorded.pk: 1}
    limit = bob.membership.max_inference_tokens
    assert UsageEvent.objects.get(pk=now.pk).max_after == limit
    assert UsageEvent.objects.get(pk=keyless.pk).max_after is None


@pytest.fixture
def back_to_latest():
    """A test that migrates back leaves the database at today's migrations for the next tests
    (stopping at the migration it tests left the later ones' tables missing)."""
    yield
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_keying_the_usage_rollups_by_organization_keeps_every_row(
    org_a, org_b, bob, back_to_latest
):
    """0010 widens the rollups' unique keys to the organization: existing rows keep their data,
    and a member moved to another organization gets a row of their own there."""
    before = [("tokens", "0009_usage_event_balance_backfill")]
    after = [("tokens", "0010_usage_rollups_keyed_by_organization")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old = MigrationExecutor(connection).loader.project_state(before).apps
        month, day = dt.date(2026, 3, 1), dt.date(2026, 3, 10)
        old.get_model("tokens", "MonthlyUsage").objects.create(
            organization_id=org_b.pk, user_id=bob.pk, kind="inference", month=month, used=300
        )
        old.get_model("tokens", "DailyUsage").objects.create(
            organization_id=org_b.pk,
            user_id=bob.pk,
            kind="inference",
            model="gpt-4o",
            day=day,
            tokens=300,
            events=2,
        )
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(after)

    assert list(MonthlyUsage.objects.values_list("organization", "user", "month", "used")) == [
        (org_b.pk, bob.pk, month, 300)
    ]
    assert list(DailyUsage.objects.values_list("organization", "day", "tokens", "events")) == [
        (org_b.pk, day, 300, 2)
    ]
    MonthlyUsage.objects.create(
        organization=org_a, user=bob, kind="inference", month=month, used=200
    )
    DailyUsage.objects.create(
        organization=org_a, user=bob, kind="inference", model="gpt-4o", day=day, tokens=200
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        MonthlyUsage.objects.create(organization=org_a, user=bob, kind="inference", month=month)
    with pytest.raises(IntegrityError), transaction.atomic():
        DailyUsage.objects.create(
            organization=org_a, user=bob, kind="inference", model="gpt-4o", day=day
        )


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("back_to_latest")
def test_the_organization_rollup_is_backfilled_from_the_daily_rows(org_a, org_b, bob, alice, dave):
    """0016 sums the existing DailyUsage over users per organization, day, kind and model."""
    before = [("tokens", "0015_org_daily_usage_rollup")]
    after = [("tokens", "0016_org_daily_usage_backfill")]
    executor = MigrationExecutor(connection)
    executor.migrate([("tokens", "0014_staff_see_background_work")])
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(before)
    try:
        old = MigrationExecutor(connection).loader.project_state(before).apps
        daily = old.get_model("tokens", "DailyUsage")
        day = dt.date(2026, 3, 10)
        for org, user, model, tokens, events, on in [
            (org_a, bob, "gpt-4o", 300, 2, day),
            (org_a, alice, "gpt-4o", 700, 3, day),
            (org_a, alice, "embed-3", 40, 1, day),
            (org_a, bob, "gpt-4o", 5, 1, day - dt.timedelta(days=1)),
            (org_b, dave, "gpt-4o", 11, 1, day),
        ]:
            daily.objects.create(
                organization_id=org.pk,
                user_id=user.pk,
                kind="inference",
                model=model,
                day=on,
                tokens=tokens,
                events=events,
            )
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(after)

    rows = OrgDailyUsage.objects.values_list("organization", "day", "model", "tokens", "events")
    assert sorted(rows) == sorted(
        [
            (org_a.pk, day, "gpt-4o", 1_000, 5),
            (org_a.pk, day, "embed-3", 40, 1),
            (org_a.pk, day - dt.timedelta(days=1), "gpt-4o", 5, 1),
            (org_b.pk, day, "gpt-4o", 11, 1),
        ]
    )
    assert rollup_mismatches(against="daily") == []
