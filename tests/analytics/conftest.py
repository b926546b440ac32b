"""Logged-in clients and audit rows for the analytics tests (usage factories are in
tests/factories.py)."""

import pytest

from audit.services import audit_record
from tests.factories import MembershipFactory


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
