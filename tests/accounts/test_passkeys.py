"""Passkeys (django-otp-webauthn) as a second factor beside TOTP: added with a name, used at
login instead of a code, removed, audited; a staff reset removes them too.

The browser's signature is stubbed here (the library's helper); tests/browser/test_passkeys.py
signs for real with Chromium's virtual authenticator.
"""

import json
from unittest import mock

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.helpers import WebAuthnHelper
from django_otp_webauthn.models import WebAuthnCredential

from accounts.mfa import mfa_reset
from audit.models import AuditLog
from tests.factories import MembershipFactory

pytestmark = pytest.mark.mfa

PANEL = reverse("tokens:users")
MFA = reverse("accounts:mfa")
PASSKEYS = reverse("accounts:passkeys")
NAME = reverse("accounts:passkey_name")
REG_BEGIN = reverse("otp_webauthn:credential-registration-begin")
REG_COMPLETE = reverse("otp_webauthn:credential-registration-complete")
AUTH_BEGIN = reverse("otp_webauthn:credential-authentication-begin")
AUTH_COMPLETE = reverse("otp_webauthn:credential-authentication-complete")


def make_passkey(user, name="Laptop", raw=b"cred-1") -> WebAuthnCredential:
    return WebAuthnCredential.objects.create(
        user=user, name=name, credential_id=raw, public_key=b"key", confirmed=True
    )


def verified(client, device) -> None:
    """Mark the client's session as having passed the second factor with `device`."""
    session = client.session
    session["otp_device_id"] = device.persistent_id
    session.save()


def post_json(client, url, data=None):
    return client.post(url, json.dumps(data or {}), content_type="application/json")


def test_adding_a_passkey_names_it_audits_it_and_passes_the_second_factor(alice_client, alice):
    response = alice_client.post(NAME, {"name": "  Work   laptop ", "next": PANEL})
    assert response.status_code == 302
    page = alice_client.get(response.url).content.decode()
    assert "Create passkey" in page and "Work laptop" in page
    assert 'id="otp_webauthn_config"' in page and "otp_webauthn_register.js" in page
    assert post_json(alice_client, REG_BEGIN).status_code == 200

    def fake_complete(self, user, state, data):
        return make_passkey(user, name="from the library")

    with mock.patch.object(WebAuthnHelper, "register_complete", fake_complete):
        response = post_json(alice_client, REG_COMPLETE, {"id": "x"})
    assert response.status_code == 200
    passkey = WebAuthnCredential.objects.get(user=alice)
    assert passkey.name == "Work laptop"
    row = AuditLog.objects.get(action="mfa.passkey_added", target_user=alice)
    assert "Work laptop" in json.dumps(row.details)
    assert alice_client.get(PANEL).status_code == 200  # the session passed the second factor


def test_a_nameless_or_overlong_passkey_name_is_refused_with_words(alice_client, alice):
    response = alice_client.post(NAME, {"name": "   "})
    assert response.status_code == 422 and "Give the passkey a name" in response.content.decode()
    response = alice_client.post(NAME, {"name": "x" * 65})
    assert response.status_code == 422 and "64 characters" in response.content.decode()
    assert "passkey_pending_name" not in alice_client.session


def test_a_passkey_cannot_be_added_before_passing_an_existing_second_factor(client, alice):
    TOTPDevice.objects.create(user=alice, name="app", confirmed=True)
    client.force_login(alice)
    assert client.get(PASSKEYS).url.startswith(MFA)
    assert client.post(NAME, {"name": "Sneaky"}).url.startswith(MFA)
    assert post_json(client, REG_BEGIN).status_code == 403  # the library's own check
    assert not WebAuthnCredential.objects.exists()


def test_a_user_with_only_a_passkey_passes_the_mfa_gate_after_verifying_it(client, alice):
    passkey = make_passkey(alice)
    client.force_login(alice)
    assert client.get(PANEL).status_code == 302
    page = client.get(MFA).content.decode()
    assert "Verify with a passkey" in page and 'name="token"' not in page
    assert post_json(client, AUTH_BEGIN).status_code == 200

    with mock.patch.object(WebAuthnHelper, "authenticate_complete", return_value=passkey):
        response = post_json(client, f"{AUTH_COMPLETE}?next={PANEL}", {"id": "x"})
    assert response.status_code == 200 and response.json()["redirect_url"] == PANEL
    assert client.get(PANEL).status_code == 200
    row = AuditLog.objects.get(action="mfa.verified", target_user=alice)
    assert row.details.get("method") == "passkey"


def test_a_passkey_never_logs_anyone_in_without_a_password(client, alice):
    passkey = make_passkey(alice)
    assert post_json(client, AUTH_BEGIN).status_code == 403
    with mock.patch.object(WebAuthnHelper, "authenticate_complete", return_value=passkey):
        session = client.session
        session["otp_webauthn_authentication_state"] = {"challenge": "x"}
        session.save()
        response = post_json(client, AUTH_COMPLETE, {"id": "x"})
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


def test_a_verified_user_lists_and_removes_their_passkey_audited(alice_client, alice, bob):
    mine = make_passkey(alice, name="Laptop")
    theirs = make_passkey(bob, name="Bob's key", raw=b"cred-2")
    verified(alice_client, mine)
    page = alice_client.get(PASSKEYS).content.decode()
    assert "Laptop" in page and "Bob&#x27;s key" not in page
    url = reverse("accounts:passkey_remove", args=[theirs.pk])
    assert alice_client.post(url).status_code == 404
    assert WebAuthnCredential.objects.filter(pk=theirs.pk).exists()  # not hers: untouched
    response = alice_client.post(reverse("accounts:passkey_remove", args=[mine.pk]), follow=True)
    assert "Passkey “Laptop” removed." in response.content.decode()
    assert not WebAuthnCredential.objects.filter(pk=mine.pk).exists()
    row = AuditLog.objects.get(action="mfa.passkey_removed", target_user=alice)
    assert row.actor == alice and "Laptop" in json.dumps(row.details)


def test_a_staff_reset_of_the_second_factor_removes_passkeys(alice, sam):
    make_passkey(alice)
    TOTPDevice.objects.create(user=alice, name="app", confirmed=True)
    mfa_reset(actor=sam, user=alice)
    assert not WebAuthnCredential.objects.filter(user=alice).exists()
    assert not TOTPDevice.objects.filter(user=alice).exists()


def test_the_user_table_shows_passkey_as_the_second_factor(client, alice, bob, org_a):
    TOTPDevice.objects.create(user=alice, name="app", confirmed=True)
    make_passkey(bob)
    both = MembershipFactory(organization=org_a, user__name="Pat Both").user
    make_passkey(both, raw=b"cred-3")
    TOTPDevice.objects.create(user=both, name="app", confirmed=True)
    client.force_login(alice)
    verified(client, TOTPDevice.objects.get(user=alice))
    users = reverse("tokens:users")
    passkey = client.get(users, {"second_factor": "passkey"}, headers={"HX-Request": "true"})
    html = passkey.content.decode()
    assert "bob@example.com" in html and "Passkey" in html and "alice@example.com" not in html
    html = client.get(users).content.decode()
    assert "Passkey + TOTP" in html


def test_the_mfa_page_offers_a_passkey_to_someone_not_yet_enrolled(alice_client):
    page = alice_client.get(MFA).content.decode()
    assert "Use a passkey or security key instead" in page
    other = Client()
    assert other.get(PASSKEYS).status_code == 302  # anonymous: to the login page
