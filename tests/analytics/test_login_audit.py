"""Logins and failed logins are audited with the address they came from."""

import datetime as dt

import time_machine
from axes.models import AccessFailureLog
from django.urls import reverse

from audit import chain, integrity
from audit.models import AuditChain, AuditLog

LOGIN = reverse("accounts:login")


def test_a_login_is_audited_in_the_users_organization_with_its_ip(client, bob, org_a, password):
    client.post(LOGIN, {"username": bob.email, "password": password}, REMOTE_ADDR="203.0.113.7")

    entry = AuditLog.objects.get(action="auth.login")
    assert (entry.organization, entry.actor, entry.target_user) == (org_a, bob, bob)
    assert entry.ip == "203.0.113.7"


def test_a_wrong_password_is_audited_against_the_user(client, bob, org_a):
    client.post(
        LOGIN, {"username": "BOB@example.com", "password": "nope"}, REMOTE_ADDR="2001:db8::5"
    )

    entry = AuditLog.objects.get(action="auth.login_failed")
    assert (entry.organization, entry.actor, entry.target_user) == (org_a, None, bob)
    assert entry.ip == "2001:db8::5"
    assert entry.details == {"email": "BOB@example.com"}


def test_a_failed_login_of_an_unknown_email_is_recorded_without_an_organization(client, db):
    client.post(LOGIN, {"username": "ghost@example.com", "password": "x"})

    entry = AuditLog.objects.get(action="auth.login_failed")
    assert entry.organization is None and entry.target_user is None
    assert entry.details["email"] == "ghost@example.com"
    assert entry.chain == "global"
    assert integrity.verify("global").intact


def test_sales_staff_logins_are_audited_on_the_global_chain(client, sam, password):
    client.post(LOGIN, {"username": sam.email, "password": password})

    assert AuditLog.objects.get(action="auth.login").chain == "global"


def test_in_process_logins_of_the_test_client_are_not_audited(client, bob):
    client.force_login(bob)

    assert not AuditLog.objects.filter(action="auth.login").exists()


NOON = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


def chain_length(key: str) -> int:
    head = AuditChain.objects.filter(key=key).first()
    return head.last_seq if head else 0


def test_a_thousand_failed_logins_add_two_rows_to_the_organizations_chain(client, bob, org_a):
    """The first failure and the one that locked the account; the 995 refused while locked
    out are counted in axes' failure log, outside the chain."""
    key = chain.chain_key(org_a.pk)
    before = chain_length(key)
    with time_machine.travel(NOON, tick=False):
        for n in range(1_000):
            client.post(
                LOGIN,
                {"username": bob.email, "password": f"guess-{n}"},
                REMOTE_ADDR=f"198.51.100.{n % 10 + 1}",  # ten addresses
            )

    assert chain_length(key) - before == 2
    first, locking = AuditLog.objects.filter(action="auth.login_failed").order_by("seq")
    assert first.details == {"email": bob.email}
    assert locking.details == {"email": bob.email, "locked_out": True, "failures": 5}
    assert AccessFailureLog.objects.filter(username=bob.email).count() == 1_000
    assert AccessFailureLog.objects.filter(locked_out=True).count() == 1_000 - 4
    assert integrity.verify(key).intact


def test_failures_are_recorded_again_once_the_cool_off_is_over(client, bob, settings):
    with time_machine.travel(NOON, tick=False) as clock:
        client.post(LOGIN, {"username": bob.email, "password": "x"})
        client.post(LOGIN, {"username": bob.email, "password": "y"})
        clock.shift(dt.timedelta(hours=settings.AXES_COOLOFF_TIME, seconds=1))
        client.post(LOGIN, {"username": bob.email, "password": "z"})

    assert AuditLog.objects.filter(action="auth.login_failed", target_user=bob).count() == 2


def test_unknown_emails_from_one_address_add_one_row_to_the_global_chain(client, db):
    before = chain_length(chain.GLOBAL)
    with time_machine.travel(NOON, tick=False):
        for n in range(200):
            client.post(
                LOGIN,
                {"username": f"ghost{n}@example.com", "password": "x"},
                REMOTE_ADDR="192.0.2.1",
            )

    assert chain_length(chain.GLOBAL) - before == 1
    assert AccessFailureLog.objects.filter(ip_address="192.0.2.1").count() == 200
