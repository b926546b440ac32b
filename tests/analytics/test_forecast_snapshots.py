"""The forecast's users at risk as a snapshot: computed by a periodic task, read by the page
("as of"), equal to the live computation, computed live once when there is none."""

import datetime as dt

import pytest
import time_machine
from django.urls import reverse

from accounts.models import Organization
from analytics import snapshots
from analytics.models import ForecastSnapshot
from analytics.selectors import forecast as forecast_selectors
from analytics.tasks import forecast_snapshots_refresh
from tests.factories import MembershipFactory, OrganizationFactory, set_max, usage_recorded

URL = reverse("analytics:statistics")
NOON = dt.datetime(2026, 3, 18, 12, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOON, tick=False) as traveller:
        yield traveller


@pytest.fixture
def heavy(org_a, bob, alice):
    """Bob at 195,000 of his 200,000 (10,000 a day), alice at 3,460,000 of 3,500,000
    (embedding too), carol's fellow member of org_a idle: two users at risk, three rows."""
    today = NOON.date()
    set_max(bob, 200_000)
    set_max(alice, 3_500_000)
    set_max(alice, 10_000, column="max_embedding_tokens")
    for n in range(7):
        usage_recorded(organization=org_a, user=bob, tokens=10_000, day=today - dt.timedelta(n))
    usage_recorded(organization=org_a, user=bob, tokens=125_000, day=today.replace(day=2))
    usage_recorded(organization=org_a, user=alice, tokens=630_000, day=today)
    usage_recorded(organization=org_a, user=alice, tokens=2_830_000, day=today.replace(day=3))
    usage_recorded(organization=org_a, user=alice, kind="embedding", tokens=9_000, day=today)


def rows(users):
    return [(u.user_id, u.email, u.kind, u.used, u.limit, u.daily_rate, u.reaches) for u in users]


def test_the_snapshot_gives_the_same_users_and_numbers_as_the_live_computation(org_a, heavy):
    snapshots.snapshot_refresh(org=org_a)

    _pools, live = forecast_selectors.forecast(org_a)
    stored = snapshots.users_at_risk(org_a)

    assert len(live) == 3
    assert rows(stored.users) == rows(live)
    assert stored.as_of == NOON


def test_without_a_snapshot_the_page_computes_one_and_stores_it(alice_client, org_a, heavy):
    assert not ForecastSnapshot.objects.exists()

    response = alice_client.get(URL)

    assert [u.email for u in response.context["at_risk"]][:1] == ["alice@example.com"]
    snapshot = ForecastSnapshot.objects.get(organization=org_a)
    assert (snapshot.day, snapshot.computed_at) == (NOON.date(), NOON)
    assert 'As of <time datetime="2026-03-18T12:00:00Z"' in response.content.decode()


def test_the_page_reads_the_snapshot_and_says_when_it_was_computed(
    alice_client, org_a, bob, heavy, clock
):
    snapshots.snapshot_refresh(org=org_a)
    newcomer = MembershipFactory(organization=org_a, max_inference_tokens=50_000).user
    clock.shift(dt.timedelta(minutes=20))
    usage_recorded(organization=org_a, user=newcomer, tokens=49_000, day=NOON.date())

    response = alice_client.get(URL)

    assert newcomer.pk not in [u.user_id for u in response.context["at_risk"]]
    assert response.context["at_risk_as_of"] == NOON
    assert "As of <time" in response.content.decode()
    # The pools stay live: the newcomer's 49,000 are in today's pool rate already.
    pools = {p.kind: p for p in response.context["pools"]}
    assert pools["inference"].used == 195_000 + 3_460_000 + 49_000


def test_the_task_refreshes_a_snapshot_once_it_is_due_and_leaves_a_fresh_one(
    org_a, heavy, clock, settings
):
    settings.FORECAST_SNAPSHOT_MAX_AGE_MINUTES = 60
    snapshots.snapshot_refresh(org=org_a)
    newcomer = MembershipFactory(organization=org_a, max_inference_tokens=50_000).user
    usage_recorded(organization=org_a, user=newcomer, tokens=49_000, day=NOON.date())

    clock.shift(dt.timedelta(minutes=54))  # 59 minutes old at the next run: still fresh
    assert forecast_snapshots_refresh.enqueue().return_value == "Refreshed 0 forecast snapshots."
    assert ForecastSnapshot.objects.get(organization=org_a).computed_at == NOON

    clock.shift(dt.timedelta(minutes=1))  # would be 60 minutes old at the next run
    assert forecast_snapshots_refresh.enqueue().return_value == "Refreshed 1 forecast snapshot."
    stored = snapshots.users_at_risk(org_a)
    assert stored.as_of == NOON + dt.timedelta(minutes=55)
    assert newcomer.pk in [u.user_id for u in stored.users]
    assert rows(stored.users) == rows(forecast_selectors.forecast(org_a)[1])


def test_the_task_computes_missing_snapshots_of_active_organizations_only(org_a, org_b):
    suspended = OrganizationFactory(status=Organization.Status.SUSPENDED)

    forecast_snapshots_refresh.enqueue()

    assert set(ForecastSnapshot.objects.values_list("organization_id", flat=True)) == {
        org_a.pk,
        org_b.pk,
    }
    assert not ForecastSnapshot.objects.filter(organization=suspended).exists()


def test_the_task_recomputes_yesterdays_snapshot_after_midnight(org_a, heavy, clock):
    clock.move_to(dt.datetime(2026, 3, 18, 23, 58, tzinfo=dt.UTC))
    snapshots.snapshot_refresh(org=org_a)
    clock.move_to(dt.datetime(2026, 3, 19, 0, 1, tzinfo=dt.UTC))

    forecast_snapshots_refresh.enqueue()

    assert ForecastSnapshot.objects.get(organization=org_a).day == dt.date(2026, 3, 19)


def test_last_months_snapshot_is_not_shown_the_page_computes_this_months(
    alice_client, org_a, heavy, clock
):
    clock.move_to(dt.datetime(2026, 2, 27, 12, tzinfo=dt.UTC))
    snapshots.snapshot_refresh(org=org_a)  # February: nobody had used anything
    assert ForecastSnapshot.objects.get(organization=org_a).rows == []
    clock.move_to(NOON)

    response = alice_client.get(URL)

    assert len(response.context["at_risk"]) == 3
    assert response.context["at_risk_as_of"] == NOON


def test_another_organizations_snapshot_is_never_shown_nor_touched(
    carol_client, org_a, org_b, heavy, clock
):
    snapshots.snapshot_refresh(org=org_a)
    clock.shift(dt.timedelta(minutes=5))

    response = carol_client.get(URL)

    assert response.context["at_risk"] == []
    assert ForecastSnapshot.objects.get(organization=org_a).computed_at == NOON
    assert ForecastSnapshot.objects.get(organization=org_b).rows == []
    assert "alice@example.com" not in response.content.decode().split("forecast-title")[1][:4000]
