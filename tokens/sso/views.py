"""Single sign-on's two doors: `start` sends the person to their organization's identity
provider, `callback` takes them back, checked, and signs them in.

The provider of a callback is the one this session started with (kept in the session), never
one named by the request; authlib keeps the state, nonce and PKCE verifier there too, and
drops them once used, so a callback URL replayed (or opened in another browser) is refused.
Every failure is a page in words, never a 500: an IdP that cannot be reached or answers
wrongly (a discovery document, JWKS or token answer that is not what OpenID Connect says, too
slow, too large, a redirect) is a 502; a token or a callback refused is a 400; a person the
organization's rules refuse is a 403; too many sign-ins started from one address, a 429.
"""

import logging
import math

import requests
from authlib.common.errors import AuthlibBaseError
from django.conf import settings
from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from joserfc.errors import JoseError
from ninja.throttling import SimpleRateThrottle

from accounts.models import IdentityProvider
from accounts.sso import SSO_MFA_KEY, SSO_SESSION_KEY, SSO_START, amr_shows_mfa, provider_for_email
from accounts.sso_logout import sso_logout_remember
from accounts.sso_secrets import SecretUnavailable
from asksage_admin.lib.http import client_ip
from tokens.sso.client import LEEWAY_SECONDS, claims_options, oidc_client
from tokens.sso.idp import IdpMisbehaved
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
IDP_MISBEHAVED = (
    "Your organization's sign-in provider is not answering correctly. Try again in a few "
    "minutes; if it keeps failing, contact your organization's administrator."
)
IDP_UNAVAILABLE = "Single sign-on unavailable"  # the 502 page's heading: nothing was refused
TOO_MANY_STARTS = (
    "Too many sign-ins were started from your network just now. Wait a minute, then try "
    "again from the login page."
)
EXPIRED = "This sign-in has expired or was already used. Start again from the login page."
START_FROM_LOGIN = "Start single sign-on from the login page: type your email there."
# The IdP failed us (502): not reachable, not in time, or not answering as it should.
IDP_DOWN = (IdpMisbehaved, requests.RequestException)
# The sign-in is refused (400): AuthlibBaseError, every authlib refusal (a state unknown, a
# code missing, the token endpoint's error); JoseError, the id_token's signature and claims.
IDP_ERRORS = (AuthlibBaseError, JoseError, ValueError, KeyError, TypeError, RuntimeError)


class StartThrottle(SimpleRateThrottle):
    """Sign-ins started per client address: the admin API's throttle (django-ninja's sliding
    window in Django's cache), keyed by the address the audit trail records."""

    scope = "sso_start"

    def __init__(self):
        super().__init__(rate=settings.SSO_START_RATE)

    def get_cache_key(self, request: HttpRequest) -> str:
        return self.cache_format % {"scope": self.scope, "ident": client_ip(request) or "-"}


def refused(
    request: HttpRequest, message: str, status: int = 400, heading: str = ""
) -> HttpResponse:
    """A sign-in refused (or, with `heading`, one that could not happen) in words."""
    context = {"message": message, "heading": heading}
    return render(request, "sso/refused.html", context, status=status)


def idp_down(request: HttpRequest, provider: IdentityProvider, exc: Exception) -> HttpResponse:
    logger.warning("sso: the IdP of provider %s misbehaved: %s", provider.pk, exc)
    if request.session.modified and request.session.session_key:
        # Django keeps no session change under a 5xx answer: a callback's spent state (and
        # its pending sign-in) must stay spent, so that the URL cannot be replayed.
        request.session.save()
    return refused(request, IDP_MISBEHAVED, status=502, heading=IDP_UNAVAILABLE)


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
    throttle = StartThrottle()
    if not throttle.allow_request(request):
        response = refused(request, TOO_MANY_STARTS, status=429)
        response["Retry-After"] = str(math.ceil(throttle.wait() or throttle.duration))
        return response
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
    except IDP_DOWN as exc:
        return idp_down(request, provider, exc)
    except (*IDP_ERRORS, SecretUnavailable) as exc:
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
    except IDP_DOWN as exc:
        return idp_down(request, provider, exc)
    except (*IDP_ERRORS, SecretUnavailable) as exc:
        logger.warning("sso callback refused for provider %s: %r", provider.pk, exc)
        return refused(request, TOKEN_REFUSED)
    claims = token.get("userinfo")
    if not claims:
        return refused(request, TOKEN_REFUSED)
    try:
        user = sso_sign_in(provider=provider, claims=dict(claims), ip=client_ip(request))
    except SsoRefused as exc:
        return refused(request, exc.message, status=403)
    # The login's audit row says "via sso", and whether the IdP showed a multi-factor sign-in.
    request.sso_provider_id = provider.pk
    request.sso_idp_mfa = amr_shows_mfa(claims.get("amr"))
    login(request, user, backend="accounts.backends.EmailBackend")
    request.session[SSO_SESSION_KEY] = provider.pk
    if request.sso_idp_mfa:  # what trust_idp_mfa trusts (accounts.mfa.session_verified)
        request.session[SSO_MFA_KEY] = True
    sso_logout_remember(
        request.session,
        endpoint=client.load_server_metadata().get("end_session_endpoint"),
        id_token=token.get("id_token"),
    )
    return redirect(_safe_next(request, pending.get("next") or "") or "member:home")
