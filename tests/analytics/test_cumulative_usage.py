"""Cumulative usage through closed months (analytics.cumulative): equal to the sum of
MonthlyUsage after every closing, rebuilt when a closed month is written into, and the
statistics page's numbers and HTML the same as when it read MonthlyUsage alone."""

import datetime as dt
import importlib
import json
import re
from types import SimpleNamespace

import pytest
import time_machine
from django.apps import apps
from django.db import connection
from django.db.models import Sum
from django.test import Client
from django.urls import reverse

from analytics import cumulative
from analytics.models import ClosedUsageMonth, CumulativeUsage
from analytics.selectors import statistics as statistics_selectors
from analytics.tasks import cumulative_usage_close
from asksage_admin.lib.months import add_months
from tests.factories import MembershipFactory, set_max, usage_recorded
from tokens.models import MonthlyUsage, UsageEvent
from tokens.services import api_keys as api_key_services

URL = reverse("analytics:statistics")
MARCH_18 = dt.datetime(2026, 3, 18, 12, tzinfo=dt.UTC)


def at(when: dt.datetime):
    return time_machine.travel(when, tick=False)


def running_totals(org) -> dict:
    return {
        (row.user_id, row.kind, row.month): row.total
        for row in CumulativeUsage.objects.filter(organization=org)
    }


def expected_running_totals(org, through: dt.date) -> dict:
    """The sum of each user's MonthlyUsage up to each month, from their first month on."""
    rows = MonthlyUsage.objects.filter(organization=org, month__lte=through)
    first = min(rows.values_list("month", flat=True), default=None)
    totals, month = {}, first
    while month is not None and month <= through:
        sums = (
            rows.filter(month__lte=month)
            .values_list("user_id", "kind")
            .annotate(total=Sum("used"))
            .order_by()
        )
        totals |= {(user, kind, month): total for user, kind, total in sums if total}
        month = add_months(month, 1)
    return totals


@pytest.fixture
def history(org_a, org_b, alice, bob, dave):
    """Fourteen months of usage in org A, across a year's end, and some in org B."""
    carl = MembershipFactory(organization=org_a, user__email="carl@example.com").user
    for n, day in enumerate(
        [dt.date(2025, 2, 3), dt.date(2025, 6, 30), dt.date(2025, 12, 31), dt.date(2026, 1, 1)]
        + [dt.date(2026, 2, 14), dt.date(2026, 3, 2), dt.date(2026, 3, 18)]
    ):
        usage_recorded(organization=org_a, user=bob, day=day, tokens=1_000 * (n + 1))
        usage_recorded(organization=org_a, user=alice, day=day, tokens=700 + n, kind="embedding")
    usage_recorded(organization=org_a, user=carl, day=dt.date(2025, 3, 9), tokens=9_999)
    usage_recorded(organization=org_a, user=carl, day=dt.date(2026, 2, 27), tokens=5)
    usage_recorded(organization=org_b, user=dave, day=dt.date(2025, 11, 5), tokens=424_242)
    return carl


def test_the_closing_writes_each_users_running_total_through_each_closed_month(
    org_a, org_b, history
):
    summary = cumulative.cumulative_close_due(MARCH_18)

    assert summary == "Closed 17 months in 2 organizations through 2026-02."
    for org in (org_a, org_b):
        assert running_totals(org) == expected_running_totals(org, dt.date(2026, 2, 1))
    assert not CumulativeUsage.objects.filter(month=dt.date(2026, 3, 1)).exists()
    assert ClosedUsageMonth.objects.filter(organization=org_b).count() == 2 * 4


def test_a_second_run_writes_nothing_and_a_late_one_catches_up_the_missed_months(org_a, history):
    cumulative.cumulative_close_due(dt.datetime(2025, 8, 10, tzinfo=dt.UTC))
    before = running_totals(org_a)

    assert cumulative.cumulative_close_due(dt.datetime(2025, 8, 11, tzinfo=dt.UTC)).startswith(
        "Closed 0 months"
    )
    assert running_totals(org_a) == before
    cumulative.cumulative_close_due(MARCH_18)  # September to February, missed
    assert running_totals(org_a) == expected_running_totals(org_a, dt.date(2026, 2, 1))


