"""A failed passkey at the second-factor step counts like a wrong code: audited, and the
next try of either kind waits 1, 2, 4… s; a passkey that passes clears the count."""

import datetime as dt
import json
from unittest import mock

import pytest
import time_machine
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn import exceptions as webauthn_errors
from django_otp_webauthn.helpers import WebAuthnHelper
from django_otp_webauthn.models import WebAuthnCredential

from audit.models import AuditLog

pytestmark = pytest.mark.mfa
MFA = reverse("accounts:mfa")
AUTH_BEGIN = reverse("otp_webauthn:credential-authentication-begin")
AUTH_COMPLETE = reverse("otp_webauthn:credential-authentication-complete")
START = dt.datetime(2026, 6, 17, 10, 30, tzinfo=dt.UTC)
FORGED = webauthn_errors.UnprocessableEntity(
    code="invalid_authentication_response", detail="Invalid authentication response provided."
)


@pytest.fixture
def signed_in(client, alice):
    """Alice after her password, before her second factor: an app and a passkey."""
    device = TOTPDevice.objects.create(user=alice, name="app", confirmed=True)
    passkey = WebAuthnCredential.objects.create(
        user=alice, name="Laptop", credential_id=b"cred-1", public_key=b"key", confirmed=True
    )
    client.force_login(alice)
    return client, device, passkey


def _try_passkey(client, *, result):
    """Begin a ceremony and complete it with the library's check stubbed to `result`."""
    assert client.post(AUTH_BEGIN, "{}", content_type="application/json").status_code == 200
    stub = {"side_effect": result} if isinstance(result, Exception) else {"return_value": result}
    with mock.patch.object(WebAuthnHelper, "authenticate_complete", **stub) as check:
        response = client.post(AUTH_COMPLETE, '{"id": "x"}', content_type="application/json")
    return response, check


def test_a_failed_passkey_is_audited_and_counts_toward_the_wait(signed_in, alice):
    client, device, _ = signed_in
    with time_machine.travel(START, tick=False):
        response, _ = _try_passkey(client, result=FORGED)
    assert response.status_code == 422
    row = AuditLog.objects.get(action="mfa.failed", target_user=alice)
    assert row.details["method"] == "passkey" and row.details["failures"] == 1
    device.refresh_from_db()
    assert device.throttling_failure_count == 1


def test_during_the_wait_neither_a_passkey_nor_a_code_is_checked(signed_in, alice):
    client, device, passkey = signed_in
    with time_machine.travel(START, tick=False) as clock:
        _try_passkey(client, result=FORGED)
        _try_passkey(client, result=FORGED)  # the 1 s wait: refused unchecked
        response, check = _try_passkey(client, result=passkey)
        assert response.status_code == 429 and not check.called
        assert "Try again in" in json.loads(response.content)["detail"]
        code = TOTP(device.bin_key, device.step, device.t0, device.digits).token()
        page = client.post(MFA, {"token": f"{code:06d}"})
        assert "Too many wrong codes" in page.content.decode()
        clock.shift(dt.timedelta(seconds=2))
        response, check = _try_passkey(client, result=passkey)
    assert response.status_code == 200 and check.called
    device.refresh_from_db()
    assert device.throttling_failure_count == 0  # a passkey that passes forgives
    assert AuditLog.objects.filter(action="mfa.failed", target_user=alice).count() == 1
