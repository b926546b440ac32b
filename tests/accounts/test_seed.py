"""The demo and benchmark seed commands."""

import datetime as dt
from io import StringIO

import pytest
import time_machine
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.db import transaction
from django.db.models import F, Sum
from django.db.models.functions import TruncMonth
from django.test import RequestFactory

from accounts.models import Membership, Organization, User
from analytics.selectors.forecast import forecast
from asksage_admin.lib.months import current_month
from audit.models import AuditLog
from tests.conftest import MID_MONTH
from tests.factories import UserFactory
from tokens.management.commands.seed_demo import PASSWORD
from tokens.models import (
    BLOCK,
    DailyUsage,
    MonthlyUsage,
    OrgDailyUsage,
    PlatformModel,
    Purchase,
    TokenRequest,
    UsageEvent,
)
from tokens.rollup import rollup_mismatches, usage_total_mismatches
from tokens.selectors import allocated, pools

pytestmark = pytest.mark.django_db

SEEDED_MODELS = [User, Organization, Membership, Purchase, UsageEvent, MonthlyUsage, AuditLog]


def seed(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in SEEDED_MODELS}


def usage_by_event_sums(**filters) -> dict[tuple, int]:
    rows = (
        UsageEvent.objects.filter(**filters)
        .annotate(month=TruncMonth("created_at"))
        .values_list("user_id", "kind", "month")
        .annotate(total=Sum("tokens"))
    )
    return {(user, kind, month.date()): total for user, kind, month, total in rows}


def usage_rows(**filters) -> dict[tuple, int]:
    rows = MonthlyUsage.objects.filter(**filters).values_list("user_id", "kind", "month", "used")
    return {(user, kind, month): used for user, kind, month, used in rows}


def assert_allocations_within_pools(org: Organization) -> None:
    pool, alloc = pools(org), allocated(org)
    for kind in ("inference", "embedding"):
        assert alloc[kind] <= pool[kind], (org.slug, kind, alloc[kind], pool[kind])


def assert_usage_within_each_max(**filters) -> None:
    this_month = MonthlyUsage.objects.filter(month=current_month(), **filters)
    assert not this_month.filter(
        kind="inference", used__gt=F("user__membership__max_inference_tokens")
    ).exists()
    assert not this_month.filter(
        kind="embedding", used__gt=F("user__membership__max_embedding_tokens")
    ).exists()


@pytest.fixture(scope="class")
def demo_output(django_db_setup, django_db_blocker):
    """Seed once for the class (about a second) inside a transaction rolled back at its end.

    The clock stays pinned mid-month for the whole class: its tests read "this month" after
    the seed wrote it, and a month's end between the two would empty it."""
    with (
        time_machine.travel(MID_MONTH, tick=True),
        django_db_blocker.unblock(),
        transaction.atomic(),
    ):
        yield seed("seed_demo")
        transaction.set_rollback(True)


@pytest.mark.usefixtures("demo_output")
class TestSeedDemo:
    def test_it_creates_three_active_organizations_of_the_promised_sizes(self):
        sizes = {
            org.name: org.memberships.count()
            for org in Organization.objects.filter(status=Organization.Status.ACTIVE)
        }
        assert sizes == {"Department of Demos": 130, "Acme Analytics": 25, "Small Shop": 4}

    def test_the_catalogue_names_every_model_the_demo_usage_used(self):
        used_models = set(UsageEvent.objects.values_list("model", flat=True).distinct())
        catalogue = dict(PlatformModel.objects.values_list("name", "active"))
        assert used_models <= {name for name, active in catalogue.items() if active}
        assert False in catalogue.values()  # a retired model, to show what retiring does
        assert not Organization.objects.filter(models_restricted=True).exists()

    def test_it_creates_one_pending_and_one_suspended_organization(self):
        statuses = list(Organization.objects.values_list("status", flat=True))
        assert statuses.count("pending") == 1
        assert statuses.count("suspended") == 1

    def test_every_organization_allocates_within_its_pools(self):
        for org in Organization.objects.all():
            assert_allocations_within_pools(org)

    def test_the_active_organizations_buy_both_kinds_in_2m_blocks_started_months_ago(self):
        for org in Organization.objects.filter(status=Organization.Status.ACTIVE):
            purchases = Purchase.objects.filter(organization=org)
            assert {p.kind for p in purchases} == {"inference", "embedding"}
            assert all(p.tokens_per_month % BLOCK == 0 for p in purchases)
            assert min(p.start_month for p in purchases) < current_month()

    def test_every_user_has_at_least_200k_inference_tokens(self):
        assert Membership.objects.count() == 130 + 25 + 4 + 3 + 3
        assert not Membership.objects.filter(max_inference_tokens__lt=200_000).exists()

    def test_the_big_organization_has_varied_limits_and_disabled_users(self):
        members = Membership.objects.filter(organization__slug="department-of-demos")
        assert members.values("max_inference_tokens").distinct().count() >= 4
        assert members.filter(user__is_banned=True).exists()
        assert members.filter(user__is_paid=False).exists()

    def test_monthly_usage_equals_the_sum_of_usage_events(self):
        assert MonthlyUsage.objects.filter(month=current_month()).exists()
        assert MonthlyUsage.objects.filter(month__lt=current_month()).exists()
        assert usage_rows() == usage_by_event_sums()
        models = set(UsageEvent.objects.values_list("model", flat=True))
        assert {"gpt-4o", "claude-3-5-sonnet", "llama-3-70b", "text-embedding-3-large"} <= models

    def test_this_months_usage_stays_within_each_users_max(self):
        assert_usage_within_each_max()

    def test_daily_rollups_add_up_to_the_usage_events(self):
        assert (
            DailyUsage.objects.aggregate(t=Sum("tokens"))["t"]
            == (UsageEvent.objects.aggregate(t=Sum("tokens"))["t"])
        )
        assert DailyUsage.objects.aggregate(n=Sum("events"))["n"] == UsageEvent.objects.count()

    def test_the_organization_rollup_equals_the_usage_events_per_day_kind_and_model(self):
        assert rollup_mismatches() == []
        assert rollup_mismatches(against="daily") == []

    def test_each_members_total_usage_equals_their_usage_events(self):
        assert Membership.objects.filter(total_used__gt=0).exists()
        assert usage_total_mismatches() == []
        assert usage_total_mismatches(against="monthly") == []

    def test_there_are_pending_token_requests_to_decide(self):
        pending = TokenRequest.objects.filter(status="pending")
        assert pending.filter(organization__slug="department-of-demos").count() >= 3
        assert TokenRequest.objects.exclude(status="pending").exists()

    def test_the_audit_chain_of_the_seeded_rows_is_intact(self):
        out = StringIO()
        call_command("verify_audit", stdout=out)
        assert "intact" in out.getvalue() and "broken" not in out.getvalue().lower()

    def test_running_it_twice_changes_nothing(self):
        before = counts()
        output = seed("seed_demo")
        assert "already present" in output
        assert counts() == before


def test_seed_demo_prints_logins_that_work():
    # Seeds on its own: the class's shared data was hashed before this test's hasher setting.
    output = seed("seed_demo")
    for email in ("sales@example.com", "admin@demo.example.com", "member@demo.example.com"):
        assert f"{email} / {PASSWORD}" in output
        request = RequestFactory().post("/accounts/login/")  # the throttling backend needs it
        assert authenticate(request, username=email, password=PASSWORD) is not None
    sales = User.objects.get(email="sales@example.com")
    assert sales.is_staff and sales.is_superuser
    assert User.objects.get(email="admin@demo.example.com").membership.is_admin
    assert not User.objects.get(email="member@demo.example.com").membership.is_admin


class TestSeedScale:
    def test_it_creates_the_users_and_events_it_reports(self):
        output = seed("seed_scale", "--users", "30", "--events", "200")
        org = Organization.objects.get(slug="scale-org")
        assert org.status == Organization.Status.ACTIVE
        assert Membership.objects.filter(organization=org).count() == 30
        assert Membership.objects.filter(organization=org, role="admin").exists()
        assert UsageEvent.objects.filter(organization=org).count() == 200
        assert "30 users, 200 usage events" in output

    def test_its_daily_rollups_add_up_to_its_events(self):
        seed("seed_scale", "--users", "30", "--events", "200")
        daily = DailyUsage.objects.aggregate(t=Sum("tokens"), n=Sum("events"))
        events = UsageEvent.objects.aggregate(t=Sum("tokens"))
        assert (daily["t"], daily["n"]) == (events["t"], 200)

    def test_its_organization_rollup_equals_its_events_per_day_kind_and_model(self):
        seed("seed_scale", "--users", "30", "--events", "200")
        assert OrgDailyUsage.objects.exists()
        assert rollup_mismatches() == []

    def test_each_members_total_usage_equals_their_usage_events(self):
        seed("seed_scale", "--users", "30", "--events", "200")
        assert Membership.objects.filter(total_used__gt=0).exists()
        assert usage_total_mismatches() == []

    def test_its_usage_adds_up_and_fits_the_limits_and_pools(self):
        seed("seed_scale", "--users", "30", "--events", "200", "--org-slug", "bench")
        org = Organization.objects.get(slug="bench")
        assert_allocations_within_pools(org)
        assert_usage_within_each_max(organization=org)
        assert usage_rows(organization=org) == usage_by_event_sums(organization=org)
        assert not Membership.objects.filter(
            organization=org, max_inference_tokens__lt=200_000
        ).exists()

    def test_its_users_cannot_log_in_with_any_password(self):
        seed("seed_scale", "--users", "30", "--events", "200")
        users = User.objects.filter(membership__organization__slug="scale-org")
        assert users.count() == 30
        assert not any(user.has_usable_password() for user in users)

    def test_running_it_again_with_the_same_slug_changes_nothing(self):
        seed("seed_scale", "--users", "30", "--events", "200")
        before = counts()
        output = seed("seed_scale", "--users", "50", "--events", "500")
        assert "already exists" in output
        assert counts() == before


def test_seed_demo_refuses_a_database_where_a_demo_login_already_belongs_to_someone():
    UserFactory(email="admin@demo.example.com")
    with pytest.raises(CommandError, match="already exist"):
        seed("seed_demo")
    assert not Organization.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--users", "1", "--events", "5"], "at least 2"),
        (["--users", "5", "--events", "-1"], "cannot be negative"),
    ],
)
def test_seed_scale_refuses_impossible_sizes(args, message):
    with pytest.raises(CommandError, match=message):
        seed("seed_scale", *args)
    assert not Organization.objects.exists()


@pytest.mark.parametrize(
    "moment",
    [
        dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC),  # the 1st: one partial day in the month
        dt.datetime(2026, 3, 15, 12, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 31, 18, 0, tzinfo=dt.UTC),
    ],
    ids=["1st", "15th", "31st"],
)
def test_seed_demo_spreads_usage_over_the_days_whatever_todays_date(moment):
    today = moment.date()
    with time_machine.travel(moment, tick=False):
        seed("seed_demo")
        org = Organization.objects.get(slug="department-of-demos")
        pool_forecast, at_risk = forecast(org)

    per_day = dict(
        DailyUsage.objects.filter(organization=org)
        .values("day")
        .annotate(total=Sum("tokens"))
        .values_list("day", "total")
    )
    earlier = sorted(per_day.get(today - dt.timedelta(days=n), 0) for n in range(1, 29))
    median = earlier[len(earlier) // 2]
    # Today is a day like the others (a part of one), not the month's usage on one bar.
    assert 0 < per_day[today] <= 2 * median, (per_day[today], median)
    assert max(earlier) <= 3 * median
    # The forecast reads plausibly: some heavy users of 130 reach their max, the pools last.
    assert 0 < len(at_risk) <= 30
    assert all(p.runs_out is None or p.runs_out > today for p in pool_forecast)
    if today.day == 1:  # on the 1st nobody is about to reach their max on that very day
        assert not [u for u in at_risk if u.reaches == today], at_risk
