"""Data migrations of the tokens app, run against today's models."""

import datetime as dt
import importlib

from django.apps import apps

from asksage_admin.lib.months import current_month
from tests.analytics.conftest import UsageEventFactory
from tests.factories import MonthlyUsageFactory
from tokens.models import UsageEvent

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
