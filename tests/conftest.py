"""The cast: alice (admin of org A), bob (member of org A), carol (admin of org B), sam (a
superuser in the sales admin), sales (sales staff) and sales_lead."""

import datetime as dt
import os
import shutil

import pytest
import time_machine
from django.contrib.auth.models import Group, Permission
from django.core.cache import cache

from accounts.staff_roles import SALES, SALES_LEAD, sync_staff_groups
from tests.browser.conftest import CHROMIUM
from tests.factories import (
    PASSWORD,
    MembershipFactory,
    OrganizationFactory,
    PurchaseFactory,
    UserFactory,
)
from tests.oidc_provider.fixture import oidc_provider  # noqa: F401  (a real OIDC provider)
from tests.tokens.fake_idp import fake_idp, fake_provider  # noqa: F401  (an IdP that misbehaves)
from tests.tokens.sso_e2e import sso_idp  # noqa: F401  (org A's IdP: that provider)


# Here, not in tests/browser/: browser tests live in other folders too, and a run of one
# folder must skip them as a full run does.
def pytest_collection_modifyitems(config, items):
    missing = not (shutil.which(CHROMIUM) or os.path.exists(CHROMIUM))
    # CI must never skip browser tests: it installs Chromium, so a missing one is an error.
    if missing and os.environ.get("CI"):
        raise pytest.UsageError(f"CI needs Chromium at {CHROMIUM} for the browser tests.")
    only_without_chromium = pytest.mark.skipif(
        missing, reason=f"{CHROMIUM} is not installed (apt-get install chromium)"
    )
    browser_tests = [
        item for item in items if {"page", "browser"} & set(getattr(item, "fixturenames", ()))
    ]
    for item in browser_tests:
        item.add_marker(only_without_chromium)
    if browser_tests:
        # Only in a session that drives a browser: Playwright's sync API keeps an event loop
        # running in the main thread from the first browser test to the end of the session,
        # so that test's database flush and every later test would be refused as an "async
        # context". Django reads the variable at each call, so setting it here is in time.
        os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


# A mid-month weekday, far from any month, quarter or year boundary: tests that read "today"
# (rollups, forecasts, month starts) pin the clock here and give the same answer any day.
MID_MONTH = dt.datetime(2026, 6, 17, 10, 30, tzinfo=dt.UTC)


@pytest.fixture(scope="session", autouse=True)
def _session_clock():
    """TEST_CLOCK=2026-12-31T23:00:00+00:00 runs the whole suite on that date (the clock
    ticks from there), to prove no test depends on today's date: see `make test-dates`."""
    when = os.environ.get("TEST_CLOCK")
    if not when:
        yield None
        return
    with time_machine.travel(dt.datetime.fromisoformat(when), tick=True) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def _real_clock_beside_the_oidc_provider(request, _session_clock):
    """The test OIDC provider (a node process) dates its tokens by the real clock: under
    TEST_CLOCK its tests run on the real clock, so the app and the IdP agree on "now"."""
    if _session_clock is None or "oidc_provider" not in request.fixturenames:
        yield
        return
    with time_machine.travel(time_machine.escape_hatch.time.time(), tick=True):
        yield


@pytest.fixture
def mid_month():
    """Pins the clock to MID_MONTH (ticking) for tests whose data is laid out around today."""
    with time_machine.travel(MID_MONTH, tick=True) as traveller:
        yield traveller


@pytest.fixture
def org_a(db):
    org = OrganizationFactory(name="Acme Agency", slug="acme-agency")
    PurchaseFactory(organization=org, kind="inference", tokens_per_month=4_000_000)
    PurchaseFactory(organization=org, kind="embedding", tokens_per_month=2_000_000)
    return org


@pytest.fixture
def org_b(db):
    org = OrganizationFactory(name="Bureau of Birds", slug="bureau-of-birds")
    PurchaseFactory(organization=org, kind="inference", tokens_per_month=2_000_000)
    return org


def _member(org, email: str, name: str, role: str = "member"):
    return MembershipFactory(user__email=email, user__name=name, organization=org, role=role).user


@pytest.fixture
def alice(org_a):
    return _member(org_a, "alice@example.com", "Alice Admin", role="admin")


@pytest.fixture
def bob(org_a):
    return _member(org_a, "bob@example.com", "Bob Member")


@pytest.fixture
def carol(org_b):
    return _member(org_b, "carol@example.com", "Carol Outsider", role="admin")


@pytest.fixture
def dave(org_b):
    return _member(org_b, "dave@example.com", "Dave Birdwatcher")


@pytest.fixture
def sam(db):
    return UserFactory(email="sam@example.com", name="Sam Sales", is_staff=True, is_superuser=True)


def _staff_in(group_name: str, **fields):
    # The migration created the groups, but a transactional test's flush empties them (its
    # post_migrate recreates permissions, not groups): make sure they are there.
    sync_staff_groups(Group, Permission)
    user = UserFactory(is_staff=True, **fields)
    user.groups.add(Group.objects.get(name=group_name))
    return user


@pytest.fixture
def sales(db):
    """Plain sales staff: in the "Sales" group, not a superuser."""
    return _staff_in(SALES, email="sid@example.com", name="Sid Sales")


@pytest.fixture
def sales_lead(db):
    """A sales lead: in the "Sales lead" group, not a superuser."""
    return _staff_in(SALES_LEAD, email="lee@example.com", name="Lee Lead")


@pytest.fixture
def password():
    return PASSWORD


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def staff_client(client, sam):
    """A client logged in as sam, superuser of the sales admin (/staff/)."""
    client.force_login(sam)
    return client


@pytest.fixture(autouse=True)
def _second_factor(request, settings):
    """The second factor is enforced in tests marked `mfa` (tests/accounts/test_mfa.py and the
    access sweep); elsewhere sessions count as verified so tests can focus on their subject."""
    settings.MFA_REQUIRED = request.node.get_closest_marker("mfa") is not None


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """PBKDF2 is slow by design; tests create hundreds of users."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache: rate limits (/sso/start/, the admin API) and an
    IdP's remembered failure are counted there, and a fresh database reuses ids."""
    cache.clear()
