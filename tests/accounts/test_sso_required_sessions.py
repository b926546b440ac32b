"""Switching "SSO required" on in /staff/ shuts the password door for sessions already
through it: the organization's members' password sessions end in the same save, audited with
their count; sessions single sign-on opened stay, and so do staff's and other organizations'."""

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from accounts.models import IdentityProvider
from accounts.sso import SSO_SESSION_KEY, identity_provider_save
from audit.models import AuditLog
from tests.accounts.test_sso_config import provider_form
from tests.factories import IdentityProviderFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

HOME = reverse("member:home")


@pytest.fixture
def idp(org_a):
    return IdentityProviderFactory(organization=org_a, domains=["acme.gov"])


def _signed_in(user, sso_provider: IdentityProvider | None = None) -> Client:
    client = Client()
    client.force_login(user, backend="accounts.backends.EmailBackend")
    if sso_provider is not None:
        session = client.session
        session[SSO_SESSION_KEY] = sso_provider.pk
        session.save()
    return client


def _still_signed_in(client: Client) -> bool:
    return Session.objects.filter(session_key=client.session.session_key).exists()


def _require_sso(staff_client, idp, **overrides):
    url = reverse("admin:accounts_identityprovider_change", args=[idp.pk])
    data = provider_form(
        idp.organization,
        issuer=idp.issuer,  # the same provider: a blank secret keeps the stored one
        client_id=idp.client_id,
        secret="",
        domains="acme.gov",
        sso_required="on",
    )
    data.update(overrides)
    response = staff_client.post(url, {k: v for k, v in data.items() if v is not None})
    assert response.status_code == 302, response.content.decode()[:2000]


def test_requiring_sso_ends_the_members_password_sessions_and_says_how_many(
    staff_client, sam, idp, alice, bob, carol
):
    bob_password = _signed_in(bob)
    alice_password, alice_sso = _signed_in(alice), _signed_in(alice, sso_provider=idp)
    carol_password = _signed_in(carol)

    _require_sso(staff_client, idp)

    assert not _still_signed_in(bob_password) and not _still_signed_in(alice_password)
    assert _still_signed_in(alice_sso) and _still_signed_in(carol_password)
    assert _still_signed_in(staff_client)
    response = bob_password.get(HOME)
    assert response.status_code == 302 and reverse("accounts:login") in response.url
    assert alice_sso.get(HOME).wsgi_request.user == alice
    row = AuditLog.objects.get(action="sso.sessions_ended")
    assert (row.actor, row.organization, row.new_value) == (sam, idp.organization, "2")


def test_a_staff_account_is_never_signed_out_by_sso_required(staff_client, idp, org_a):
    sid = MembershipFactory(organization=org_a, user=UserFactory(is_staff=True)).user
    sid_password = _signed_in(sid)

    _require_sso(staff_client, idp)

    assert _still_signed_in(sid_password)
    assert AuditLog.objects.get(action="sso.sessions_ended").new_value == "0"


def test_saving_while_sso_is_already_required_ends_nothing(staff_client, idp, bob):
    idp.sso_required = True
    idp.save()
    bob_password = _signed_in(bob)

    _require_sso(staff_client, idp, jit_enabled=None)

    assert _still_signed_in(bob_password)
    assert not AuditLog.objects.filter(action="sso.sessions_ended").exists()


def test_untick_sso_required_ends_nothing(staff_client, idp, bob):
    idp.sso_required = True
    idp.save()
    bob_password = _signed_in(bob)

    _require_sso(staff_client, idp, sso_required=None)

    assert _still_signed_in(bob_password)
    assert not AuditLog.objects.filter(action="sso.sessions_ended").exists()


def test_enabling_a_provider_that_requires_sso_ends_the_password_sessions(idp, sam, bob):
    idp.enabled, idp.sso_required = False, True
    idp.save()
    bob_password = _signed_in(bob)

    idp.enabled = True
    identity_provider_save(actor=sam, provider=idp, domains=["acme.gov"], changed=["enabled"])

    assert not _still_signed_in(bob_password)
    assert AuditLog.objects.get(action="sso.sessions_ended").new_value == "1"


def test_a_disabled_provider_requiring_sso_ends_nothing(idp, sam, bob):
    bob_password = _signed_in(bob)

    idp.enabled, idp.sso_required = False, True
    identity_provider_save(actor=sam, provider=idp, domains=["acme.gov"], changed=["enabled"])

    assert _still_signed_in(bob_password)


def test_a_new_provider_created_with_sso_required_ends_the_password_sessions(
    staff_client, org_a, bob
):
    bob_password = _signed_in(bob)

    response = staff_client.post(
        reverse("admin:accounts_identityprovider_add"),
        provider_form(org_a, domains="acme.gov", sso_required="on"),
    )

    assert response.status_code == 302
    assert not _still_signed_in(bob_password)
    assert AuditLog.objects.get(action="sso.sessions_ended").new_value == "1"
