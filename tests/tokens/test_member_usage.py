"""The member's own usage on their home page: per day, per model and per kind, over this month
or the last 7/30/90 UTC days; only their own rows, in their own organization."""

import datetime as dt

import pytest
import time_machine
from django.urls import reverse

from asksage_admin.lib import charts
from tests.factories import (
    DailyUsageFactory,
    MembershipFactory,
    PlatformModelFactory,
    UserFactory,
)
from tokens import selectors
from tokens.services import requests as request_services
from tokens.services.model_access import ROLES_MODE, model_access_set

# Mid-month, so "this month" and "the last 7 days" differ; the clock is pinned in every test.
NOW = dt.datetime(2026, 5, 20, 12, 0, tzinfo=dt.UTC)
TODAY = NOW.date()


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False):
        yield


def used(user, day, tokens, model="gpt-4o", kind="inference", events=1):
    org = user.membership.organization
    return DailyUsageFactory(
        user=user, organization=org, day=day, tokens=tokens, model=model, kind=kind, events=events
    )


def home(client, user, **query):
    client.force_login(user)
    response = client.get(reverse("member:home"), query)
    assert response.status_code == 200
    return response


def test_the_member_sees_their_usage_by_day_model_and_kind_this_month(client, bob):
    used(bob, TODAY, 1_234_567, model="claude-sonnet", events=3)
    used(bob, TODAY - dt.timedelta(days=2), 40_000, model="gpt-4o")
    used(bob, TODAY - dt.timedelta(days=2), 5_000, model="text-embed-3", kind="embedding")
    page = home(client, bob).content.decode()
    assert "Your usage" in page
    assert "2026-05-01 to 2026-05-20" in page
    assert "Wed 2026-05-20" in page and "Mon 2026-05-18" in page  # the per-day table
    assert "1,234,567" in page and "45,000" in page  # 18 May: 40,000 + 5,000
    assert "claude-sonnet" in page and "text-embed-3" in page
    assert "1,279,567" in page  # the period's total
    assert 'id="usage-day-chart-title"' in page  # the chart is drawn


def test_usage_by_model_adds_the_days_up_and_sorts_the_largest_first(bob):
    used(bob, TODAY, 10, model="small")
    used(bob, TODAY, 500, model="big", events=2)
    used(bob, TODAY - dt.timedelta(days=1), 700, model="big", events=5)
    usage = selectors.member_usage(bob, bob.membership, TODAY - dt.timedelta(days=6), TODAY)
    assert [(m["model"], m["tokens"], m["events"]) for m in usage.by_model] == [
        ("big", 1_200, 7),
        ("small", 10, 1),
    ]
    assert usage.by_kind == {"inference": 1_210, "embedding": 0}
    assert len(usage.by_day) == 7 and usage.by_day[TODAY]["inference"] == 510


def test_a_chosen_period_leaves_out_older_days(client, bob):
    used(bob, TODAY - dt.timedelta(days=10), 777_777)
    used(bob, TODAY - dt.timedelta(days=3), 333_333)
    page = home(client, bob, range="7").content.decode()
    assert "2026-05-14 to 2026-05-20" in page
    assert "333,333" in page and "777,777" not in page
    page = home(client, bob, range="90").content.decode()
    assert "2026-02-20 to 2026-05-20" in page and "777,777" in page


def test_another_members_usage_never_shows(client, bob, dave, org_a):
    ann = UserFactory(email="ann@example.com", name="Ann Other")
    MembershipFactory(user=ann, organization=org_a)
    used(ann, TODAY, 999_111, model="ann-private-model")  # same organization
    used(dave, TODAY, 888_222, model="dave-private-model")  # another organization
    used(bob, TODAY, 12_345)
    page = home(client, bob, range="90").content.decode()
    assert "12,345" in page
    for other in ("999,111", "ann-private-model", "888,222", "dave-private-model"):
        assert other not in page


