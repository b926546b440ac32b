"""A person signs in through their organization's identity provider, in Chromium, against a
real OpenID Connect provider on loopback (tests/oidc_provider): email first on the login
page, the IdP's form, and back into the right organization."""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import Membership, SsoIdentity
from audit.models import AuditLog
from tests.browser.test_accessibility import serious_violations
from tests.factories import MembershipFactory
from tests.tokens.sso_e2e import sign_in

pytestmark = pytest.mark.browser


def test_a_member_signs_in_through_the_idp_into_their_organization(
    page, live_server, oidc_provider, sso_idp, org_a, org_b
):
    pat = MembershipFactory(
        organization=org_a, user__email="pat@acme.gov", user__name="Pat Person"
    ).user
    sso_idp.sso_required = True  # password logins refused: the SSO session must still work
    sso_idp.save()

    sign_in(page, live_server, oidc_provider, email="pat@acme.gov")

    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("My tokens")
    expect(page.locator(".account-org")).to_contain_text("Acme Agency · Member")
    page.get_by_role("link", name="My tokens").first.click()  # the next request: still in
    expect(page.get_by_role("heading", level=1)).to_have_text("My tokens")
    identity = SsoIdentity.objects.get(user=pat)
    assert identity.provider == sso_idp and identity.subject.startswith("sub-")
    login = AuditLog.objects.get(action="auth.login", target_user=pat)
    assert (login.organization, login.details.get("via")) == (org_a, "sso")


def test_a_newcomer_is_created_in_the_right_organization_and_keys_are_fetched_once(
    page, browser, live_server, oidc_provider, sso_idp, org_a, org_b
):
    sign_in(page, live_server, oidc_provider, email="newcomer@acme.gov")
    # A newcomer has not accepted the terms yet: one page, then on to their own page.
    expect(page).to_have_url(re.compile(r"/accounts/terms/"))
    page.get_by_label("I accept the terms and conditions").check()
    page.get_by_role("button", name="Accept and continue").click()
    expect(page).to_have_url(f"{live_server.url}/")

    membership = Membership.objects.select_related("user").get(user__email="newcomer@acme.gov")
    assert membership.organization == org_a
    assert membership.max_inference_tokens == org_a.min_inference_tokens

    # A second person, another browser: the app reuses the provider's metadata and keys.
    other = browser.new_context().new_page()
    sign_in(other, live_server, oidc_provider, email="second@acme.gov")
    expect(other).to_have_url(re.compile(r"/accounts/terms/"))
    stats = oidc_provider.stats()
    assert (stats["discovery_requests"], stats["jwks_requests"]) == (1, 1), stats
    assert stats["token_requests"] == 2


def test_single_sign_on_works_from_the_keyboard_and_its_pages_pass_axe(
    page, live_server, oidc_provider, sso_idp, org_a, carol
):
    page.goto(f"{live_server.url}/accounts/login/")
    assert serious_violations(page) == []
    page.get_by_label("Email").fill("carol@example.com")
    page.keyboard.press("Tab")  # the password, left empty
    page.keyboard.press("Tab")  # Log in
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Continue with single sign-on")).to_be_focused()
    page.keyboard.press("Enter")

    # example.com has no identity provider: the page says so, on the email field.
    expect(page.get_by_text("No single sign-on is set up for this address")).to_be_visible()
    page.get_by_label("Email").fill("carol@acme.gov")
    page.get_by_label("Email").press("Enter")  # the email alone: on to the IdP
    oidc_provider.login_in_browser(page, "carol@example.com")  # org B's address at org A's IdP

    expect(page.get_by_role("heading", level=1)).to_have_text("Single sign-on refused")
    assert serious_violations(page) == []