def test_a_month_closes_only_once_its_last_reports_can_have_committed(org_a, history):
    cumulative.cumulative_close_due(dt.datetime(2026, 3, 1, 0, 10, tzinfo=dt.UTC))
    assert ClosedUsageMonth.objects.filter(organization=org_a).latest("month").month == (
        dt.date(2026, 1, 1)
    )
    cumulative.cumulative_close_due(dt.datetime(2026, 3, 1, 0, 20, tzinfo=dt.UTC))
    assert ClosedUsageMonth.objects.filter(organization=org_a).latest("month").month == (
        dt.date(2026, 2, 1)
    )


def test_usage_written_into_a_closed_month_is_counted_by_the_next_closing(org_a, bob, history):
    """A report timed before midnight that commits after it, a bulk load, a restore: the
    closed month's totals changed, so the next closing rebuilds from that month on."""
    cumulative.cumulative_close_due(MARCH_18)
    usage_recorded(organization=org_a, user=bob, day=dt.date(2025, 12, 15), tokens=31_337)
    usage_recorded(organization=org_a, user=bob, day=dt.date(2024, 12, 15), tokens=1)

    cumulative.cumulative_close_due(MARCH_18)

    assert running_totals(org_a) == expected_running_totals(org_a, dt.date(2026, 2, 1))
    assert running_totals(org_a)[(bob.pk, "inference", dt.date(2024, 12, 1))] == 1


def test_the_task_closes_once_an_hour(org_a, history):
    with at(MARCH_18):
        assert cumulative_usage_close.enqueue().return_value.startswith("Closed 17 months")
        assert cumulative_usage_close.enqueue().return_value.endswith("ran already")
    assert running_totals(org_a) == expected_running_totals(org_a, dt.date(2026, 2, 1))


# The statistics page: the same numbers and HTML, the task run or not ----------------------

NOISE = re.compile(r'(csrfmiddlewaretoken" value="|nonce="|"X-CSRFToken": ")[^"]*')


def page(client, query: dict) -> str:
    response = client.get(URL, query)
    assert response.status_code == 200
    return NOISE.sub(r"\1", response.content.decode())


PERIODS = [
    {"range": "30"},
    {"range": "90"},
    {"range": "custom", "start": "2025-03-18", "end": "2026-03-18"},  # across 31 December
    {"range": "custom", "start": "2025-03-01", "end": "2026-02-28"},  # whole months only
]


@pytest.mark.parametrize(
    ("now", "closed_at"),
    [
        (MARCH_18, MARCH_18),
        # The 1st, before the close task ran: February is still read from MonthlyUsage.
        (
            dt.datetime(2026, 3, 1, 0, 5, tzinfo=dt.UTC),
            dt.datetime(2026, 3, 1, 0, 5, tzinfo=dt.UTC),
        ),
        # March due since this morning, the task not run since March.
        (dt.datetime(2026, 4, 1, 9, tzinfo=dt.UTC), MARCH_18),
    ],
)
def test_the_page_is_byte_for_byte_the_same_with_the_closed_months(
    alice_client, history, now, closed_at
):
    with at(now):
        before = [page(alice_client, query) for query in PERIODS]
        cumulative.cumulative_close_due(closed_at)
        after = [page(alice_client, query) for query in PERIODS]
    assert CumulativeUsage.objects.exists()
    assert after == before
    assert "carl@example.com" in after[2]


def test_the_year_reads_the_closed_months_and_its_numbers_match_monthly_usage(
    org_a, history, django_assert_num_queries
):
    with at(MARCH_18):
        cumulative.cumulative_close_due(MARCH_18)
        start, end = dt.date(2025, 3, 18), dt.date(2026, 3, 18)
        period = statistics_selectors.period_usage(org_a, start, end)
        expected = statistics_selectors.period_totals(period)
        old = statistics_selectors.top_users(org_a, start, end)
        with django_assert_num_queries(2):  # one reading (it added up), the names
            new = statistics_selectors.top_users(org_a, start, end, expected=expected)
        assert new == old
        assert [u["user__email"] for u in new][:1] == ["bob@example.com"]