def test_usage_recorded_in_an_organization_the_member_left_does_not_show(bob, org_b):
    DailyUsageFactory(user=bob, organization=org_b, day=TODAY, tokens=4_444, model="old-org")
    usage = selectors.member_usage(bob, bob.membership, TODAY.replace(day=1), TODAY)
    assert usage.total == 0 and usage.by_model == []


def test_an_empty_period_says_so_in_words(client, bob):
    used(bob, TODAY - dt.timedelta(days=40), 5_000)  # before this month
    page = home(client, bob).content.decode()
    assert "You used no tokens between 2026-05-01 and 2026-05-20." in page
    assert 'id="usage-day-chart-title"' not in page


def test_an_unknown_period_shows_this_month_and_says_so(client, bob):
    used(bob, TODAY, 2_222)
    page = home(client, bob, range="3650").content.decode()
    assert "not one of the choices" in page
    assert "2026-05-01 to 2026-05-20" in page and "2,222" in page


def test_the_first_of_the_month_shows_that_day_alone(client, bob):
    used(bob, dt.date(2026, 4, 30), 6_000)
    used(bob, dt.date(2026, 5, 1), 7_000)
    with time_machine.travel(dt.datetime(2026, 5, 1, 0, 30, tzinfo=dt.UTC), tick=False):
        page = home(client, bob).content.decode()
    assert "2026-05-01 to 2026-05-01" in page
    assert "7,000" in page and "6,000" not in page


def test_a_person_without_an_organization_sees_no_usage_section(client, db):
    loner = UserFactory(email="loner@example.com")
    page = home(client, loner).content.decode()
    assert "Your usage" not in page


def test_the_home_page_queries_are_bounded_however_long_the_period(
    client, bob, django_assert_max_num_queries
):
    for n in range(90):
        used(bob, TODAY - dt.timedelta(days=n), 100 + n, model=f"model-{n % 7}")
    client.force_login(bob)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("member:home"), {"range": "90"})
    assert response.status_code == 200
    assert "model-6" in response.content.decode()


def test_the_cancel_buttons_accessible_name_begins_with_its_visible_words(client, bob, alice):
    """WCAG 2.5.3 (label in name): a voice user saying "Cancel request" must hit the button."""
    request_services.token_request_create(
        user=bob, kind="inference", amount=300_000, reason="Reports"
    )
    page = home(client, bob).content.decode()
    assert 'aria-label="Cancel request for 300,000 inference tokens">Cancel request<' in page


def test_a_single_day_draws_a_slim_centred_column_not_a_wall():
    chart = charts.columns("t", ["Dec 1"], [("inference", "Inference", [12_498])])
    (rect,) = chart.rects
    assert rect.width == charts.MAX_COLUMN
    assert rect.x + rect.width / 2 == pytest.approx(56 + (720 - 56 - 8) / 2, abs=0.2)


def test_this_month_and_the_three_before_cover_whole_calendar_months(client, bob):
    used(bob, dt.date(2026, 2, 1), 7_000, model="old-model")
    used(bob, dt.date(2026, 1, 31), 9_999, model="too-old")
    page = home(client, bob, range="months").content.decode()
    assert "2026-02-01 to 2026-05-20" in page
    assert "old-model" in page and "too-old" not in page
    assert 'id="usage-model-chart-title"' in page  # the per-model bars, as on Statistics


def test_the_allowed_models_section_lists_the_models_open_to_the_member(client, alice, bob):
    PlatformModelFactory(name="gpt-4o", display_name="GPT-4o")
    PlatformModelFactory(name="claude-opus", display_name="Claude Opus")
    page = home(client, bob).content.decode()
    assert "Models you may use" in page and "Every model offered to" in page
    # The admin keeps the expensive model for admins: bob sees the other one only.
    model_access_set(
        actor=alice,
        org=alice.membership.organization,
        model_name="claude-opus",
        mode=ROLES_MODE,
        roles=["admin"],
    )
    page = home(client, bob).content.decode()
    assert "GPT-4o <code>gpt-4o</code>" in page
    assert "claude-opus" not in page and "Every model offered" not in page
