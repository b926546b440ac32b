"""One authlib client per identity provider, kept in the process.

authlib does the protocol: discovery (the issuer's /.well-known/openid-configuration), state
kept in the session, nonce, PKCE (S256) and the id_token's checks (signature against the
IdP's JWKS, iss, aud, exp, nonce). A client fetches the metadata once and the JWKS once, and
keeps both (`load_server_metadata`, `fetch_jwk_set`); it fetches the JWKS again only when a
token is signed with a key id it does not know (the IdP rotated its keys). Keyed by the
provider's id and `updated_at`, so a change in /staff/ builds a fresh client.
"""

import threading

from authlib.integrations.django_client import DjangoOAuth2App, OAuth

from accounts.models import IdentityProvider
from accounts.sso_secrets import secret_read

IDP_TIMEOUT_SECONDS = 10
# How late an id_token's exp (and early its iat) may be, for clocks that disagree a little.
LEEWAY_SECONDS = 60

_clients: dict[tuple[int, float], DjangoOAuth2App] = {}
_lock = threading.Lock()


def metadata_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def oidc_client(provider: IdentityProvider) -> DjangoOAuth2App:
    """The provider's client; its secret is read again each time (an `env:` reference may
    have been rotated in the environment). Raises SecretUnavailable."""
    key = (provider.pk, provider.updated_at.timestamp())
    with _lock:
        client = _clients.get(key)
        if client is None:
            for old in [k for k in _clients if k[0] == provider.pk]:
                del _clients[old]
            client = OAuth().register(
                name=f"idp{provider.pk}",
                client_id=provider.client_id,
                server_metadata_url=metadata_url(provider.issuer),
                client_kwargs={
                    "scope": "openid email profile",
                    "code_challenge_method": "S256",
                    "default_timeout": IDP_TIMEOUT_SECONDS,
                },
            )
            _clients[key] = client
    client.client_secret = secret_read(provider.client_secret)
    return client


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
