"""Admins of organizations that cannot use the Admin Panel yet (pending) or any more (suspended)."""

import pytest
from django.utils import timezone

from accounts.models import Organization
from tests.factories import MembershipFactory, OrganizationFactory, PurchaseFactory


@pytest.fixture
def pending_admin(db):
    org = OrganizationFactory(
        name="Pending Partners", status=Organization.Status.PENDING, activated_at=None
    )
    return MembershipFactory(user__email="penny@example.com", organization=org, role="admin").user


@pytest.fixture
def suspended_admin(db):
    org = OrganizationFactory(
        name="Suspended Systems",
        status=Organization.Status.SUSPENDED,
        suspended_at=timezone.now(),
    )
    PurchaseFactory(organization=org)
    return MembershipFactory(user__email="sue@example.com", organization=org, role="admin").user
