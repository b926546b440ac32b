"""A passkey for real: Chromium's virtual authenticator (Chrome DevTools Protocol) creates one
from the passkeys page, then signs the second factor of the next login with it.

WebAuthn needs a secure context: http://localhost counts as one, so the live server is
reached as localhost, the relying party id.
"""

import re

import pytest
from playwright.sync_api import expect

from audit.models import AuditLog

pytestmark = [pytest.mark.browser, pytest.mark.mfa, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def webauthn_page(page, live_server, settings):
    assert live_server.url.startswith("http://localhost:")
    settings.OTP_WEBAUTHN_RP_ID = "localhost"
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = [live_server.url]
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    options = {
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": True,
        "hasUserVerification": True,
        "isUserVerified": True,
    }
    authenticator = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})
    page.set_viewport_size({"width": 1000, "height": 900})
    page.cdp, page.authenticator_id = cdp, authenticator["authenticatorId"]
    return page


def test_an_admin_adds_a_passkey_then_signs_in_with_it(webauthn_page, live_server, login, alice):
    page = webauthn_page
    errors = []  # a script the CSP blocked, or the library's failures, show up here
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    login(page, alice)
    page.goto(f"{live_server.url}/panel/users/")
    expect(page.get_by_role("heading", name="Set up your second factor")).to_be_visible()
    page.get_by_role("link", name="Use a passkey or security key instead").click()
    page.get_by_label("Passkey name").fill("Virtual key")
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Create passkey").click()
    # A passkey alone: 10 recovery codes, shown once, in case the key is lost.
    expect(page.get_by_role("heading", name="Save your recovery codes")).to_be_visible()
    expect(page.locator(".recovery-codes code")).to_have_count(10)
    page.get_by_role("link", name="I saved them — continue").click()
    page.wait_for_url(re.compile(r".*/panel/users/$"))
    creds = page.cdp.send("WebAuthn.getCredentials", {"authenticatorId": page.authenticator_id})
    assert len(creds["credentials"]) == 1
    assert AuditLog.objects.filter(action="mfa.passkey_added", target_user=alice).exists()
    page.goto(f"{live_server.url}/accounts/mfa/passkeys/")
    expect(page.get_by_role("cell", name="Virtual key", exact=True)).to_be_visible()

    page.context.clear_cookies()  # a new login: the second factor is asked again
    login(page, alice)
    page.goto(f"{live_server.url}/panel/users/")
    expect(page.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    page.get_by_role("button", name="Verify with a passkey").click()
    page.wait_for_url(re.compile(r".*/panel/users/$"))
    expect(
        page.get_by_role("button", name=re.compile("^Max Inference Tokens for"))
    ).not_to_have_count(0)
    row = AuditLog.objects.filter(action="mfa.verified", target_user=alice).latest("pk")
    assert row.details.get("method") == "passkey"
    assert not errors, errors
