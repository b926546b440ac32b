"""Single sign-on's doors refuse in words, never with a 500: an address with no provider, an
IdP that cannot be reached, a secret that cannot be read, a callback nobody started; and a
`next` that leaves the site is dropped."""

import datetime as dt

import pytest
import time_machine
from authlib.oidc.core import CodeIDToken
from django.urls import reverse
from joserfc.errors import JoseError

from tests.factories import IdentityProviderFactory
from tokens.sso.client import claims_options, clients_clear
from tokens.sso.views import EXPIRED, IDP_MISBEHAVED, PENDING

pytestmark = pytest.mark.django_db

START = reverse("sso:start")
CALLBACK = reverse("sso:callback")


@pytest.fixture(autouse=True)
def _fresh_clients():
    clients_clear()


@pytest.fixture
def unreachable(org_a):
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    return IdentityProviderFactory(
        organization=org_a, issuer="http://127.0.0.1:1", domains=["acme.gov"]
    )


def test_an_address_without_a_provider_is_refused_in_words(client, unreachable):
    response = client.post(START, {"email": "pat@elsewhere.gov"})

    assert response.status_code == 400
    assert "No single sign-on is set up for this address." in response.content.decode()


def test_an_idp_that_cannot_be_reached_is_a_502_in_words_not_a_500(client, unreachable):
    response = client.post(START, {"email": "pat@acme.gov"})

    assert response.status_code == 502
    assert IDP_MISBEHAVED.replace("'", "&#x27;") in response.content.decode()


def test_a_secret_that_cannot_be_read_is_a_refusal_not_a_500(client, org_a, monkeypatch):
    monkeypatch.delenv("OIDC_NO_SUCH_SECRET", raising=False)
    IdentityProviderFactory(
        organization=org_a, client_secret="env:OIDC_NO_SUCH_SECRET", domains=["acme.gov"]
    )

    response = client.post(START, {"email": "pat@acme.gov"})

    assert response.status_code == 400


def test_a_callback_nobody_started_is_refused(client):
    response = client.get(CALLBACK, {"code": "x", "state": "y"})

    assert response.status_code == 400
    assert EXPIRED in response.content.decode()


def test_a_next_that_leaves_the_site_is_dropped(client, fake_provider):
    # An IdP that answers: a 502 (an IdP unreachable) keeps no session, as any 5xx.
    client.post(START, {"email": "pat@acme.gov", "next": "https://evil.example/"})
    assert client.session[PENDING]["next"] == ""

    client.post(START, {"email": "pat@acme.gov", "next": "/panel/users/"})
    assert client.session[PENDING]["next"] == "/panel/users/"


def test_an_id_token_for_another_audience_is_refused_even_with_our_azp(org_a):
    # authlib checks `aud` only when told (by default only `azp`): tokens.sso.client tells it.
    idp = IdentityProviderFactory(organization=org_a, domains=["acme.gov"])
    now = 1_800_000_000
    claims = {
        "iss": idp.issuer,
        "sub": "s",
        "aud": "another-client",
        "azp": idp.client_id,
        "exp": now + 60,
        "iat": now,
        "nonce": "n",
    }
    params = {"nonce": "n", "client_id": idp.client_id}

    CodeIDToken(claims, {}, None, params).validate(now=now)  # authlib's default lets it in
    with pytest.raises(JoseError):
        CodeIDToken(claims, {}, claims_options(idp), params).validate(now=now)
    CodeIDToken({**claims, "aud": idp.client_id}, {}, claims_options(idp), params).validate(now=now)


def test_a_link_to_the_start_page_cannot_start_a_sign_in(client, org_a):
    """Login CSRF: a link (GET) naming an address must not start a sign-in in the visitor's
    browser; only the login page's POST (CSRF-checked) puts the address in the session."""
    IdentityProviderFactory(organization=org_a, domains=["acme.gov"])

    response = client.get(START, {"email": "attacker@acme.gov"})

    assert response.status_code == 400
    assert "Start single sign-on from the login page" in response.content.decode()
    assert "sso_pending" not in client.session


def test_too_many_sign_ins_started_from_one_address_are_a_429_in_words(client, settings, org_a):
    settings.SSO_START_RATE = "3/m"
    IdentityProviderFactory(organization=org_a, domains=["acme.gov"])

    with time_machine.travel(dt.datetime(2026, 6, 17, 10, 30, tzinfo=dt.UTC), tick=False) as clock:
        for _ in range(3):
            assert client.post(START, {"email": "nobody@elsewhere.gov"}).status_code == 400
        response = client.post(START, {"email": "pat@acme.gov"})

        assert response.status_code == 429
        assert "Too many sign-ins were started from your network" in response.content.decode()
        assert 0 < int(response["Retry-After"]) <= 60
        assert "sso_pending" not in client.session
        # Another address is counted on its own; this one may start again a minute later.
        assert client.post(START, {"email": "x@e.gov"}, REMOTE_ADDR="10.0.0.9").status_code == 400
        clock.shift(61)
        assert client.post(START, {"email": "nobody@elsewhere.gov"}).status_code == 400
