"""Login throttling: repeated failures lock the account, from wherever they come, for a while."""

import datetime as dt

import pytest
import time_machine
from axes.models import AccessAttempt
from django.urls import reverse

from asksage_admin.lib.http import client_ip
from audit.models import AuditLog

LOGIN = reverse("accounts:login")
NOON = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


def attempt(client, email, password="wrong-password", ip="10.1.2.3"):
    return client.post(LOGIN, {"username": email, "password": password}, REMOTE_ADDR=ip)


def test_five_failures_lock_the_account_even_with_the_right_password(
    client, bob, password, settings
):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert attempt(client, bob.email).status_code == 200
    assert attempt(client, bob.email).status_code == 429  # the limit-th failure locks
    response = attempt(client, bob.email, password=password)
    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_failures_spread_over_accounts_do_not_lock_out_other_people_of_the_address(
    client, bob, password, settings
):
    # Was `test_failures_spread_over_accounts_lock_the_address`: locking a bare address
    # locked out a whole office behind one NAT. Accounts are locked, not addresses.
    for n in range(settings.AXES_FAILURE_LIMIT + 1):
        attempt(client, f"nobody{n}@example.com", ip="10.9.9.9")
    assert attempt(client, bob.email, password=password, ip="10.9.9.9").status_code == 302


def test_a_success_before_the_limit_clears_the_count(client, bob, password, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt(client, bob.email)
    assert attempt(client, bob.email, password=password).status_code == 302
    client.logout()
    assert attempt(client, bob.email).status_code == 200  # counting starts afresh


def test_guesses_from_many_addresses_lock_the_account(client, bob, password, settings):
    """Guesses per hour against one account: before, AXES_FAILURE_LIMIT per address and
    cool-off with any number of addresses (unbounded); now AXES_FAILURE_LIMIT per cool-off
    in all, 5 × 60 / 15 = 20 an hour, whatever the number of addresses."""
    with time_machine.travel(NOON, tick=False) as clock:
        for n in range(settings.AXES_FAILURE_LIMIT):
            attempt(client, bob.email, ip=f"198.51.100.{n + 1}")
        # The right password, from an address never seen before, is refused.
        assert attempt(client, bob.email, password=password, ip="203.0.113.99").status_code == 429
        assert "_auth_user_id" not in client.session
        clock.shift(dt.timedelta(minutes=settings.AXES_COOLOFF_TIME * 60, seconds=1))
        assert attempt(client, bob.email, password=password, ip="203.0.113.99").status_code == 302


def test_every_spelling_of_an_email_counts_against_one_account(client, bob, password, settings):
    spellings = ["BOB@example.com", " bob@EXAMPLE.com", "Bob@Example.Com", "bob@example.com"]
    for n in range(settings.AXES_FAILURE_LIMIT):
        attempt(client, spellings[n % len(spellings)], ip=f"198.51.100.{n + 1}")
    assert set(AccessAttempt.objects.values_list("username", flat=True)) == {"bob@example.com"}
    assert attempt(client, bob.email, password=password).status_code == 429


def test_the_lockout_page_says_how_long_in_words(client, bob, settings):
    settings.AXES_COOLOFF_TIME = 15 / 60
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = attempt(client, bob.email)
    page = response.content.decode()
    assert response.status_code == 429 and response["Retry-After"] == "900"
    assert "Try again in 15 minutes" in page
    assert "PT15M" not in page


def test_a_client_sent_x_forwarded_for_is_ignored_by_default(client, bob):
    client.post(
        LOGIN,
        {"username": bob.email, "password": "wrong"},
        REMOTE_ADDR="192.0.2.10",
        HTTP_X_FORWARDED_FOR="203.0.113.66",
    )
    assert AccessAttempt.objects.get().ip_address == "192.0.2.10"
    assert AuditLog.objects.get(action="auth.login_failed").ip == "192.0.2.10"


def test_behind_a_trusted_proxy_the_client_is_the_address_the_proxy_saw(client, bob, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    client.post(
        LOGIN,
        {"username": bob.email, "password": "wrong"},
        REMOTE_ADDR="10.0.0.2",  # the proxy
        HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.66",  # a forged entry, then the proxy's
    )
    assert AccessAttempt.objects.get().ip_address == "203.0.113.66"
    assert AuditLog.objects.get(action="auth.login_failed").ip == "203.0.113.66"


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "203.0.113.66", "192.0.2.10"),  # no proxy configured: the header is ignored
        (1, "", "192.0.2.10"),  # did not come through the proxy
        (1, "6.6.6.6, 203.0.113.66", "203.0.113.66"),
        (2, "6.6.6.6, 203.0.113.66, 10.0.0.1", "203.0.113.66"),
        (2, "203.0.113.66", "192.0.2.10"),  # fewer hops than proxies: not through all of them
        (1, "6.6.6.6, not-an-address", "192.0.2.10"),
        (1, "2001:db8::1", "2001:db8::1"),
    ],
)
def test_the_client_address_trusts_only_the_configured_proxies(
    rf, settings, proxies, forwarded, expected
):
    settings.TRUSTED_PROXY_COUNT = proxies
    request = rf.get("/", REMOTE_ADDR="192.0.2.10", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected
