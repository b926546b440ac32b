"""Logins and failed logins are audited with the address they came from."""

from django.urls import reverse

from analytics import chain
from analytics.models import AuditLog

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
    assert chain.verify("global").intact


def test_sales_staff_logins_are_audited_on_the_global_chain(client, sam, password):
    client.post(LOGIN, {"username": sam.email, "password": password})

    assert AuditLog.objects.get(action="auth.login").chain == "global"


def test_in_process_logins_of_the_test_client_are_not_audited(client, bob):
    client.force_login(bob)

    assert not AuditLog.objects.filter(action="auth.login").exists()
