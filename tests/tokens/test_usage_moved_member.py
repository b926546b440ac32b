"""Usage belongs to the organization it was recorded under (security review, issue 13 item 4).

Bob starts March 2026 in org B and uses 300,000 inference tokens there; on the 15th sales
moves him to org A, whose admin gives him 500,000; he then uses 200,000 more. Every row,
rollup and total keeps the two apart: org A sees 200,000, org B keeps 300,000, and his
balance is org A's (500,000 max, 200,000 used).

Both doors: the Django view (on PostgreSQL the shared statement of
tokens/usage_api/postgres.py, on SQLite the steps of tokens/usage_api/sqlite.py) and the ASGI
application (on PostgreSQL the batched fast path of tokens/usage_api/fastpath.py).
Transactional: the fast path sees only committed data.
"""

import datetime as dt
import json

import pytest
import time_machine
from django.core import mail
from django.http import QueryDict
from django.test import Client

from accounts.models import Membership
from analytics.selectors import exports as export_selectors
from analytics.selectors import forecast as forecast_selectors
from analytics.selectors import statistics as statistics_selectors
from tests.factories import MembershipFactory
from tokens import organizations, selectors
from tokens.models import DailyUsage, MonthlyUsage, UsageEvent
from tokens.selectors import pool_statuses, user_table_rows
from tokens.services import allocations as allocation_services
from tokens.services import api_keys as api_key_services
from tokens.services import auto_increase as auto_increase_services
from tokens.services import policy as policy_services
from tokens.usage_api.balance import balance_for

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/usage"
MARCH = dt.date(2026, 3, 1)
MARCH_10 = dt.datetime(2026, 3, 10, 9, tzinfo=dt.UTC)
MARCH_15 = dt.datetime(2026, 3, 15, 9, tzinfo=dt.UTC)
INF = "max_inference_tokens"


# `asgi` (the ASGI application's in-process client): tests/tokens/conftest.py.


@pytest.fixture(autouse=True)
def clock():
    """March 10th, 2026, ticking: the purchases the fixtures make start this month."""
    with time_machine.travel(MARCH_10, tick=True) as traveller:
        yield traveller


@pytest.fixture(params=["django", "asgi"])
def report(request, asgi):
    """Send one usage report through a door; returns (status, answer)."""

    def send(key: str, tokens: int, idempotency_key: str) -> tuple[int, dict]:
        payload = json.dumps(
            {"user": "bob@example.com", "kind": "inference", "tokens": tokens, "model": "gpt-4o"}
        )
        headers = {"authorization": f"Bearer {key}", "idempotency_key": idempotency_key}
        if request.param == "asgi":
            answer = asgi.request("POST", URL, payload, **headers)
            return answer.status, answer.json()
        response = Client().post(
            URL,
            data=payload,
            content_type="application/json",
            **{f"HTTP_{name.upper()}": value for name, value in headers.items()},
        )
        return response.status_code, response.json()

    return send


@pytest.fixture
def bob_in_b(org_b, carol, dave):
    return MembershipFactory(
        user__email="bob@example.com",
        user__name="Bob Member",
        organization=org_b,
        max_inference_tokens=400_000,
    ).user


def move_to(user, org, *, sales, admin, new_max: int) -> None:
    """Sales moves the member (leave one organization, join the other, as the staff admin's
    inline does); the new organization's admin then sets their max."""
    organizations.membership_remove(actor=sales, membership=Membership.objects.get(user=user))
    membership = organizations.membership_add(actor=sales, org=org, user=user)
    allocation_services.pending_edit_set(
        admin=admin, org=org, membership=membership, column=INF, value=new_max
    )
    allocation_services.allocation_batch_save(admin=admin, org=org, column=INF)


def inference(export) -> int:
    """The total of an export's "Tokens" column."""
    column = export.header.index("Tokens")
    return sum(row[column] for row in export.rows)


def test_usage_of_a_member_moved_mid_month_stays_with_the_organization_it_was_recorded_in(
    report, clock, org_a, org_b, alice, carol, bob_in_b, sam
):
    bob = bob_in_b
    key_a = api_key_services.api_key_create(actor=alice, org=org_a, name="Gateway A")[1]
    key_b = api_key_services.api_key_create(actor=carol, org=org_b, name="Gateway B")[1]

    assert report(key_b, 250_000, "b-1")[0] == 200
    clock.move_to(MARCH_15)
    status, answer = report(key_b, 50_000, "b-2")  # same day as the usage in A below
    assert (status, answer["used"], answer["max"]) == (200, 300_000, 400_000)

    move_to(bob, org_a, sales=sam, admin=alice, new_max=500_000)
    status, answer = report(key_a, 200_000, "a-1")

    # The balance is org A's: its max, and only what was used in A.
    assert status == 200, answer
    assert (answer["max"], answer["used"], answer["remaining"]) == (500_000, 200_000, 300_000)
    assert balance_for(org=org_a, email="bob@example.com")["inference"] == {
        "max": 500_000,
        "used": 200_000,
        "remaining": 300_000,
    }
    assert report(key_b, 1, "b-3")[0] == 404  # no longer org B's member
    home = selectors.member_home(bob, Membership.objects.get(user=bob))["kinds"][0]
    assert (home["used"], home["remaining"], home["total"]) == (200_000, 300_000, 200_000)

    # Every row belongs to one organization.
    assert dict(
        MonthlyUsage.objects.filter(user=bob).values_list("organization__slug", "used")
    ) == {"acme-agency": 200_000, "bureau-of-birds": 300_000}
    daily = DailyUsage.objects.filter(user=bob, day=MARCH_15.date())
    assert dict(daily.values_list("organization__slug", "tokens")) == {
        "acme-agency": 200_000,
        "bureau-of-birds": 50_000,
    }
    events = UsageEvent.objects.filter(user=bob).order_by("created_at")
    assert [(e.organization.slug, e.tokens) for e in events] == [
        ("bureau-of-birds", 250_000),
        ("bureau-of-birds", 50_000),
        ("acme-agency", 200_000),
    ]

    # Pools: each organization's used and allocated (org B's 400,000 are carol's and dave's).
    [pool_a] = [p for p in pool_statuses(org_a, with_used=True) if p.kind == "inference"]
    [pool_b] = [p for p in pool_statuses(org_b, with_used=True) if p.kind == "inference"]
    assert (pool_a.used, pool_a.allocated) == (200_000, 700_000)
    assert (pool_b.used, pool_b.allocated) == (300_000, 400_000)

    # User Management's table, and its export.
    row = user_table_rows(org_a).get(pk=bob.pk)
    assert (row.inf_used, row.inf_prev, row.total_used) == (200_000, 0, 200_000)
    assert not user_table_rows(org_b).filter(pk=bob.pk).exists()
    users = export_selectors.export_users(org_a, QueryDict(""))
    [bob_row] = [r for r in users.rows if r[1] == "bob@example.com"]
    named = dict(zip(users.header, bob_row, strict=True))
    assert (named["Inference used this month"], named["Total used"]) == (200_000, 200_000)

    # Statistics and the usage exports.
    march = QueryDict("range=custom&start=2026-03-01&end=2026-03-31")
    for org, expected in ((org_a, 200_000), (org_b, 300_000)):
        assert statistics_selectors.usage_by_month(org)[MARCH]["inference"] == expected
        by_day = statistics_selectors.period_usage(org, MARCH, dt.date(2026, 3, 31)).by_day
        assert sum(day["inference"] for day in by_day.values()) == expected
        top = statistics_selectors.top_users(org, MARCH, dt.date(2026, 3, 31))
        assert [r["total"] for r in top if r["user_id"] == bob.pk] == [expected]
        assert inference(export_selectors.export_usage_events(org, march)) == expected
        assert inference(export_selectors.export_daily_usage(org, march)) == expected
    _pools, at_risk = forecast_selectors.forecast(org_a)
    assert [(u.used, u.limit) for u in at_risk if u.user_id == bob.pk] == [(200_000, 500_000)]


@pytest.mark.django_db(transaction=False)
def test_usage_recorded_before_a_member_moved_here_triggers_no_alert_or_increase(
    org_a, org_b, alice, bob, django_capture_on_commit_callbacks
):
    """Bob used 195,000 in org B this month; in org A he has used nothing of his 200,000."""
    policy_services.policy_apply(admin=alice, org=org_a, preset="conservative")  # 90 %, +25 %
    MonthlyUsage.objects.create(organization=org_b, user=bob, kind="inference", month=MARCH)
    MonthlyUsage.objects.filter(organization=org_b).update(used=195_000)
    with django_capture_on_commit_callbacks(execute=True):
        assert auto_increase_services.auto_increase_apply(user=bob, kind="inference") is None
        auto_increase_services.auto_increase_run(org=org_a)
    assert Membership.objects.get(user=bob).max_inference_tokens == 200_000
    assert not [m for m in mail.outbox if "has used" in m.subject]