def test_a_closed_month_written_into_is_read_from_monthly_usage_until_the_next_closing(
    org_a, bob, history, django_assert_num_queries
):
    with at(MARCH_18):
        cumulative.cumulative_close_due(MARCH_18)
        usage_recorded(organization=org_a, user=bob, day=dt.date(2025, 9, 15), tokens=900_000)
        start, end = dt.date(2025, 3, 18), dt.date(2026, 3, 18)
        expected = statistics_selectors.period_totals(
            statistics_selectors.period_usage(org_a, start, end)
        )
        with django_assert_num_queries(3):  # the cumulative reading, MonthlyUsage's, names
            top = statistics_selectors.top_users(org_a, start, end, expected=expected)
        assert top == statistics_selectors.top_users(org_a, start, end)
        assert top[0]["total"] == 900_000 + 2_000 + 3_000 + 4_000 + 5_000 + 6_000 + 7_000


def test_the_year_costs_no_more_queries_than_90_days(
    alice_client, org_a, history, django_assert_max_num_queries
):
    with at(MARCH_18):
        cumulative.cumulative_close_due(MARCH_18)
        alice_client.get(URL)  # the users at risk: their snapshot stored
        with django_assert_max_num_queries(17):
            alice_client.get(URL, PERIODS[2])
        with django_assert_max_num_queries(17):
            alice_client.get(URL, {"range": "90"})


@pytest.mark.django_db(transaction=True)
def test_usage_reported_through_the_api_over_months_closes_to_the_sum_of_its_events(
    org_a, alice, bob
):
    set_max(bob, 1_000_000)
    key = api_key_services.api_key_create(actor=alice, org=org_a, name="Gateway")[1]
    for n, when in enumerate(
        [
            dt.datetime(2025, 12, 31, 23, 59, tzinfo=dt.UTC),
            dt.datetime(2026, 1, 1, 0, 1, tzinfo=dt.UTC),
        ]
        + [dt.datetime(2026, 2, 10, 8, tzinfo=dt.UTC), dt.datetime(2026, 3, 2, 8, tzinfo=dt.UTC)]
    ):
        with at(when):
            response = Client().post(
                "/api/v1/usage",
                data=json.dumps(
                    {
                        "user": "bob@example.com",
                        "kind": "inference",
                        "tokens": 100 + n,
                        "model": "gpt-4o",
                    }
                ),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {key}",
                HTTP_IDEMPOTENCY_KEY=f"k-{n}",
            )
            assert response.status_code == 200, response.content

    cumulative.cumulative_close_due(MARCH_18)

    events = UsageEvent.objects.filter(
        organization=org_a, created_at__lt=dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    )
    assert (
        running_totals(org_a)[(bob.pk, "inference", dt.date(2026, 2, 1))]
        == (events.aggregate(t=Sum("tokens"))["t"])
    )
    assert running_totals(org_a)[(bob.pk, "inference", dt.date(2025, 12, 1))] == 100


def test_the_migration_backfills_what_the_closing_would_have_written(org_a, org_b, history):
    migration = importlib.import_module("analytics.migrations.0007_cumulative_usage")
    with at(MARCH_18):
        migration.backfill(apps, SimpleNamespace(connection=connection))
    backfilled = {org: running_totals(org) for org in (org_a, org_b)}
    marks = set(ClosedUsageMonth.objects.values_list("organization", "month", "kind", "used"))

    assert cumulative.cumulative_close_due(MARCH_18).startswith("Closed 0 months")
    assert backfilled[org_a] == expected_running_totals(org_a, dt.date(2026, 2, 1))
    assert backfilled[org_b] == expected_running_totals(org_b, dt.date(2026, 2, 1))
    CumulativeUsage.objects.all().delete()
    ClosedUsageMonth.objects.all().delete()
    cumulative.cumulative_close_due(MARCH_18)
    assert set(ClosedUsageMonth.objects.values_list("organization", "month", "kind", "used")) == (
        marks
    )
