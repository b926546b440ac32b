"""The organization rollup (OrgDailyUsage) equals the sum of the usage events, per
organization, UTC day, kind and model, whichever door recorded them: the Django view
(SQLite steps or the PostgreSQL statement) or the fast path (PostgreSQL), with retries
answered without counting twice and reports arriving at once.

Transactional: the fast path's connections see only committed data.
"""

import datetime as dt
import json
import uuid
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Sum
from django.test import Client

from tests.concurrency import run_together
from tests.factories import DailyUsageFactory, MembershipFactory, set_max
from tokens.models import DailyUsage, OrgDailyUsage, UsageEvent
from tokens.rollup import org_daily_usage_rebuild, rollup_mismatches, usage_total_mismatches
from tokens.services import api_keys as api_key_services

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/usage"
FAST = connection.vendor == "postgresql"  # else the ASGI application is Django itself
LATE_EVENING = dt.datetime(2026, 3, 10, 23, 58, tzinfo=dt.UTC)


@pytest.fixture
def key_a(alice, org_a):
    return api_key_services.api_key_create(actor=alice, org=org_a, name="Gateway")[1]


def report(user="bob@example.com", kind="inference", tokens=1_000, model="gpt-4o") -> str:
    return json.dumps({"user": user, "kind": kind, "tokens": tokens, "model": model})


def headers(key: str, idempotency_key: str | None = None) -> dict:
    return {
        "authorization": f"Bearer {key}",
        "idempotency_key": idempotency_key or uuid.uuid4().hex,
    }


def via_view(key: str, payload: str, idempotency_key: str | None = None):
    meta = {f"HTTP_{k.upper()}": v for k, v in headers(key, idempotency_key).items()}
    return Client().post(URL, payload, content_type="application/json", **meta)


def rollup_rows(org) -> dict:
    """(tokens, events) per (day, kind, model), the key's shards summed (OrgDailyUsage.shard:
    on PostgreSQL each connection writes its own)."""
    rows: dict = {}
    for r in OrgDailyUsage.objects.filter(organization=org):
        tokens, events = rows.get((r.day, r.kind, r.model), (0, 0))
        rows[r.day, r.kind, r.model] = (tokens + r.tokens, events + r.events)
    return rows


def assert_consistent(org) -> None:
    assert rollup_mismatches(organization_id=org.pk) == []
    assert rollup_mismatches(organization_id=org.pk, against="daily") == []
    # And each member's lifetime total (tests/tokens/test_usage_totals.py).
    assert usage_total_mismatches(organization_id=org.pk) == []


def test_usage_through_the_view_is_summed_per_day_kind_and_model_and_retries_count_once(
    key_a, org_a, bob, alice
):
    set_max(bob, 1_000, "max_embedding_tokens")
    with time_machine.travel(LATE_EVENING, tick=True):
        answers = [
            via_view(key_a, report(tokens=1_000), "a"),
            via_view(key_a, report(user="alice@example.com", tokens=2_000), "b"),
            via_view(key_a, report(kind="embedding", model="embed-3", tokens=300), "c"),
            via_view(key_a, report(model="acme-o1", tokens=50), "d"),
            via_view(key_a, report(tokens=1_000), "a"),  # a retry: answered, not counted
        ]
    assert [a.status_code for a in answers] == [200] * 5
    assert answers[4].json()["replayed"] is True
    day = LATE_EVENING.date()
    assert rollup_rows(org_a) == {
        (day, "inference", "gpt-4o"): (3_000, 2),
        (day, "embedding", "embed-3"): (300, 1),
        (day, "inference", "acme-o1"): (50, 1),
    }
    assert_consistent(org_a)


def test_a_refused_report_leaves_the_rollup_unchanged(key_a, org_a, bob):
    set_max(bob, 1_000)
    assert via_view(key_a, report(tokens=800)).status_code == 200
    assert via_view(key_a, report(tokens=800)).status_code == 402
    assert rollup_rows(org_a) == {
        (UsageEvent.objects.get().created_at.date(), "inference", "gpt-4o"): (800, 1)
    }
    assert_consistent(org_a)


