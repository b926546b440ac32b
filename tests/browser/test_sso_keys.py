"""The identity provider rotates its signing keys: the app, which keeps the IdP's JWKS, fetches
it again once, at the first token signed by a key it does not know, and a token signed by a
key the IdP has dropped is refused. Against the real test provider (tests/oidc_provider)."""

import pytest
from playwright.sync_api import expect

from accounts.models import SsoIdentity
from tests.factories import MembershipFactory
from tests.tokens.sso_e2e import refusal_text, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def members(org_a):
    for name in ("pat", "quinn", "ray"):
        MembershipFactory(organization=org_a, user__email=f"{name}@acme.gov")


def test_after_a_key_rotation_the_next_login_fetches_the_jwks_once_more(
    page, browser, live_server, oidc_provider, sso_idp, members
):
    sign_in(page, live_server, oidc_provider, email="pat@acme.gov")
    expect(page).to_have_url(f"{live_server.url}/")
    assert oidc_provider.stats()["jwks_requests"] == 1

    oidc_provider.rotate_keys()
    for email in ("quinn@acme.gov", "ray@acme.gov"):  # each in a browser of their own
        other = browser.new_context().new_page()
        sign_in(other, live_server, oidc_provider, email=email)
        expect(other).to_have_url(f"{live_server.url}/")

    stats = oidc_provider.stats()
    assert (stats["jwks_requests"], stats["discovery_requests"]) == (2, 1), stats
    assert SsoIdentity.objects.count() == 3


def test_a_token_signed_by_a_key_dropped_from_the_jwks_is_refused(
    page, browser, live_server, oidc_provider, sso_idp, members
):
    sign_in(page, live_server, oidc_provider, email="pat@acme.gov")
    oidc_provider.rotate_keys()
    # The app trusts the keys it holds until a token names a kid it does not know: a login
    # signed by the new key makes it fetch the JWKS, which no longer has the old one.
    second = browser.new_context().new_page()
    sign_in(second, live_server, oidc_provider, email="quinn@acme.gov")
    expect(second).to_have_url(f"{live_server.url}/")
    oidc_provider.set_mode("old_key")

    third = browser.new_context().new_page()
    sign_in(third, live_server, oidc_provider, email="ray@acme.gov")

    expect(third.get_by_role("heading", level=1)).to_have_text("Single sign-on refused")
    assert "could not be accepted" in refusal_text(third)
    assert not SsoIdentity.objects.filter(user__email="ray@acme.gov").exists()
    assert oidc_provider.stats()["jwks_requests"] == 3  # looked again for the kid, in vain
