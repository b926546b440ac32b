"""Shared by the end-to-end SSO tests: org A's identity provider pointed at the real test
provider (tests/oidc_provider), and a person signing in through the login page."""

import re
from html import unescape
from urllib.parse import urljoin

import pytest
import requests

from accounts.sso_secrets import secret_store
from tests.factories import IdentityProviderFactory
from tokens.sso.client import clients_clear

CLIENT_ID = "admin-console"
CLIENT_SECRET = "console-secret"
DOMAIN = "acme.gov"


@pytest.fixture
def sso_idp(oidc_provider, live_server, org_a, alice):
    """org A signs in acme.gov through the test provider; this live server is its client."""
    oidc_provider.reset()
    oidc_provider.add_client(
        CLIENT_ID,
        CLIENT_SECRET,
        f"{live_server.url}/sso/callback/",
        post_logout_redirect_uri=f"{live_server.url}/accounts/login/",
    )
    clients_clear()  # a fresh database may reuse a provider id: no client from a past test
    org_a.min_inference_tokens, org_a.min_embedding_tokens = 100_000, 0
    org_a.save()
    return IdentityProviderFactory(
        organization=org_a,
        issuer=oidc_provider.issuer,
        client_id=CLIENT_ID,
        client_secret=secret_store(CLIENT_SECRET),
        domains=[DOMAIN],
    )


def sign_in(page, live_server, oidc_provider, *, email: str, idp_email: str | None = None):
    """Email first on the login page, "Continue with single sign-on", then the provider's
    form (as `idp_email`, the account at the IdP, by default the same). Returns the callback
    URLs the browser visited."""
    callbacks: list[str] = []
    page.on("request", lambda r: callbacks.append(r.url) if "/sso/callback/" in r.url else None)
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Continue with single sign-on").click()
    oidc_provider.login_in_browser(page, idp_email or email)
    page.wait_for_load_state()
    return callbacks


def refusal_text(page) -> str:
    return page.get_by_role("alert").inner_text()


HOME = re.compile(r".*/$")


def idp_login_over_http(authorize_url: str, email: str, *, app: str = "http://testserver") -> str:
    """The test provider's login form, without a browser: from the authorization URL the
    app sent the browser to, sign in as `email` and return the callback URL (on `app`) the
    provider then sends the browser to (not followed: the test client opens it)."""
    http = requests.Session()
    url, form = authorize_url, None
    for _ in range(10):
        if form is None:
            response = http.get(url, allow_redirects=False, timeout=10)
        else:
            response = http.post(url, data=form, allow_redirects=False, timeout=10)
        form = None
        if response.is_redirect:
            url = urljoin(url, response.headers["Location"])
            if url.startswith(app):
                return url
            continue
        action = re.search(r'<form[^>]*action="([^"]+)"', response.text)
        assert action, f"no login form at {url}: {response.status_code} {response.text[:300]}"
        url = urljoin(url, unescape(action.group(1)))
        form = {"prompt": "login", "login": email, "password": "any password"}
    raise AssertionError(f"the provider never sent the browser back to {app}")
