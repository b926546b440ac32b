"""Random callbacks at single sign-on's door (hypothesis), against the real test provider
(tests/oidc_provider): whatever the query string, and whether or not it carries the state
this session's sign-in started with, the answer is a refusal in words, never a 500, and
nobody is signed in."""

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.sso_secrets import secret_store
from tests.factories import IdentityProviderFactory
from tests.security.test_fuzz_http import nasty, urlencoded
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
def started(client, oidc_provider, org_a):
    """A sign-in started by this session: returns a function giving the real state."""
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
