"""An identity provider that misbehaves is a 502 page in words, never a 500: a discovery
document with wrong fields, a redirect, an answer too large or too slow, a JWKS or a token
answer that is not what OpenID Connect says. A failed discovery or JWKS fetch is remembered
for a while, so that a down IdP is not asked again by every sign-in."""

import gzip
import json
import re
import time
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.urls import reverse

from tests.tokens.fake_idp import DISCOVERY
from tokens.sso.views import IDP_MISBEHAVED, PENDING

pytestmark = pytest.mark.django_db

START = reverse("sso:start")
CALLBACK = reverse("sso:callback")
SAYS_IDP_MISBEHAVED = IDP_MISBEHAVED.replace("'", "&#x27;")


def start(client):
    return client.post(START, {"email": "pat@acme.gov"})


def started_state(client) -> str:
    """Start a sign-in (the fake IdP's discovery is right): the state it sent to the IdP."""
    page = start(client)
    assert page.status_code == 200, page.content.decode()
    url = unescape(re.search(r'url=([^"]+)"', page.content.decode()).group(1))
    return parse_qs(urlsplit(url).query)["state"][0]


def assert_idp_misbehaved(response):
    assert response.status_code == 502
    page = response.content.decode()
    assert SAYS_IDP_MISBEHAVED in page
    assert "<h1>Single sign-on unavailable</h1>" in page.replace("\n", "")


@pytest.mark.parametrize(
    "changes",
    [
        {"authorization_endpoint": 5},
        {"authorization_endpoint": ["https://idp.example.net/auth"]},
        {"token_endpoint": {"url": "https://idp.example.net/token"}},
        {"jwks_uri": None},
        {"authorization_endpoint": "ftp://idp.example.net/auth"},
        {"token_endpoint": "http://idp.example.net/token"},  # http off loopback
        {"end_session_endpoint": 7},
        {"issuer": "https://another-idp.example.net"},
        {"issuer": None},
    ],
    ids=repr,
)
def test_a_discovery_document_with_wrong_fields_is_a_502_in_words(
    client, fake_idp, fake_provider, changes
):
    fake_idp.answer_json(DISCOVERY, fake_idp.discovery(**changes))

    assert_idp_misbehaved(start(client))


@pytest.mark.parametrize(
    "body", [b"[]", b'"a string"', b"not json {", b"null"], ids=["list", "str", "text", "null"]
)
def test_a_discovery_document_that_is_not_a_json_object_is_a_502(
    client, fake_idp, fake_provider, body
):
    fake_idp.answer(DISCOVERY, 200, body, {"Content-Type": "application/json"})

    assert_idp_misbehaved(start(client))


def test_a_redirect_is_not_followed(client, fake_idp, fake_provider):
    fake_idp.answer(DISCOVERY, 302, headers={"Location": f"{fake_idp.issuer}/elsewhere"})
    fake_idp.answer_json("/elsewhere", fake_idp.discovery())

    assert_idp_misbehaved(start(client))
    assert fake_idp.count("/elsewhere") == 0


def test_a_document_larger_than_the_limit_is_refused(client, fake_idp, fake_provider, settings):
    settings.SSO_IDP_MAX_BYTES = 4096
    fake_idp.answer_json(DISCOVERY, fake_idp.discovery(padding="x" * 5000))

    assert_idp_misbehaved(start(client))


def test_a_small_gzip_that_unpacks_past_the_limit_is_refused(
    client, fake_idp, fake_provider, settings
):
    settings.SSO_IDP_MAX_BYTES = 4096
    document = json.dumps(fake_idp.discovery(padding=" " * 100_000)).encode()
    packed = gzip.compress(document)
    assert len(packed) < 4096
    fake_idp.answer(
        DISCOVERY,
        200,
        packed,
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )

    assert_idp_misbehaved(start(client))


