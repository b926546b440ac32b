"""Usage rollups and audit rows for the analytics tests, created directly."""

import datetime as dt

import factory
import pytest
from django.utils import timezone

from audit.services import audit_record
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tokens.models import DailyUsage, UsageEvent


def utc_today() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date()


class DailyUsageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DailyUsage

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    kind = "inference"
    model = "gpt-4o"
    day = factory.LazyFunction(utc_today)
    tokens = 1_000
    events = 1


class UsageEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UsageEvent

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    kind = "inference"
    tokens = 1_000
    model = "gpt-4o"
    created_at = factory.LazyFunction(timezone.now)


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def carol_client(client, carol):
    client.force_login(carol)
    return client


@pytest.fixture
def bob_client(client, bob):
    client.force_login(bob)
    return client


@pytest.fixture
def audit(alice, bob, org_a):
    """A few audit rows in org A written the way services write them."""

    def write(action="allocation.changed", **kwargs):
        kwargs.setdefault("organization", org_a)
        kwargs.setdefault("actor", alice)
        return audit_record(action=action, **kwargs)

    return write


@pytest.fixture
def member(org_a):
    def make(**kwargs):
        kwargs.setdefault("organization", org_a)
        return MembershipFactory(**kwargs).user

    return make


# The browser tests here drive the same Chromium as tests/browser.
from tests.browser.conftest import browser_type_launch_args, login  # noqa: E402, F401
