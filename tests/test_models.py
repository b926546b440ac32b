"""The database itself refuses rows that break the domain rules, whatever code writes them."""

import datetime as dt
from contextlib import contextmanager

import pytest
from django.db import IntegrityError, transaction

from accounts.models import Membership, Organization, User
from asksage_admin.lib.amounts import MAX_TOKENS
from asksage_admin.lib.months import current_month
from tests.factories import (
    MembershipFactory,
    MonthlyUsageFactory,
    OrganizationFactory,
    PurchaseFactory,
    UserFactory,
    max_of,
    set_max,
)
from tokens.models import Purchase

pytestmark = pytest.mark.django_db


@contextmanager
def refused():
    """Expect the database to refuse what runs inside; the savepoint keeps the test usable."""
    with pytest.raises(IntegrityError), transaction.atomic():
        yield


class TestPurchaseConstraints:
    @pytest.mark.parametrize("tokens", [1_000_000, 2_000_001, 3_000_000])
    def test_it_refuses_an_amount_that_is_not_a_multiple_of_2m(self, org_a, tokens):
        with refused():
            PurchaseFactory(organization=org_a, tokens_per_month=tokens)

    @pytest.mark.parametrize("tokens", [0, -2_000_000])
    def test_it_refuses_a_non_positive_amount(self, org_a, tokens):
        with refused():
            PurchaseFactory(organization=org_a, tokens_per_month=tokens)

    def test_it_refuses_an_end_month_before_the_start_month(self, org_a):
        with refused():
            PurchaseFactory(
                organization=org_a, start_month=dt.date(2026, 3, 1), end_month=dt.date(2026, 2, 1)
            )

    def test_it_accepts_a_one_month_purchase(self, org_a):
        PurchaseFactory(
            organization=org_a, start_month=dt.date(2026, 3, 1), end_month=dt.date(2026, 3, 1)
        )
        assert Purchase.objects.filter(organization=org_a).count() == 3

    def test_it_refuses_an_unknown_kind(self, org_a):
        with refused():
            PurchaseFactory(organization=org_a, kind="training")


class TestMembershipConstraints:
    @pytest.mark.parametrize("column", ["max_inference_tokens", "max_embedding_tokens"])
    def test_it_refuses_negative_max_tokens(self, bob, column):
        with refused():
            Membership.objects.filter(user=bob).update(**{column: -1})

    @pytest.mark.parametrize("column", ["max_inference_tokens", "max_embedding_tokens"])
    def test_it_refuses_max_tokens_above_2_pow_53_minus_1(self, bob, column):
        with refused():
            Membership.objects.filter(user=bob).update(**{column: MAX_TOKENS + 1})

    def test_it_accepts_exactly_2_pow_53_minus_1(self, bob):
        set_max(bob, MAX_TOKENS)
        assert max_of(bob) == 2**53 - 1

    def test_it_refuses_a_second_membership_for_the_same_user(self, bob, org_b):
        with refused():
            MembershipFactory(user=bob, organization=org_b)

    def test_it_refuses_an_invalid_role(self, bob):
        with refused():
            Membership.objects.filter(user=bob).update(role="owner")


class TestUserConstraints:
    def test_it_refuses_the_same_email_in_another_case(self, bob):
        # bulk_create skips User.save(), which would lower-case the email first.
        with refused():
            User.objects.bulk_create([User(email="BOB@Example.com", name="Bob Again")])

    def test_save_lowercases_the_email_so_the_same_address_collides(self, bob):
        with refused():
            UserFactory(email="Bob@EXAMPLE.com")


class TestOrganizationConstraints:
    def test_it_refuses_an_invalid_status(self, org_a):
        with refused():
            Organization.objects.filter(pk=org_a.pk).update(status="closed")

    def test_it_refuses_a_duplicate_name(self, org_a):
        with refused():
            OrganizationFactory(name=org_a.name)

    def test_it_refuses_a_negative_floor(self, org_a):
        with refused():
            Organization.objects.filter(pk=org_a.pk).update(min_inference_tokens=-1)


class TestMonthlyUsageConstraints:
    def test_it_refuses_a_second_row_for_the_same_user_kind_and_month(self, org_a, bob):
        MonthlyUsageFactory(user=bob, organization=org_a, kind="inference", used=10)
        with refused():
            MonthlyUsageFactory(user=bob, organization=org_a, kind="inference", used=20)

    def test_it_accepts_another_kind_or_month_for_the_same_user(self, org_a, bob):
        MonthlyUsageFactory(user=bob, organization=org_a, kind="inference")
        MonthlyUsageFactory(user=bob, organization=org_a, kind="embedding")
        MonthlyUsageFactory(
            user=bob, organization=org_a, kind="inference", month=dt.date(2020, 1, 1)
        )
        assert bob.monthly_usage.count() == 3

    def test_it_refuses_negative_usage(self, org_a, bob):
        with refused():
            MonthlyUsageFactory(user=bob, organization=org_a, used=-5, month=current_month())
