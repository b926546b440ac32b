"""Random callbacks at single sign-on's door (hypothesis), against the real test provider
(tests/oidc_provider): whatever the query string, and whether or not it carries the state
this session's sign-in started with, the answer is a refusal in words, never a 500, and
nobody is signed in. And random discovery documents and token answers from an IdP
(tests/tokens/fake_idp.py): a sign-in starts, or is refused in words (400, or 502 for an IdP
that misbehaves), never a 500."""

import json
import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import cache
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.sso_secrets import secret_store
from tests.factories import IdentityProviderFactory
from tests.security.test_fuzz_http import json_values, nasty, urlencoded
from tests.tokens.fake_idp import DISCOVERY
from tokens.sso.client import clients_clear

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
values = st.text(max_size=60) | nasty | st.lists(st.text(max_size=10), max_size=3)
queries = st.fixed_dictionaries(
    {},
    optional={
        "code": values,
        "state": values,
        "error": st.sampled_from(["access_denied", "server_error", ""]) | values,
        "error_description": values,
        "iss": values,
        "session_state": values,
    },
) | st.dictionaries(st.text(max_size=8), values, max_size=4)


@pytest.fixture
def started(client, oidc_provider, org_a, settings):
    """A sign-in started by this session: returns a function giving the real state."""
    settings.SSO_START_RATE = "100000/m"  # one start per example, from one address
    oidc_provider.reset()
    oidc_provider.add_client("fuzz", "fuzz-secret", "http://testserver/sso/callback/")
    clients_clear()
    IdentityProviderFactory(
        organization=org_a,
        issuer=oidc_provider.issuer,
        client_id="fuzz",
        client_secret=secret_store("fuzz-secret"),
        domains=["acme.gov"],
    )

    def start() -> str:
        page = client.post("/sso/start/", {"email": "pat@acme.gov"}).content.decode()
        url = unescape(re.search(r'url=([^"]+)"', page).group(1))
        return parse_qs(urlsplit(url).query)["state"][0]

    return start


@FUZZ
@given(query=queries, keep_state=st.booleans())
def test_random_callbacks_are_refused_in_words_and_sign_no_one_in(
    client, started, query, keep_state
):
    state = started()
    if keep_state:
        query = {**query, "state": state}

    response = client.get(f"/sso/callback/?{urlencoded(query)}")

    assert response.status_code == 400, response.status_code
    assert "Single sign-on refused" in response.content.decode()
    assert "_auth_user_id" not in client.session


endpoint_values = json_values | st.sampled_from(
    ["https://idp.example.net/x", "http://idp.example.net/x", "http://127.0.0.1:1/x", "", "/x"]
)
discovery_fields = st.fixed_dictionaries(
    {},
    optional=dict.fromkeys(
        (
            "issuer",
            "authorization_endpoint",
            "token_endpoint",
            "jwks_uri",
            "end_session_endpoint",
            "id_token_signing_alg_values_supported",
            "verify",
            "proxies",
            "hooks",
            "code_challenge_method",
        ),
        endpoint_values,
    ),
)


@FUZZ
@given(changes=discovery_fields, whole=st.none() | json_values)
def test_random_discovery_documents_start_a_sign_in_or_are_a_502_never_a_500(
    client, fake_idp, fake_provider, settings, changes, whole
):
    settings.SSO_START_RATE = "100000/m"
    clients_clear()  # each example fetches its document afresh
    cache.clear()  # and no failure of the last one is remembered
    document = fake_idp.discovery(**changes) if whole is None else whole
    fake_idp.answer(DISCOVERY, 200, json.dumps(document).encode())

    response = client.post("/sso/start/", {"email": "pat@acme.gov"})

    assert response.status_code in {200, 502}, response.status_code
    if response.status_code == 200:
        assert "code_challenge_method=S256" in response.content.decode()


token_answers = (
    st.fixed_dictionaries(
        {},
        optional={
            "access_token": json_values,
            "token_type": st.just("Bearer") | json_values,
            "id_token": st.just("a.b.c") | json_values,
            "expires_in": json_values,
            "error": json_values,
            "scope": json_values,
        },
    )
    | json_values
)


@FUZZ
@given(answer=token_answers)
def test_random_token_answers_are_refused_in_words_never_a_500(
    client, fake_idp, fake_provider, settings, answer
):
    settings.SSO_START_RATE = "100000/m"
    clients_clear()
    cache.clear()
    page = client.post("/sso/start/", {"email": "pat@acme.gov"}).content.decode()
    url = unescape(re.search(r'url=([^"]+)"', page).group(1))
    state = parse_qs(urlsplit(url).query)["state"][0]
    fake_idp.answer("/token", 200, json.dumps(answer).encode())

    response = client.get("/sso/callback/", {"code": "c", "state": state})

    assert response.status_code in {400, 502}, response.status_code
    assert "_auth_user_id" not in client.session
