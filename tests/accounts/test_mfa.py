"""The second factor: admins, auditors and sales staff pass TOTP before the panel or /staff/."""

import datetime as dt
import re

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditLog
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
    assert response.url == reverse("member:home")


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


NOON = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


def wrong_codes(client, device: TOTPDevice, clock, count: int) -> None:
    """`count` wrong codes, each sent once the previous one's wait is over."""
    for _ in range(count):
        wrong = f"{(int(current_code(device)) + 500_000) % 1_000_000:06d}"
        assert client.post(MFA, {"token": wrong}).status_code == 422
        device.refresh_from_db()
        clock.shift(dt.timedelta(seconds=2 ** (device.throttling_failure_count - 1)))


def test_wrong_codes_are_counted_and_audited_although_the_request_fails(client, alice):
    device = enrolled(alice)
    client.force_login(alice)
    with time_machine.travel(NOON, tick=False) as clock:
        wrong_codes(client, device, clock, 3)

    device.refresh_from_db()
    assert device.throttling_failure_count == 3
    failed = AuditLog.objects.filter(action="mfa.failed", target_user=alice)
    assert sorted(row.details["failures"] for row in failed) == [1, 2, 3]


def test_after_wrong_codes_the_right_code_is_refused_until_the_wait_is_over(client, alice):
    device = enrolled(alice)
    client.force_login(alice)
    with time_machine.travel(NOON, tick=False) as clock:
        wrong_codes(client, device, clock, 5)
        clock.shift(dt.timedelta(seconds=-16))  # back to the moment of the fifth wrong code
        response = client.post(MFA, {"token": current_code(device)})
        assert response.status_code == 429 and response["Retry-After"] == "16"
        assert "Too many wrong codes. Try again in 16 seconds." in response.content.decode()
        assert client.get(PANEL).status_code == 302

        clock.shift(dt.timedelta(seconds=10))
        response = client.post(MFA, {"token": current_code(device)})
        assert "Try again in 6 seconds." in response.content.decode()

        clock.shift(dt.timedelta(seconds=6))
        assert client.post(MFA, {"token": current_code(device), "next": PANEL}).status_code == 302
        assert client.get(PANEL).status_code == 200
    device.refresh_from_db()
    assert device.throttling_failure_count == 0


def test_the_fifth_wrong_code_says_when_to_try_again(client, alice):
    device = enrolled(alice)
    client.force_login(alice)
    with time_machine.travel(NOON, tick=False) as clock:
        wrong_codes(client, device, clock, 4)
        response = client.post(MFA, {"token": "000000"})
    assert "That code is not valid. Too many wrong codes. Try again in 16 seconds." in (
        response.content.decode()
    )


def test_recovery_codes_are_throttled_the_same_way(client, alice):
    device = enrolled(alice)
    static = StaticDevice.objects.create(user=alice, name="Recovery codes")
    static.token_set.create(token="abcd1234")
    client.force_login(alice)
    with time_machine.travel(NOON, tick=False) as clock:
        for _ in range(5):
            client.post(MFA, {"token": "zzzz9999"})
            static.refresh_from_db()
            clock.shift(dt.timedelta(seconds=2 ** (static.throttling_failure_count - 1)))
        clock.shift(dt.timedelta(seconds=-16))
        response = client.post(MFA, {"token": "abcd1234"})
        assert "Too many wrong codes" in response.content.decode()
        assert static.token_set.filter(token="abcd1234").exists()  # not spent

        clock.shift(dt.timedelta(seconds=16))
        assert client.post(MFA, {"token": "abcd1234"}).status_code == 302
    device.refresh_from_db()
    assert device.throttling_failure_count == 0  # one factor: a success clears both counts


def test_a_hundred_guesses_in_a_row_try_one_code(client, alice):
    """Before: 400 wrong codes in 12 s, none counted. Now the first wrong code makes the next
    wait a second; guesses sent without waiting are refused unchecked."""
    device = enrolled(alice)
    client.force_login(alice)
    with time_machine.travel(NOON, tick=False):
        for n in range(100):
            client.post(MFA, {"token": f"{n:06d}"})
    device.refresh_from_db()
    assert device.throttling_failure_count == 1
    assert AuditLog.objects.filter(action="mfa.failed").count() == 1
