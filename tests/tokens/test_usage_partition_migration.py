"""Migrations 0017 and 0018 on a database holding usage events: every row and id kept, the
sequence carries on, the keys of recent events still answer retries; on PostgreSQL the table
comes out partitioned by month (SQLite keeps its plain table)."""

import datetime as dt
import json

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.utils import timezone

from asksage_admin.lib.months import add_months, month_start
from tests.factories import used
from tokens import partitions
from tokens.models import UsageEvent, UsageEventKey
from tokens.services import api_keys

BEFORE = [("tokens", "0016_org_daily_usage_backfill")]
# Pinned mid-month: "this month" is read before the migration runs and after it; a month's end
# between the two would move the partitions and the keys kept from under the assertions.
pytestmark = pytest.mark.usefixtures("mid_month")


def _migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def _latest() -> list[tuple[str, str]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def _insert_old_events(org_id: int, user_id: int, rows: list[tuple[dt.datetime, str]]) -> None:
    """As the code before 0017 wrote them, straight into the unpartitioned table."""
    with connection.cursor() as cursor:
        for created_at, key in rows:
            cursor.execute(
                "INSERT INTO tokens_usageevent (organization_id, user_id, kind, tokens, model, "
                "created_at, idempotency_key, request_hash, used_after, max_after) "
                "VALUES (%s, %s, 'inference', 100, 'gpt-4o', %s, %s, %s, 100, 200000)",
                [org_id, user_id, created_at, key, "h-" + key if key else ""],
            )


@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_every_event_and_its_id_and_recent_keys_still_answer(org_a, alice, bob):
    now = timezone.now()
    this_month = month_start(now)
    long_ago = dt.datetime.combine(add_months(this_month, -14), dt.time(9), tzinfo=dt.UTC)
    last_month = dt.datetime.combine(add_months(this_month, -1), dt.time(9), tzinfo=dt.UTC)
    _migrate(BEFORE)
    try:
        _insert_old_events(
            org_a.pk,
            bob.pk,
            [(long_ago, "old-key"), (long_ago, ""), (last_month, "recent-key"), (now, "")],
        )
        before = sorted(
            UsageEvent.objects.values_list("id", "created_at", "idempotency_key", "tokens")
        )
    finally:
        _migrate(_latest())

    after = sorted(UsageEvent.objects.values_list("id", "created_at", "idempotency_key", "tokens"))
    assert after == before and len(after) == 4
    # The keys of the current and the previous month are claimed; older ones are not needed.
    assert list(UsageEventKey.objects.values_list("idempotency_key", "id")) == [
        ("recent-key", next(row[0] for row in before if row[2] == "recent-key"))
    ]
    # The sequence carries on past the copied ids.
    raw_key = api_keys.api_key_create(actor=alice, org=org_a, name="Gateway")[1]
    payload = {"user": bob.email, "kind": "inference", "tokens": 5, "model": "gpt-4o"}

    def report(key: str):
        return Client().post(
            "/api/v1/usage",
            json.dumps(payload),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {raw_key}",
            HTTP_IDEMPOTENCY_KEY=key,
        )

    fresh = report("after-upgrade")
    assert fresh.status_code == 200, fresh.content
    assert fresh.json()["event_id"] > max(row[0] for row in before)
    assert report("after-upgrade").json()["replayed"] is True
    assert used(bob) == 5
    if connection.vendor == "postgresql":
        assert partitions.is_partitioned(partitions.EVENTS)
        assert partitions.is_partitioned(partitions.KEYS)
        made = partitions.month_partitions(partitions.EVENTS)
        for wanted in (add_months(this_month, -14), add_months(this_month, -1), this_month):
            assert wanted in made
        assert add_months(this_month, 2) in made  # and ahead
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {partitions.default_name(partitions.EVENTS)}")
            assert cursor.fetchone() == (0,)


@pytest.mark.django_db(transaction=True)
def test_the_migration_reverses_to_a_plain_table_with_every_row(org_a, bob):
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tokens_usageevent (organization_id, user_id, kind, tokens, model, "
            "created_at, idempotency_key, request_hash) "
            "VALUES (%s, %s, 'inference', 7, 'gpt-4o', %s, 'k', 'h') RETURNING id",
            [org_a.pk, bob.pk, now],
        )
        (event_id,) = cursor.fetchone()
    _migrate(BEFORE)
    try:
        assert not partitions.is_partitioned(partitions.EVENTS)
        assert list(UsageEvent.objects.values_list("id", "tokens")) == [(event_id, 7)]
    finally:
        _migrate(_latest())
    assert list(UsageEvent.objects.values_list("id", "tokens")) == [(event_id, 7)]
