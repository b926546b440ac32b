"""A user created by SCIM (no password, no terms accepted) gets in: a password reset sets
their first password, and their first sign-in asks for the terms, then goes on."""

import re

import pytest
from django.urls import reverse

from accounts.models import User
from audit.models import AuditLog
from tests.factories import UserFactory
from tokens.models import ApiKeyScope
from tokens.scim.services import scim_user_create
from tokens.services.api_keys import api_key_create

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "a-first-password-2026"
TERMS = reverse("accounts:terms")


@pytest.fixture
def nina(alice, org_a) -> User:
    key = api_key_create(actor=alice, org=org_a, name="Okta", scopes=[ApiKeyScope.SCIM])[0]
    return scim_user_create(key=key, email="nina@acme.example", name="Nina Novak").user


def test_a_scim_user_sets_a_first_password_by_reset_then_accepts_the_terms(
    client, nina, mailoutbox
):
    assert not nina.has_usable_password() and nina.terms_accepted_at is None
    client.post(reverse("accounts:password_reset"), {"email": "nina@acme.example"})
    assert [m.to for m in mailoutbox] == [["nina@acme.example"]]
    link = re.search(r"https?://testserver(/\S+)", mailoutbox[0].body).group(1)
    set_password_url = client.get(link, follow=True).redirect_chain[-1][0]
    client.post(set_password_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    login = client.post(
        reverse("accounts:login") + "?next=/notifications/",
        {"username": "nina@acme.example", "password": NEW_PASSWORD},
    )
    assert login.status_code == 302
    page = client.get(login.url, follow=True)
    assert page.redirect_chain[-1][0] == f"{TERMS}?next=%2Fnotifications%2F"
    assert "I accept the terms and conditions" in page.content.decode()

    refused = client.post(TERMS, {"next": "/notifications/"})
    assert refused.status_code == 422 and "You must accept" in refused.content.decode()
    accepted = client.post(TERMS, {"next": "/notifications/", "accept_terms": "on"})
    assert accepted.status_code == 302 and accepted.url == "/notifications/"
    nina.refresh_from_db()
    assert nina.terms_accepted_at is not None
    assert AuditLog.objects.filter(action="user.terms_accepted", target_user=nina).count() == 1
    assert client.get(reverse("member:home")).status_code == 200


def test_an_htmx_request_before_the_terms_is_sent_to_the_terms_page(client, nina):
    client.force_login(nina)
    response = client.get(reverse("member:home"), headers={"HX-Request": "true"})
    assert response["HX-Redirect"].startswith(TERMS)


def test_the_terms_page_ignores_an_outside_next(client, nina):
    client.force_login(nina)
    response = client.post(TERMS, {"next": "https://evil.example/", "accept_terms": "on"})
    assert response.url == reverse("member:home")


def test_a_registered_user_never_sees_the_terms_page(client, bob):
    client.force_login(bob)
    assert client.get(reverse("member:home")).status_code == 200
    assert client.get(TERMS).url == reverse("member:home")


def test_no_reset_for_an_account_whose_password_login_was_turned_off(client, mailoutbox):
    """Sales turned password login off on an account that has signed in: that stands."""
    user = UserFactory(email="off@example.com", last_login="2026-01-05T10:00:00Z")
    user.set_unusable_password()
    user.save()
    client.post(reverse("accounts:password_reset"), {"email": "off@example.com"})
    assert mailoutbox == []
