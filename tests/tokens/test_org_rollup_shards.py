"""The organization rollup's shards (OrgDailyUsage.shard): concurrent usage statements of one
organization do not queue on its rollup rows, the sums stay the events', and the nightly fold
puts past days back to one row per organization, day, kind and model."""

import datetime as dt
import json
import uuid

import psycopg
import pytest
from django.db import connection
from django.db.models import Sum
from django.test import Client

from asksage_admin.lib.months import current_month
from tests.factories import set_max
from tokens.models import ORG_DAILY_SHARDS, MonthlyUsage, OrgDailyUsage, UsageEvent
from tokens.rollup import org_daily_usage_fold, rollup_mismatches
from tokens.services import api_keys as api_key_services
from tokens.tasks import org_daily_usage_fold_nightly
from tokens.usage_api import pool, postgres
from tokens.usage_api.keys import api_key_hash
from tokens.usage_api.results import UsageRequest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("mid_month")]


@pytest.fixture
def key_a(alice, org_a):
    return api_key_services.api_key_create(actor=alice, org=org_a, name="Gateway")[1]


@pytest.fixture
def members(org_a, alice, bob):
    for user in (alice, bob):
        set_max(user, 1_000_000)
        MonthlyUsage.objects.create(
            organization=org_a, user=user, kind="inference", month=current_month(), used=0
        )
    return alice, bob


def _params(key: str, email: str, tokens: int) -> dict:
    usage = UsageRequest(email=email, kind="inference", tokens=tokens, model="gpt-4o")
    report = postgres.Report(api_key_hash(key), usage, uuid.uuid4().hex)
    return postgres.params([report], dt.datetime.now(dt.UTC))


def _connections_in_two_shards() -> tuple[psycopg.Connection, psycopg.Connection]:
    """Two connections whose backends write different shards (pid modulo the shards)."""
    opened = []
    try:
        while len(opened) < 4 * ORG_DAILY_SHARDS:
            conn = psycopg.connect(pool.conninfo_from_django(), autocommit=True)
            opened.append(conn)
            first = opened[0]
            shard = conn.info.backend_pid % ORG_DAILY_SHARDS
            if shard != first.info.backend_pid % ORG_DAILY_SHARDS:
                for other in opened[1:-1]:
                    other.close()
                return first, conn
        raise AssertionError("no two connections in different shards")
    except BaseException:
        for conn in opened:
            conn.close()
        raise


def test_a_usage_statement_does_not_wait_for_another_statements_uncommitted_rollup_row(
    key_a, members, org_a
):
    alice, bob = members
    if connection.vendor != "postgresql":
        # One writer at a time on SQLite: its reports write shard 0.
        for user in (alice, bob):
            payload = {"user": user.email, "kind": "inference", "tokens": 10, "model": "gpt-4o"}
            Client().post(
                "/api/v1/usage",
                json.dumps(payload),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {key_a}",
                HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
            )
        assert set(OrgDailyUsage.objects.values_list("shard", flat=True)) == {0}
        assert OrgDailyUsage.objects.get().tokens == 20
        return
    first, second = _connections_in_two_shards()
    with first, second:
        second.execute("SET lock_timeout = '3s'")
        with first.transaction():
            # Alice's report is counted and its rollup row stays locked until this commits.
            row = first.execute(postgres.ONE_SQL, _params(key_a, alice.email, 10)).fetchone()
            assert postgres.Row._make(row).used == 10
            # With one row per (organization, day, kind, model), Bob's statement would wait
            # here for that commit (and time out).
            row = second.execute(postgres.ONE_SQL, _params(key_a, bob.email, 20)).fetchone()
            assert postgres.Row._make(row).used == 20
    shards = sorted(OrgDailyUsage.objects.values_list("shard", "tokens"))
    assert len(shards) == 2 and sum(tokens for _, tokens in shards) == 30
    assert rollup_mismatches(organization_id=org_a.pk) == []


def _row(org, day, shard, tokens, events, model="gpt-4o"):
    return OrgDailyUsage(
        organization=org,
        day=day,
        kind="inference",
        model=model,
        shard=shard,
        tokens=tokens,
        events=events,
    )


def test_folding_leaves_one_row_per_key_for_past_days_with_the_same_sums(org_a, org_b):
    today = dt.date(2026, 12, 15)
    old, yesterday = dt.date(2026, 12, 10), dt.date(2026, 12, 14)
    OrgDailyUsage.objects.bulk_create(
        [
            *(_row(org_a, old, shard, 100 * (shard + 1), shard + 1) for shard in range(4)),
            _row(org_a, old, 2, 7, 1, model="o1"),  # no shard 0 yet for this key
            _row(org_b, old, 0, 5, 1),
            _row(org_b, old, 3, 6, 1),
            # Yesterday and today may still be written by a statement in flight: untouched.
            _row(org_a, yesterday, 0, 1, 1),
            _row(org_a, yesterday, 1, 2, 1),
            _row(org_a, today, 3, 3, 1),
        ]
    )
    before = OrgDailyUsage.objects.aggregate(t=Sum("tokens"), n=Sum("events"))

    # Folded away: shards 1-3 of gpt-4o and shard 2 of o1 (org_a), shard 3 (org_b)
    assert org_daily_usage_fold(today=today) == 5

    rows = sorted(
        OrgDailyUsage.objects.values_list("organization", "day", "model", "shard", "tokens")
    )
    assert rows == sorted(
        [
            (org_a.pk, old, "gpt-4o", 0, 1_000),
            (org_a.pk, old, "o1", 0, 7),
            (org_b.pk, old, "gpt-4o", 0, 11),
            (org_a.pk, yesterday, "gpt-4o", 0, 1),
            (org_a.pk, yesterday, "gpt-4o", 1, 2),
            (org_a.pk, today, "gpt-4o", 3, 3),
        ]
    )
    assert OrgDailyUsage.objects.get(organization=org_a, day=old, model="gpt-4o").events == 10
    assert OrgDailyUsage.objects.aggregate(t=Sum("tokens"), n=Sum("events")) == before
    assert org_daily_usage_fold(today=today) == 0  # nothing left to fold


def test_the_nightly_fold_runs_once_a_day(org_a):
    OrgDailyUsage.objects.bulk_create(
        [_row(org_a, dt.date(2020, 1, 1), 0, 1, 1), _row(org_a, dt.date(2020, 1, 1), 1, 2, 1)]
    )
    first = org_daily_usage_fold_nightly.enqueue().return_value
    assert first == "Folded 1 organization rollup row(s) into shard 0."
    OrgDailyUsage.objects.create(
        organization=org_a, day=dt.date(2020, 1, 2), kind="inference", model="x", shard=2
    )
    assert "already" in org_daily_usage_fold_nightly.enqueue().return_value.lower()
    assert OrgDailyUsage.objects.filter(shard=2).count() == 1
    assert UsageEvent.objects.count() == 0
