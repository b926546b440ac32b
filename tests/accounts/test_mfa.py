"""The second factor: admins, auditors and sales staff pass TOTP before the panel or /staff/."""

import re

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from analytics.models import AuditLog
from tests.factories import MembershipFactory

pytestmark = pytest.mark.mfa

PANEL = reverse("tokens:users")
MFA = reverse("accounts:mfa")


def current_code(device: TOTPDevice) -> str:
    return (
        f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=0):06d}"
    )


def enrolled(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="app", confirmed=True)


def test_an_admin_without_a_second_factor_is_sent_to_set_it_up(alice_client, alice):
    response = alice_client.get(PANEL)
    assert response.status_code == 302
    assert response.url.startswith(MFA) and "next=/panel/users/" in response.url
    page = alice_client.get(response.url).content.decode()
    assert "Set up your second factor" in page and "<svg" in page  # QR rendered locally


def test_enrolment_with_a_valid_code_opens_the_panel_and_gives_recovery_codes(alice_client, alice):
    alice_client.get(MFA)
    device = TOTPDevice.objects.get(user=alice, confirmed=False)
    response = alice_client.post(MFA, {"token": current_code(device), "next": PANEL})
    html = response.content.decode()
    assert "Save your recovery codes" in html
    assert len(re.findall(r"<li><code>", html)) == 10
    assert alice_client.get(PANEL).status_code == 200
    assert AuditLog.objects.filter(action="mfa.enrolled", target_user=alice).exists()


def test_a_wrong_code_is_refused_with_a_clear_message(alice_client, alice):
    alice_client.get(MFA)
    response = alice_client.post(MFA, {"token": "000000"})
    assert "That code is not valid" in response.content.decode()
    assert alice_client.get(PANEL).status_code == 302


def test_an_enrolled_admin_verifies_each_new_session(client, alice):
    device = enrolled(alice)
    client.force_login(alice)
    assert client.get(PANEL).status_code == 302
    response = client.post(MFA, {"token": current_code(device), "next": PANEL})
    assert response.status_code == 302 and response.url == PANEL
    assert client.get(PANEL).status_code == 200


def test_a_recovery_code_works_once(client, alice):
    enrolled(alice)
    static = StaticDevice.objects.create(user=alice, name="Recovery codes")
    static.token_set.create(token="abcd1234")
    client.force_login(alice)
    assert client.post(MFA, {"token": "abcd1234"}).status_code == 302
    other = Client()
    other.force_login(alice)
    response = other.post(MFA, {"token": "abcd1234"})
    assert "That code is not valid" in response.content.decode()


def test_members_log_in_without_a_second_factor(client, bob):
    client.force_login(bob)
    assert client.get("/").status_code == 200


def test_auditors_need_the_second_factor_too(client, org_a):
    auditor = MembershipFactory(organization=org_a, role="auditor").user
    client.force_login(auditor)
    assert client.get(PANEL).status_code == 302


def test_sales_staff_need_it_for_django_admin(client, sam):
    client.force_login(sam)
    response = client.get("/staff/")
    assert response.status_code == 302 and response.url.startswith(MFA)
    device = enrolled(sam)
    client.post(MFA, {"token": current_code(device)})
    assert client.get("/staff/").status_code == 200


def test_sales_staff_can_reset_an_admins_second_factor(client, sam, alice):
    from accounts.mfa import mfa_reset

    enrolled(alice)
    mfa_reset(actor=sam, user=alice)
    assert not TOTPDevice.objects.filter(user=alice).exists()
    assert AuditLog.objects.filter(action="mfa.reset", actor=sam, target_user=alice).exists()


def test_next_never_leaves_the_site(client, alice):
    device = enrolled(alice)
    client.force_login(alice)
    response = client.post(MFA, {"token": current_code(device), "next": "https://evil.example/"})
    assert response.url == reverse("accounts:home")


def test_the_demo_switch_lets_admins_in_without_a_factor(settings, alice_client, alice):
    settings.DEMO_SKIP_MFA = True
    assert alice_client.get(PANEL).status_code == 200


@pytest.mark.parametrize(("debug", "expected"), [("1", "True"), ("0", "False")])
def test_the_demo_switch_only_works_with_debug(debug, expected):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DJANGO_SETTINGS_MODULE"}}
    env.update(DEBUG=debug, DEMO_SKIP_MFA="1", SECRET_KEY="x" * 60, ALLOWED_HOSTS="example.gov")
    script = "from django.conf import settings; print(settings.DEMO_SKIP_MFA)"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip().splitlines()[-1] == expected


def test_the_user_admin_action_resets_the_second_factor(client, sam, alice):
    enrolled(alice)
    device = enrolled(sam)
    client.force_login(sam)
    client.post(MFA, {"token": current_code(device)})
    response = client.post(
        "/staff/accounts/user/",
        {"action": "reset_second_factor", "_selected_action": [alice.pk]},
    )
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=alice).exists()
    assert AuditLog.objects.filter(action="mfa.reset", target_user=alice).exists()
