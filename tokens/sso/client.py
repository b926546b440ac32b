"""One authlib client per identity provider, kept in the process.

authlib does the protocol: state kept in the session, nonce, PKCE (S256) and the id_token's
checks (signature against the IdP's JWKS, iss, aud, exp, nonce). Fetching is ours
(`tokens.sso.idp`): bounded in time and size, no redirect, the discovery document checked
and passed on field by field. A client fetches the metadata once and the JWKS once, and
keeps both; it fetches the JWKS again only when a token is signed with a key id it does not
know (the IdP rotated its keys). A failed discovery or JWKS fetch is remembered for
SSO_IDP_RETRY_AFTER seconds: meanwhile every sign-in is answered at once, and a down IdP is
not asked again by each of them. Keyed by the provider's id and `updated_at`, so a change in
/staff/ builds a fresh client (and forgets a remembered failure).
"""

import threading
import time

import requests
from authlib.integrations.django_client import DjangoOAuth2App, OAuth
from django.conf import settings
from django.core.cache import cache

from accounts.models import IdentityProvider
from accounts.sso_secrets import secret_read
from tokens.sso.idp import (
    IdpMisbehaved,
    LimitedSession,
    discovery_checked,
    fetch_json,
    jwks_checked,
    token_response_checked,
)

# How late an id_token's exp (and early its iat) may be, for clocks that disagree a little.
LEEWAY_SECONDS = 60

_clients: dict[tuple[int, float], "ProviderApp"] = {}
_lock = threading.Lock()


class ProviderApp(DjangoOAuth2App):
    """authlib's Django client, fetching through `LimitedSession` and checking what it got."""

    client_cls = LimitedSession
    expected_issuer = ""
    failure_key = ""

    def load_server_metadata(self) -> dict:
        if "_loaded_at" not in self.server_metadata:
            document = self._fetched(self._server_metadata_url, "discovery")
            checked = self._checked(discovery_checked, document, issuer=self.expected_issuer)
            self.server_metadata.update(checked, _loaded_at=time.time())
        return self.server_metadata

    def fetch_jwk_set(self, force: bool = False) -> dict:
        metadata = self.load_server_metadata()
        if metadata.get("jwks") and not force:
            return metadata["jwks"]
        document = self._fetched(metadata["jwks_uri"], "JWKS")
        self.server_metadata["jwks"] = self._checked(jwks_checked, document)
        return self.server_metadata["jwks"]

    def _fetched(self, url: str, what: str) -> object:
        if cache.get(self.failure_key):
            raise IdpMisbehaved(f"the {what} fetch failed moments ago: not asked again yet")
        try:
            with self._get_session() as session:
                return fetch_json(session, url)
        except (IdpMisbehaved, requests.RequestException) as exc:
            self._remember_failure()
            raise IdpMisbehaved(f"{what}: {exc}") from exc

    def _checked(self, check, document, **kwargs) -> dict:
        try:
            return check(document, **kwargs)
        except IdpMisbehaved:
            self._remember_failure()
            raise

    def _remember_failure(self) -> None:
        if settings.SSO_IDP_RETRY_AFTER:
            cache.set(self.failure_key, True, settings.SSO_IDP_RETRY_AFTER)


def _token_checks(session: LimitedSession) -> None:
    session.register_compliance_hook("access_token_response", token_response_checked)


def metadata_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def oidc_client(provider: IdentityProvider) -> ProviderApp:
    """The provider's client; its secret is read again each time (an `env:` reference may
    have been rotated in the environment). Raises SecretUnavailable."""
    key = (provider.pk, provider.updated_at.timestamp())
    with _lock:
        client = _clients.get(key)
        if client is None:
            for old in [k for k in _clients if k[0] == provider.pk]:
                del _clients[old]
            client = _Registry().register(
                name=f"idp{provider.pk}",
                client_id=provider.client_id,
                server_metadata_url=metadata_url(provider.issuer),
                compliance_fix=_token_checks,
                client_kwargs={"scope": "openid email profile", "code_challenge_method": "S256"},
            )
            client.expected_issuer = provider.issuer
            client.failure_key = f"sso_idp_failed:{key[0]}:{key[1]}"
            _clients[key] = client
    client.client_secret = secret_read(provider.client_secret)
    return client


class _Registry(OAuth):
    oauth2_client_cls = ProviderApp


def claims_options(provider: IdentityProvider) -> dict:
    """What the id_token must say: issued by this provider, for this client. authlib checks
    `aud` only when told to (by default it checks `azp` alone), so it is told here."""
    issuer = provider.issuer.rstrip("/")
    return {
        "iss": {"essential": True, "values": [issuer, issuer + "/"]},
        "aud": {"essential": True, "value": provider.client_id},
        "sub": {"essential": True},
    }


def clients_clear() -> None:
    """Forget every client (tests)."""
    with _lock:
        _clients.clear()
