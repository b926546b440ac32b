"""Single sign-on's two doors: `start` sends the person to their organization's identity
provider, `callback` takes them back, checked, and signs them in.

The provider of a callback is the one this session started with (kept in the session), never
one named by the request; authlib keeps the state, nonce and PKCE verifier there too, and
drops them once used, so a callback URL replayed (or opened in another browser) is refused.
Every failure of the IdP, the network or the token is a 400 page in words, never a 500.
"""

import logging

import requests
from authlib.common.errors import AuthlibBaseError
from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from joserfc.errors import JoseError

from accounts.models import IdentityProvider
from accounts.sso import SSO_SESSION_KEY, SSO_START, provider_for_email
from accounts.sso_logout import sso_logout_remember
from accounts.sso_secrets import SecretUnavailable
from asksage_admin.lib.http import client_ip
from tokens.sso.client import LEEWAY_SECONDS, claims_options, oidc_client
from tokens.sso.services import SsoRefused, sso_sign_in

logger = logging.getLogger(__name__)

PENDING = "sso_pending"  # {"provider": id, "next": url}: the sign-in this session started
IDP_FAILED = (
    "Your organization's identity provider could not be reached or did not answer as "
    "expected. Try again in a moment; if it keeps failing, contact your administrator."
)
TOKEN_REFUSED = (
    "The answer of your organization's identity provider could not be accepted. "
    "Start again from the login page."
)
EXPIRED = "This sign-in has expired or was already used. Start again from the login page."
START_FROM_LOGIN = "Start single sign-on from the login page: type your email there."
# What can go wrong between here and the IdP: its answers, the network, the token's checks.
# AuthlibBaseError: every authlib refusal (a state unknown, a code missing, the token
# endpoint's error); JoseError: the id_token's signature and claims.
IDP_ERRORS = (
    AuthlibBaseError,
    JoseError,
    requests.RequestException,
    ValueError,
    KeyError,
    TypeError,
)


def refused(request: HttpRequest, message: str, status: int = 400) -> HttpResponse:
    return render(request, "sso/refused.html", {"message": message}, status=status)


def _safe_next(request: HttpRequest, url: str) -> str:
    ok = url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return url if ok else ""


def start(request: HttpRequest) -> HttpResponse:
    """POST an address (CSRF-checked), or GET after the login page put it in the session:
    off to its organization's identity provider, by a page that refreshes to it at once
    (with a link for a browser that does not). A GET never reads the address from the URL:
    a link could otherwise start a sign-in to the sender's account in the victim's browser."""
    if request.method == "POST":
        data = request.POST
    else:
        data = request.session.pop(SSO_START, None)
        if not isinstance(data, dict):
            return refused(request, START_FROM_LOGIN)
    email = str(data.get("email", "")).strip()[:254]
    provider = provider_for_email(email) if "@" in email else None
    if provider is None:
        return refused(request, "No single sign-on is set up for this address.")
    request.session[PENDING] = {
        "provider": provider.pk,
        "next": _safe_next(request, str(data.get("next", ""))),
    }
    try:
        client = oidc_client(provider)
        redirect_uri = request.build_absolute_uri(reverse("sso:callback"))
        # What authlib's authorize_redirect does, but the browser is sent on by this page:
        # the login form's CSP (form-action 'self') forbids a form's redirect chain to leave
        # the site, and listing every customer's IdP there would publish them all.
        found = client.create_authorization_url(redirect_uri, login_hint=email)
        client.save_authorize_data(request, redirect_uri=redirect_uri, **found)
    except (*IDP_ERRORS, RuntimeError, SecretUnavailable) as exc:
        logger.warning("sso start failed for provider %s: %r", provider.pk, exc)
        return refused(request, IDP_FAILED)
    return render(request, "sso/redirect.html", {"url": found["url"], "org": provider.organization})


def callback(request: HttpRequest) -> HttpResponse:
    """The IdP's answer: exchange the code, check the id_token, sign the person in."""
    pending = request.session.pop(PENDING, None)
    if not isinstance(pending, dict):
        return refused(request, EXPIRED)
    provider = (
        IdentityProvider.objects.select_related("organization")
        .filter(pk=pending.get("provider"), enabled=True)
        .first()
    )
    if provider is None:
        return refused(request, EXPIRED)
    try:
        client = oidc_client(provider)
        token = client.authorize_access_token(
            request, claims_options=claims_options(provider), leeway=LEEWAY_SECONDS
        )
    except (*IDP_ERRORS, RuntimeError, SecretUnavailable) as exc:
        logger.warning("sso callback refused for provider %s: %r", provider.pk, exc)
        return refused(request, TOKEN_REFUSED)
    claims = token.get("userinfo")
    if not claims:
        return refused(request, TOKEN_REFUSED)
    try:
        user = sso_sign_in(provider=provider, claims=dict(claims), ip=client_ip(request))
    except SsoRefused as exc:
        return refused(request, exc.message, status=403)
    request.sso_provider_id = provider.pk  # the login's audit row says "via sso"
    login(request, user, backend="accounts.backends.EmailBackend")
    request.session[SSO_SESSION_KEY] = provider.pk
    sso_logout_remember(
        request.session,
        endpoint=client.load_server_metadata().get("end_session_endpoint"),
        id_token=token.get("id_token"),
    )
    return redirect(_safe_next(request, pending.get("next") or "") or "member:home")