def test_an_answer_that_trickles_in_is_cut_at_the_total_timeout(
    client, fake_idp, fake_provider, settings
):
    settings.SSO_IDP_TIMEOUT = 0.5
    # About 300 bytes a byte every 20 ms: 6 s in all, each byte well within a read timeout.
    document = json.dumps(fake_idp.discovery()).encode()
    fake_idp.answer(DISCOVERY, 200, document, {"Content-Type": "application/json"}, trickle=0.02)

    began = time.monotonic()
    response = start(client)

    assert_idp_misbehaved(response)
    assert time.monotonic() - began < 2


def test_a_failed_discovery_is_not_fetched_again_for_a_while(
    client, fake_idp, fake_provider, settings
):
    settings.SSO_IDP_RETRY_AFTER = 30
    fake_idp.answer(DISCOVERY, 503)

    with time_machine.travel(time.time(), tick=False) as clock:
        assert_idp_misbehaved(start(client))
        assert_idp_misbehaved(start(client))
        assert fake_idp.count(DISCOVERY) == 1

        fake_idp.answer_json(DISCOVERY, fake_idp.discovery())
        clock.shift(31)
        assert start(client).status_code == 200
    assert fake_idp.count(DISCOVERY) == 2


def test_fields_of_the_discovery_document_never_configure_the_session(
    client, fake_idp, fake_provider
):
    """authlib hands the document to its requests session: a "code_challenge_method" there
    would weaken PKCE, a "verify" or "proxies" would steer the request carrying the secret."""
    fake_idp.answer_json(
        DISCOVERY,
        fake_idp.discovery(
            code_challenge_method="plain", verify=False, proxies={"http": "http://127.0.0.1:9"}
        ),
    )

    page = start(client)

    assert page.status_code == 200
    url = unescape(re.search(r'url=([^"]+)"', page.content.decode()).group(1))
    assert parse_qs(urlsplit(url).query)["code_challenge_method"] == ["S256"]


@pytest.mark.parametrize(
    "token",
    [
        {"access_token": "a", "token_type": "Bearer", "id_token": 5},
        {"access_token": ["a"]},
        ["a list"],
        "<html>a gateway's page</html>",
    ],
    ids=["id_token a number", "access_token a list", "a list", "not JSON"],
)
def test_a_token_answer_with_wrong_fields_is_a_502(client, fake_idp, fake_provider, token):
    state = started_state(client)
    if isinstance(token, str):
        fake_idp.answer("/token", 200, token.encode(), {"Content-Type": "text/html"})
    else:
        fake_idp.answer_json("/token", token)

    response = client.get(CALLBACK, {"code": "c", "state": state})

    assert_idp_misbehaved(response)
    assert "_auth_user_id" not in client.session


def test_a_token_endpoint_that_redirects_is_a_502_and_the_callback_stays_spent(
    client, fake_idp, fake_provider
):
    state = started_state(client)
    fake_idp.answer("/token", 307, headers={"Location": f"{fake_idp.issuer}/elsewhere"})

    assert_idp_misbehaved(client.get(CALLBACK, {"code": "c", "state": state}))

    assert fake_idp.count("/elsewhere") == 0
    assert PENDING not in client.session  # a replay of the callback is refused as expired
    assert client.get(CALLBACK, {"code": "c", "state": state}).status_code == 400


def test_a_jwks_that_is_not_a_key_set_is_a_502_and_remembered(client, fake_idp, fake_provider):
    fake_idp.answer_json("/token", {"access_token": "a", "token_type": "Bearer", "id_token": "x"})
    fake_idp.answer_json("/jwks", {"keys": "none"})
    state = started_state(client)

    assert_idp_misbehaved(client.get(CALLBACK, {"code": "c", "state": state}))
    state = started_state(client)  # the discovery document is kept: no fetch, no failure
    assert_idp_misbehaved(client.get(CALLBACK, {"code": "c", "state": state}))

    assert fake_idp.count("/jwks") == 1
