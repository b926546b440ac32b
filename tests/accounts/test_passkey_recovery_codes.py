"""Someone whose second factor is a passkey alone gets 10 recovery codes when they add it,
shown once on the same page as after setting up an authenticator, and the second-factor step
takes one of them: losing the key does not lock them out."""

import json
from unittest import mock

import pytest
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.helpers import WebAuthnHelper
from django_otp_webauthn.models import WebAuthnCredential

from accounts.mfa import _new_recovery_codes, mfa_passkey_recovery_codes
from audit.models import AuditLog

pytestmark = pytest.mark.mfa
PANEL = reverse("tokens:users")
MFA = reverse("accounts:mfa")
PASSKEYS = reverse("accounts:passkeys")
NAME = reverse("accounts:passkey_name")
REG_BEGIN = reverse("otp_webauthn:credential-registration-begin")
REG_COMPLETE = reverse("otp_webauthn:credential-registration-complete")


def _add_passkey(client, user, next_url: str) -> str:
    """Name and create a passkey as the page's script does; returns where it then goes."""
    page = client.get(client.post(NAME, {"name": "Laptop", "next": next_url}).url)
    done = page.content.decode().split('data-done-url="', 1)[1].split('"', 1)[0]
    client.post(REG_BEGIN, "{}", content_type="application/json")

    def complete(self, user, state, data):
        return WebAuthnCredential.objects.create(
            user=user, name="x", credential_id=b"cred-1", public_key=b"key", confirmed=True
        )

    with mock.patch.object(WebAuthnHelper, "register_complete", complete):
        response = client.post(REG_COMPLETE, '{"id": "x"}', content_type="application/json")
    assert response.status_code == 200
    return done.replace("&amp;", "&")


def test_a_first_passkey_comes_with_ten_codes_shown_once(client, alice):
    client.force_login(alice)
    done = _add_passkey(client, alice, PANEL)
    assert StaticToken.objects.filter(device__user=alice).count() == 10
    row = AuditLog.objects.get(action="mfa.recovery_codes", target_user=alice)
    assert row.details["method"] == "passkey"

    page = client.get(done)
    html = page.content.decode()
    assert "Save your recovery codes" in html and html.count("<code>") == 10
    for token in StaticToken.objects.filter(device__user=alice).values_list("token", flat=True):
        assert f"<code>{token}</code>" in html
    assert f'href="{PANEL}"' in html
    again = client.get(done)
    assert again.status_code == 302 and again.url == PANEL  # shown once


def test_someone_who_still_holds_codes_gets_no_new_ones(client, alice):
    TOTPDevice.objects.create(user=alice, name="app", confirmed=True)
    kept = _new_recovery_codes(alice)
    client.force_login(alice)
    session = client.session
    session["otp_device_id"] = TOTPDevice.objects.get(user=alice).persistent_id
    session.save()
    done = _add_passkey(client, alice, PANEL)
    assert sorted(StaticToken.objects.values_list("token", flat=True)) == sorted(kept)
    assert client.get(done).url == PANEL
    assert mfa_passkey_recovery_codes(user=alice) == []


def test_a_passkey_only_user_passes_the_second_factor_with_a_recovery_code(client, alice):
    WebAuthnCredential.objects.create(
        user=alice, name="Lost key", credential_id=b"c", public_key=b"k", confirmed=True
    )
    code = _new_recovery_codes(alice)[0]
    client.force_login(alice)
    page = client.get(f"{MFA}?next={PANEL}").content.decode()
    assert "Lost your passkey? Enter one of the recovery codes you saved" in page
    assert 'name="token"' in page and "Recovery code" in page

    response = client.post(MFA, {"token": code, "next": PANEL})
    assert response.status_code == 302 and response.url == PANEL
    assert client.get(PANEL).status_code == 200
    row = AuditLog.objects.get(action="mfa.verified", target_user=alice)
    assert json.dumps(row.details).count("recovery code") == 1
    assert not StaticToken.objects.filter(token=code).exists()  # once only
    assert StaticDevice.objects.filter(user=alice).count() == 1


def test_a_wrong_recovery_code_is_named_as_such_not_as_an_app_code(client, alice):
    WebAuthnCredential.objects.create(
        user=alice, name="Lost key", credential_id=b"c", public_key=b"k", confirmed=True
    )
    _new_recovery_codes(alice)
    client.force_login(alice)

    page = client.post(MFA, {"token": "not-a-code"}).content.decode()

    assert "That recovery code is not valid or was already used." in page
    assert "current code" not in page  # there is no app whose code changes
    assert ">Use recovery code</button>" in page