def test_the_fast_path_keeps_the_rollup_equal_to_the_events_with_retries_and_batches(
    asgi, key_a, org_a
):
    """Twenty members report at once (batched into few statements on PostgreSQL), over two
    models; then every report is retried at once: nothing is counted twice."""
    members = [MembershipFactory(organization=org_a).user for _ in range(20)]

    def send_all():
        return asgi.gather(
            asgi.arequest(
                "POST",
                URL,
                report(user=m.email, tokens=10 + i, model=("gpt-4o", "acme-o1")[i % 2]),
                **headers(key_a, f"r{i}"),
            )
            for i, m in enumerate(members)
        )

    first = send_all()
    retries = send_all()

    assert [a.status for a in first] == [200] * 20
    assert [a.json()["replayed"] for a in retries] == [True] * 20
    totals = {
        model: (tokens, events) for (_, _, model), (tokens, events) in rollup_rows(org_a).items()
    }
    assert totals == {
        "gpt-4o": (sum(10 + i for i in range(0, 20, 2)), 10),
        "acme-o1": (sum(10 + i for i in range(1, 20, 2)), 10),
    }
    assert_consistent(org_a)


def test_both_doors_add_to_the_same_rollup_key(asgi, key_a, org_a, bob):
    assert asgi.request("POST", URL, report(tokens=400), **headers(key_a)).status == 200
    assert via_view(key_a, report(tokens=600)).status_code == 200

    assert list(rollup_rows(org_a).values()) == [(1_000, 2)]
    assert_consistent(org_a)


def test_concurrent_reports_of_many_users_lose_nothing_in_the_shared_rollup_key(key_a, org_a):
    """Every report adds to the same (organization, day, kind, model) at once."""
    members = [MembershipFactory(organization=org_a).user for _ in range(8)]

    def work(member, tokens):
        return lambda: via_view(key_a, report(user=member.email, tokens=tokens)).status_code

    outcomes = run_together(*(work(m, 100 + i) for i, m in enumerate(members)))

    assert outcomes == [("ok", 200)] * 8
    assert list(rollup_rows(org_a).values()) == [(sum(100 + i for i in range(8)), 8)]
    assert_consistent(org_a)


def test_the_check_names_each_difference_and_the_command_fails_on_it(key_a, org_a, bob):
    assert via_view(key_a, report(tokens=1_000)).status_code == 200
    OrgDailyUsage.objects.filter(organization=org_a).update(tokens=999)

    [mismatch] = rollup_mismatches(organization_id=org_a.pk)
    assert (mismatch.key[0], mismatch.rollup, mismatch.source) == (org_a.pk, (999, 1), (1_000, 1))
    with pytest.raises(CommandError, match="1 rollup row"):
        call_command("verify_usage_rollup", "--org", org_a.slug, stdout=StringIO())


def test_the_command_repairs_the_rollup_from_the_daily_rows(key_a, org_a, bob):
    assert via_view(key_a, report(tokens=1_000)).status_code == 200
    OrgDailyUsage.objects.all().delete()
    out = StringIO()

    call_command("verify_usage_rollup", "--repair", stdout=out)

    assert "equals the sum of events" in out.getvalue()
    assert_consistent(org_a)


def test_rebuilding_one_organization_leaves_the_others_alone(org_a, org_b, bob, dave):
    DailyUsageFactory(organization=org_a, user=bob, tokens=10)
    DailyUsageFactory(organization=org_b, user=dave, tokens=20)
    OrgDailyUsage.objects.filter(organization=org_a).update(tokens=1)

    assert org_daily_usage_rebuild(organization_ids=[org_a.pk]) == 1

    assert OrgDailyUsage.objects.get(organization=org_a).tokens == 10
    assert OrgDailyUsage.objects.get(organization=org_b).tokens == 20


def test_the_factory_keeps_the_rollup_equal_to_the_daily_rows(org_a, bob, alice):
    DailyUsageFactory(organization=org_a, user=bob, tokens=10, events=2)
    DailyUsageFactory(organization=org_a, user=alice, tokens=5, events=1)

    assert OrgDailyUsage.objects.get().tokens == DailyUsage.objects.aggregate(t=Sum("tokens"))["t"]
    assert rollup_mismatches(against="daily") == []
