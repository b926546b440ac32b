"""Logging out of a single sign-on session logs out at the identity provider too (RP-initiated
logout), in Chromium against the real test provider: the logout form's POST leaves the site
by a page that refreshes to the IdP (the CSP's form-action 'self' forbids a redirect), the IdP
sends the browser back to the login page, and the next sign-in asks for the IdP's password."""

import pytest
from playwright.sync_api import expect

from audit.models import AuditLog
from tests.factories import MembershipFactory
from tests.tokens.sso_e2e import sign_in

pytestmark = pytest.mark.browser


def test_logging_out_of_an_sso_session_logs_out_at_the_idp_and_the_next_sign_in_asks_again(
    page, live_server, oidc_provider, sso_idp, org_a
):
    pat = MembershipFactory(organization=org_a, user__email="pat@acme.gov").user
    csp_errors: list[str] = []
    page.on("console", lambda m: csp_errors.append(m.text) if "Content Security" in m.text else 0)
    sign_in(page, live_server, oidc_provider, email="pat@acme.gov")
    expect(page).to_have_url(f"{live_server.url}/")

    page.get_by_role("button", name="Account menu").click()
    page.get_by_role("button", name="Log out").click()
    oidc_provider.logout_in_browser(page)

    expect(page).to_have_url(f"{live_server.url}/accounts/login/")
    assert csp_errors == []
    page.get_by_label("Email").fill("pat@acme.gov")
    page.get_by_role("button", name="Continue with single sign-on").click()
    # The IdP's own session ended too: its login form again, not a silent sign-in.
    expect(page.get_by_role("textbox", name="Enter any login")).to_be_visible()
    oidc_provider.login_in_browser(page, "pat@acme.gov")
    expect(page).to_have_url(f"{live_server.url}/")
    assert AuditLog.objects.filter(action="auth.login", target_user=pat).count() == 2
