"""Logging out of a session single sign-on opened also ends the person's session at their
identity provider (OpenID Connect RP-initiated logout), when the IdP offers it: otherwise
the next "Continue with single sign-on" would sign them straight back in, no password asked.

At sign-in (`tokens.sso.views.callback`) the session keeps what the logout needs: the IdP's
`end_session_endpoint` and the id_token (its `id_token_hint`). Nothing is fetched at logout.
"""

from urllib.parse import urlencode

from django.contrib.auth import views as auth_views
from django.shortcuts import render
from django.urls import reverse

from accounts.models import IdentityProvider
from accounts.sso import SSO_SESSION_KEY, issuer_errors

SSO_LOGOUT_KEY = "sso_logout"  # {"endpoint": url, "id_token": jwt}


def sso_logout_remember(session, *, endpoint: str | None, id_token: str | None) -> None:
    """Keep the IdP's end-session endpoint and the id_token, if the IdP has one (https, or
    http on loopback: the same rule as its issuer)."""
    if endpoint and id_token and not issuer_errors(endpoint):
        session[SSO_LOGOUT_KEY] = {"endpoint": endpoint, "id_token": id_token}


def end_session_url(session, *, post_logout_redirect_uri: str) -> str:
    """Where to send the browser once our session has ended, or "" (a password session, an
    IdP without the endpoint, a provider disabled since)."""
    remembered = session.get(SSO_LOGOUT_KEY)
    if not isinstance(remembered, dict):
        return ""
    provider = IdentityProvider.objects.filter(
        pk=session.get(SSO_SESSION_KEY), enabled=True
    ).first()
    if provider is None:
        return ""
    endpoint = str(remembered.get("endpoint", ""))
    query = urlencode(
        {
            "id_token_hint": remembered.get("id_token", ""),
            "client_id": provider.client_id,
            "post_logout_redirect_uri": post_logout_redirect_uri,
        }
    )
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


class LogoutView(auth_views.LogoutView):
    """Django's logout; then, for a single sign-on session, on to the IdP's end-session
    endpoint by a page that refreshes to it: the logout form's CSP (form-action 'self')
    forbids the POST's redirect chain to leave the site (as on the SSO start page)."""

    def post(self, request, *args, **kwargs):
        login_page = request.build_absolute_uri(reverse("accounts:login"))
        target = end_session_url(request.session, post_logout_redirect_uri=login_page)
        response = super().post(request, *args, **kwargs)
        if not target:
            return response
        return render(request, "sso/logout.html", {"url": target})
