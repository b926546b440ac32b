"""axe-core and a phone's width on the sign-in pages added with single sign-on and passkeys:
the login page's SSO refusal, the SSO refusal page, the invitation refused for another
organization's address, the terms at first sign-in, the second factor of a passkey-only
user, their recovery codes, and the identity provider's pages in /staff/."""

import datetime as dt
import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone
from django_otp_webauthn.models import WebAuthnCredential
from playwright.sync_api import expect

from accounts.mfa import _new_recovery_codes
from tests.factories import IdentityProviderFactory
from tokens.models import Invitation
from tokens.services.invitations import invitation_token_hash

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WIDTHS = [1400, 390]


def assert_clean(page, width: int) -> None:
    """No axe violation of any impact, and nothing wider than the window."""
    violations = Axe().run(page).response["violations"]
    assert [(v["id"], [n["target"] for n in v["nodes"]]) for v in violations] == []
    assert page.evaluate("document.documentElement.scrollWidth") <= width


@pytest.mark.parametrize("width", WIDTHS)
def test_the_anonymous_sign_in_refusals_pass_axe_and_fit(page, live_server, alice, carol, width):
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill("pat@elsewhere.gov")
    page.get_by_role("button", name="Continue with single sign-on").click()
    expect(page.get_by_text("No single sign-on is set up for this address")).to_be_visible()
    expect(page.get_by_label("Password")).to_be_focused()  # where the message sends them
    assert_clean(page, width)

    page.goto(f"{live_server.url}/sso/start/?email=pat@elsewhere.gov")  # a link, not the form
    expect(page.get_by_role("alert")).to_have_text(
        "Start single sign-on from the login page: type your email there."
    )
    assert_clean(page, width)

    Invitation.objects.create(
        organization=alice.membership.organization,
        email=carol.email,
        invited_by=alice,
        token_hash=invitation_token_hash("held-elsewhere"),
        expires_at=timezone.now() + dt.timedelta(days=7),
    )
    page.goto(f"{live_server.url}/invitations/held-elsewhere/")
    expect(page.get_by_role("alert")).to_contain_text("already belongs to another organization")
    assert_clean(page, width)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_terms_and_the_passkey_users_pages_pass_axe_and_fit(
    page, live_server, password, bob, width
):
    page.set_viewport_size({"width": width, "height": 900})
    bob.terms_accepted_at = None
    bob.save()
    passkey = WebAuthnCredential.objects.create(
        user=bob, name="Laptop", credential_id=b"c", public_key=b"k", confirmed=True
    )
    _new_recovery_codes(bob)
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill(bob.email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()

    expect(page).to_have_url(re.compile(r"/accounts/terms/"))
    page.get_by_role("button", name="Accept and continue").click()  # the box left unticked
    error = page.get_by_text("You must accept the terms and conditions.")
    box = page.get_by_label("I accept the terms and conditions")
    assert error.bounding_box()["y"] > box.bounding_box()["y"]  # under the box, not beside
    assert_clean(page, width)
    box.check()
    page.get_by_role("button", name="Accept and continue").click()

    page.goto(f"{live_server.url}/accounts/mfa/")
    expect(page.get_by_role("heading", name="Or use a recovery code")).to_be_visible()
    page.get_by_label("Recovery code").fill("not-a-code")
    page.get_by_role("button", name="Use recovery code").click()
    expect(page.get_by_text("That recovery code is not valid")).to_be_visible()
    assert_clean(page, width)

    session_id = next(c["value"] for c in page.context.cookies() if c["name"] == "sessionid")
    session = SessionStore(session_id)
    session["otp_device_id"] = passkey.persistent_id  # as if the passkey had just been made
    session["passkey_recovery_codes"] = [f"code-{i:02}-abcd" for i in range(10)]
    session.save()
    page.goto(f"{live_server.url}/accounts/mfa/passkeys/")
    expect(page.get_by_role("heading", name="Save your recovery codes")).to_be_visible()
    assert_clean(page, width)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_identity_provider_pages_in_staff_pass_axe_and_fit(
    page, live_server, login, sam, org_a, width
):
    provider = IdentityProviderFactory(organization=org_a, domains=["acme.gov"])
    page.set_viewport_size({"width": width, "height": 900})
    login(page, sam)

    page.goto(f"{live_server.url}/staff/accounts/identityprovider/")
    assert_clean(page, width)
    page.goto(f"{live_server.url}/staff/accounts/identityprovider/{provider.pk}/change/")
    expect(page.get_by_text("Stored: an encrypted secret.")).to_be_visible()
    assert_clean(page, width)
    page.goto(f"{live_server.url}/staff/accounts/identityprovider/add/")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Enter the client secret the identity provider gave.")).to_be_visible()
    assert_clean(page, width)
