"""Logout of a single sign-on session: on to the IdP's end-session endpoint (with the
id_token as hint and the login page to come back to), by a page, not a redirect; any other
logout is as before. The browser round trip is in tests/browser/test_sso_logout.py."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from accounts.sso import SSO_SESSION_KEY
from accounts.sso_logout import SSO_LOGOUT_KEY, sso_logout_remember
from tests.factories import IdentityProviderFactory

pytestmark = pytest.mark.django_db

LOGOUT, LOGIN = reverse("accounts:logout"), reverse("accounts:login")
END_SESSION = "https://login.acme.gov/session/end?ui=1"


@pytest.fixture
def idp(org_a):
    return IdentityProviderFactory(organization=org_a, domains=["acme.gov"], client_id="console")


def _sso_session(client, user, idp, endpoint: str | None = END_SESSION) -> None:
    client.force_login(user)
    session = client.session
    session[SSO_SESSION_KEY] = idp.pk
    sso_logout_remember(session, endpoint=endpoint, id_token="the.id.token")
    session.save()


def test_an_sso_session_logs_out_here_then_at_the_idp(client, bob, idp):
    _sso_session(client, bob, idp)

    response = client.post(LOGOUT)

    assert response.status_code == 200
    url = response.context["url"]
    assert url.startswith("https://login.acme.gov/session/end?ui=1&")
    assert parse_qs(urlsplit(url).query) == {
        "ui": ["1"],
        "id_token_hint": ["the.id.token"],
        "client_id": ["console"],
        "post_logout_redirect_uri": [f"http://testserver{LOGIN}"],
    }
    page = response.content.decode()
    assert '<meta http-equiv="refresh" content="0;url=https://login.acme.gov/' in page
    assert "_auth_user_id" not in client.session and SSO_LOGOUT_KEY not in client.session
    assert client.get(reverse("member:home")).status_code == 302


def test_a_password_session_logs_out_as_before(client, bob, idp):
    client.force_login(bob)

    response = client.post(LOGOUT)

    assert response.status_code == 302 and response.url == LOGIN


@pytest.mark.parametrize(
    "endpoint", [None, "", "http://login.acme.gov/session/end", "javascript:alert(1)"]
)
def test_an_idp_without_a_usable_end_session_endpoint_logs_out_as_before(
    client, bob, idp, endpoint
):
    _sso_session(client, bob, idp, endpoint=endpoint)

    response = client.post(LOGOUT)

    assert response.status_code == 302 and response.url == LOGIN


def test_a_provider_disabled_since_the_sign_in_logs_out_as_before(client, bob, idp):
    _sso_session(client, bob, idp)
    idp.enabled = False
    idp.save()

    response = client.post(LOGOUT)

    assert response.status_code == 302 and response.url == LOGIN
    assert "_auth_user_id" not in client.session


def test_the_staff_page_names_the_post_logout_uri_to_register_at_the_idp(staff_client, idp):
    page = staff_client.get(reverse("admin:accounts_identityprovider_change", args=[idp.pk]))

    text = page.content.decode().lower()
    assert "post-logout redirect uri to register at the idp" in text
    assert f"{LOGIN}</div>" in text
