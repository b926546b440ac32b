"""The code flow's refusals, end to end against the real test provider (tests/oidc_provider)
in Chromium: a token for another audience, an expired token, a replayed callback, an address
of another organization's domain, a newcomer the pool cannot cover, and an admin whose
session counts as second-factor verified through the IdP."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from accounts.models import SsoIdentity, User
from audit.models import AuditLog
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.factories import MembershipFactory
from tests.tokens.sso_e2e import refusal_text, sign_in
from tokens.models import Notification

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


def signed_in(page, live_server) -> bool:
    """Whether the browser's session is a logged-in one (the home page does not send it to
    the login page)."""
    page.goto(f"{live_server.url}/")
    return "/accounts/login/" not in page.url


@pytest.fixture
def pat(org_a):
    return MembershipFactory(organization=org_a, user__email="pat@acme.gov").user


@pytest.mark.parametrize("mode", ["wrong_aud", "expired"])
def test_a_token_for_another_audience_or_expired_is_refused(
    page, live_server, oidc_provider, sso_idp, pat, mode
):
    oidc_provider.set_mode(mode)

    sign_in(page, live_server, oidc_provider, email="pat@acme.gov")

    expect(page.get_by_role("heading", level=1)).to_have_text("Single sign-on refused")
    assert "could not be accepted" in refusal_text(page)
    assert not SsoIdentity.objects.exists()
    assert not signed_in(page, live_server)


def test_a_replayed_callback_is_refused_and_signs_no_one_in(
    page, browser, live_server, oidc_provider, sso_idp, pat
):
    callbacks = sign_in(page, live_server, oidc_provider, email="pat@acme.gov")
    assert signed_in(page, live_server)
    [callback] = callbacks

    for replay in (page, browser.new_context().new_page()):  # the same browser, and another
        response = replay.goto(callback)
        assert response.status == 400
        assert "expired or was already used" in refusal_text(replay)
    assert not signed_in(replay, live_server)
    assert AuditLog.objects.filter(action="auth.login", target_user=pat).count() == 1


def test_an_address_of_another_organizations_domain_is_refused_and_creates_no_one(
    page, live_server, oidc_provider, sso_idp, org_b, carol
):
    users = User.objects.count()

    # Routed to org A's IdP by an acme.gov address, the person signs in there as org B's.
    sign_in(page, live_server, oidc_provider, email="x@acme.gov", idp_email="carol@example.com")

    assert "is not an address of this organization's domains" in refusal_text(page)
    assert User.objects.count() == users
    assert not SsoIdentity.objects.exists()
    assert not signed_in(page, live_server)
    refused = AuditLog.objects.get(action="sso.refused")
    assert refused.details["reason"] == "domain_not_allowed"


def test_a_newcomer_the_pool_cannot_cover_is_refused_and_the_admins_are_alerted(
    page, live_server, oidc_provider, sso_idp, org_a, alice
):
    org_a.min_inference_tokens = 5_000_000  # more than the 4M pool
    org_a.save()

    sign_in(page, live_server, oidc_provider, email="newcomer@acme.gov")

    assert "no tokens left for a new member" in refusal_text(page)
    assert not User.objects.filter(email="newcomer@acme.gov").exists()
    assert "newcomer@acme.gov" in Notification.objects.get(recipient=alice).text
    assert not signed_in(page, live_server)


@pytest.mark.mfa
def test_an_admin_signed_in_through_a_trusted_idp_opens_the_panel_without_a_code(
    page, live_server, oidc_provider, sso_idp, org_a
):
    MembershipFactory(organization=org_a, user__email="ada@acme.gov", role="admin")
    oidc_provider.set_amr(["pwd", "mfa"])  # the IdP's proof of a second factor (as Entra ID's)

    sign_in(page, live_server, oidc_provider, email="ada@acme.gov")
    page.goto(f"{live_server.url}{reverse('tokens:users')}")

    expect(page).to_have_url(f"{live_server.url}{reverse('tokens:users')}")
