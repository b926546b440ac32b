"""What the app accepts from an identity provider, whatever it answers.

Every call to an IdP (discovery, JWKS, token endpoint) goes through `LimitedSession`: no
redirect followed, SSO_IDP_TIMEOUT seconds in all (connecting, waiting and reading), at most
SSO_IDP_MAX_BYTES read. The discovery document is checked (`discovery_checked`) and only the
fields the code flow needs reach authlib: authlib hands the whole document to its requests
session as keyword arguments, so a key such as "verify", "proxies" or "code_challenge_method"
in it would otherwise configure the session that sends our client secret.
Anything else is `IdpMisbehaved`, which the views answer with a 502 page in words.
"""

import time

import requests
from authlib.integrations.requests_client import OAuth2Session
from django.conf import settings
from urllib3.util import Timeout

from accounts.sso import issuer_errors


class IdpMisbehaved(Exception):
    """The IdP did not answer as OpenID Connect says, in time, or within the size limit."""


# The id_token signatures accepted: public-key algorithms only (authlib checks the id_token
# against the JWKS, never against a shared secret).
SIGNING_ALGORITHMS = {
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
}
REQUIRED_ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri")


class LimitedSession(OAuth2Session):
    """authlib's requests session, bounded in time, size and where it goes."""

    def request(self, method, url, withhold_token=False, auth=None, **kwargs):
        limit = settings.SSO_IDP_TIMEOUT
        deadline = time.monotonic() + limit
        # total: connecting and waiting for the headers share the one budget.
        kwargs.update(allow_redirects=False, stream=True, timeout=Timeout(total=limit))
        response = super().request(method, url, withhold_token=withhold_token, auth=auth, **kwargs)
        try:
            if response.is_redirect or 300 <= response.status_code < 400:
                raise IdpMisbehaved(f"{url} answered a redirect ({response.status_code})")
            # What requests does for a response that is not streamed: the body, read once.
            response._content = _body(response, deadline=deadline, url=url)
        finally:
            response.close()
        return response


def _body(response: requests.Response, *, deadline: float, url: str) -> bytes:
    cap = settings.SSO_IDP_MAX_BYTES
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > cap:
        raise IdpMisbehaved(f"{url} sent {declared} bytes (the limit is {cap})")
    chunks, size = [], 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise IdpMisbehaved(f"{url} did not finish its answer in time")
        _read_timeout(response, remaining)
        chunk = response.raw.read1(64 * 1024, decode_content=True)  # what has arrived
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > cap:  # counted after decompression: a small gzip cannot unpack past it
            raise IdpMisbehaved(f"{url} sent more than {cap} bytes")
        chunks.append(chunk)


def _read_timeout(response: requests.Response, seconds: float) -> None:
    """Each read waits at most what is left of the budget: an IdP that trickles its answer a
    byte at a time is cut at the deadline, not one read timeout per byte later."""
    sock = getattr(getattr(response.raw, "connection", None), "sock", None)
    if sock is not None:
        sock.settimeout(seconds)


def fetch_json(session: requests.Session, url: str) -> object:
    """GET a document (discovery, JWKS) as JSON. Raises IdpMisbehaved, requests' errors."""
    response = session.request("GET", url, withhold_token=True)
    response.raise_for_status()
    try:
        return response.json()
    except ValueError as exc:
        raise IdpMisbehaved(f"{url} did not answer JSON") from exc


def discovery_checked(document: object, *, issuer: str) -> dict:
    """The fields of a discovery document the code flow uses, checked: the issuer is the one
    configured; the endpoints are https URLs (http only on a loopback host, as the issuer).
    Raises IdpMisbehaved."""
    if not isinstance(document, dict):
        raise IdpMisbehaved("the discovery document is not a JSON object")
    said = document.get("issuer")
    if not isinstance(said, str) or said.rstrip("/") != issuer.rstrip("/"):
        raise IdpMisbehaved(f"the discovery document names the issuer {said!r}, not {issuer!r}")
    checked = {"issuer": said}
    for name in (*REQUIRED_ENDPOINTS, "end_session_endpoint"):
        url = document.get(name)
        if url is None and name == "end_session_endpoint":
            continue
        if not isinstance(url, str) or issuer_errors(url):
            raise IdpMisbehaved(f"the discovery document's {name} is not an https URL: {url!r}")
        checked[name] = url
    listed = document.get("id_token_signing_alg_values_supported")
    if isinstance(listed, list):
        algorithms = [a for a in listed if isinstance(a, str) and a in SIGNING_ALGORITHMS]
    else:
        algorithms = []
    checked["id_token_signing_alg_values_supported"] = algorithms or ["RS256"]
    return checked


def jwks_checked(document: object) -> dict:
    """A JSON object with a list of keys (each an object); authlib imports them."""
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not all(isinstance(key, dict) for key in keys):
        raise IdpMisbehaved("the JWKS is not a JSON object with a list of keys")
    return {"keys": keys}


def token_response_checked(response: requests.Response) -> requests.Response:
    """authlib's hook on the token endpoint's answer (its errors included): a JSON object,
    whose id_token and access_token, when there, are strings."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise IdpMisbehaved(f"the token endpoint answered {response.status_code}, not JSON")
    for name in ("id_token", "access_token"):
        if not isinstance(body.get(name, ""), str):
            raise IdpMisbehaved(f"the token endpoint's {name} is not a string")
    return response
