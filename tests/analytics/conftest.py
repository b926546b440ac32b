"""Logged-in clients and audit rows for the analytics tests (usage factories are in
tests/factories.py)."""

import pytest

from accounts.models import Membership
from audit.services import audit_record
from tests.factories import MembershipFactory, PurchaseFactory
from tokens.services import allocations as allocation_services


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


@pytest.fixture
def saved_batch(alice, bob, org_a, member, audit):
    """Alice saves 12 raised maxima in one batch, after one unrelated change."""
    PurchaseFactory(organization=org_a, tokens_per_month=100_000_000)
    audit("user.banned", target_user=bob, column="banned", old=False, new=True)
    users = [member(user__email=f"u{i:02}@example.com", user__name=f"U {i:02}") for i in range(12)]
    for user in users:
        allocation_services.pending_edit_set(
            admin=alice,
            org=org_a,
            membership=Membership.objects.get(user=user),
            column="max_inference_tokens",
            value=300_000,
        )
    result = allocation_services.allocation_batch_save(
        admin=alice, org=org_a, column="max_inference_tokens"
    )
    return result.batch


# The browser tests here drive the same Chromium as tests/browser.
from tests.browser.conftest import browser_type_launch_args, login  # noqa: E402, F401
