"""The OIDC test provider (tests/oidc_provider/) does what the SSO tests rely on, proved with no
Django app: a real authorization-code + PKCE login in Chromium, a token exchange, and an
id_token whose signature verifies against the provider's JWKS, in each test mode."""

import base64
import email.utils
import hashlib
import json
import secrets
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.oidc_provider import fixture

pytestmark = pytest.mark.browser

CLIENT_ID = "harness-client"
CLIENT_SECRET = "harness-secret"
POST_CLIENT_ID = "harness-post-client"
CALLBACK_PATH = "/oidc/callback"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


class _Callbacks(BaseHTTPRequestHandler):
    """Stands in for the app's redirect_uri: records each URL the browser is sent back to.
    (Playwright's page.route cannot: it does not see the requests a redirect makes.)"""

    url = ""
    seen: list[str] = []

    def do_GET(self):
        self.seen.append(self.path)
        body = b"back at the app"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="module")
def callback_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Callbacks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Callbacks.url = f"http://127.0.0.1:{server.server_port}{CALLBACK_PATH}"
    yield _Callbacks
    server.shutdown()
    server.server_close()


@pytest.fixture
def provider(oidc_provider, callback_server):
    oidc_provider.reset()
    oidc_provider.add_client(CLIENT_ID, CLIENT_SECRET, callback_server.url)
    return oidc_provider


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def _authorize(page, provider, email: str, client_id: str = CLIENT_ID) -> tuple[dict, str]:
    """Logs `email` in through the provider's form; returns the callback's query and the
    PKCE verifier."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    state = secrets.token_urlsafe(16)
    page.context.clear_cookies()  # no provider session left: the login form shows
    _Callbacks.seen.clear()
    query = urllib.parse.urlencode(
        {
            "client_id": client_id,
            "response_type": "code",
            "scope": "openid email profile",
            "redirect_uri": _Callbacks.url,
            "state": state,
            "nonce": secrets.token_urlsafe(16),
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
        }
    )
    page.goto(f"{provider.issuer}/auth?{query}")
    provider.login_in_browser(page, email)
    page.wait_for_load_state()
    assert page.url.startswith(_Callbacks.url), page.url
    [callback] = [path for path in _Callbacks.seen if path.startswith(CALLBACK_PATH)]
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callback).query))
    assert params["state"] == state, params
    return params, verifier


def _exchange(provider, code: str, verifier: str, *, post: bool = False) -> tuple[int, dict, str]:
    """POSTs the code to the token endpoint, the client authenticated by client_secret_basic
    (or client_secret_post): status, body, Date header."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": _Callbacks.url,
        "code_verifier": verifier,
    }
    headers = {}
    if post:
        form |= {"client_id": POST_CLIENT_ID, "client_secret": CLIENT_SECRET}
    else:
        basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        headers["Authorization"] = f"Basic {basic}"
    request = urllib.request.Request(
        f"{provider.issuer}/token", data=urllib.parse.urlencode(form).encode(), headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response), response.headers["Date"]
    except urllib.error.HTTPError as error:
        return error.code, json.load(error), error.headers["Date"]


def _verified_payload(provider, id_token: str) -> dict:
    """The id_token's claims, after checking its RS256 signature against the JWKS."""
    header_part, payload_part, signature_part = id_token.split(".")
    header = json.loads(_b64url_decode(header_part))
    jwks = _get_json(_get_json(f"{provider.issuer}/.well-known/openid-configuration")["jwks_uri"])
    [jwk] = [key for key in jwks["keys"] if key["kid"] == header["kid"]]
    assert header["alg"] == "RS256"
    public_key = rsa.RSAPublicNumbers(
        e=int.from_bytes(_b64url_decode(jwk["e"])), n=int.from_bytes(_b64url_decode(jwk["n"]))
    ).public_key()
    public_key.verify(  # raises InvalidSignature
        _b64url_decode(signature_part),
        f"{header_part}.{payload_part}".encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    return json.loads(_b64url_decode(payload_part))


def _login_and_exchange(page, provider, email: str) -> tuple[dict, str]:
    params, verifier = _authorize(page, provider, email)
    status, body, date = _exchange(provider, params["code"], verifier)
    assert status == 200, body
    return _verified_payload(provider, body["id_token"]), date


def test_discovery_names_the_issuer_and_is_counted(provider):
    document = _get_json(f"{provider.issuer}/.well-known/openid-configuration")

    assert document["issuer"] == provider.issuer
    assert document["jwks_uri"] == f"{provider.issuer}/jwks"
    assert "S256" in document["code_challenge_methods_supported"]
    assert provider.stats() == {"jwks_requests": 0, "discovery_requests": 1, "token_requests": 0}


def test_a_login_yields_a_signed_id_token_for_the_typed_email(page, provider):
    payload, _ = _login_and_exchange(page, provider, "Alice@acme.example")

    assert payload["iss"] == provider.issuer
    assert payload["aud"] == CLIENT_ID
    assert payload["email"] == "Alice@acme.example"
    assert payload["email_verified"] is True
    assert payload["name"] == "Alice"
    assert payload["sub"].startswith("sub-")
    assert provider.stats() == {"jwks_requests": 1, "discovery_requests": 1, "token_requests": 1}


def test_the_same_email_keeps_its_sub_and_a_code_works_only_once(page, provider):
    first, _ = _login_and_exchange(page, provider, "bob@acme.example")
    params, verifier = _authorize(page, provider, "bob@acme.example")
    assert _exchange(provider, params["code"], verifier)[0] == 200

    status, body, _ = _exchange(provider, params["code"], verifier)

    assert (status, body["error"]) == (400, "invalid_grant")
    second, _ = _login_and_exchange(page, provider, "bob@acme.example")
    assert first["sub"] == second["sub"]


def test_wrong_aud_mode_signs_a_token_for_another_client(page, provider):
    provider.set_mode("wrong_aud")

    payload, _ = _login_and_exchange(page, provider, "carol@birds.example")

    assert payload["aud"] != CLIENT_ID
    assert payload["email"] == "carol@birds.example"


def test_expired_mode_signs_a_token_that_expired_an_hour_ago(page, provider):
    provider.set_mode("expired")

    payload, date = _login_and_exchange(page, provider, "dave@acme.example")

    # The provider's clock (its Date header), not ours: the suite may run on a pinned clock.
    now = email.utils.parsedate_to_datetime(date).timestamp()
    assert payload["exp"] <= now - 3500
    assert payload["iat"] < payload["exp"]
    assert payload["aud"] == CLIENT_ID


def test_a_client_may_authenticate_with_client_secret_post(page, provider):
    provider.add_client(
        POST_CLIENT_ID, CLIENT_SECRET, _Callbacks.url, auth_method="client_secret_post"
    )
    params, verifier = _authorize(page, provider, "erin@acme.example", client_id=POST_CLIENT_ID)

    status, body, _ = _exchange(provider, params["code"], verifier, post=True)

    assert status == 200, body
    assert _verified_payload(provider, body["id_token"])["aud"] == POST_CLIENT_ID


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="wrong_aud"):
        fixture.OidcProvider().set_mode("late")


def test_a_provider_that_cannot_start_fails_the_test_with_its_output():
    broken = fixture.OidcProvider(script="no-such-provider.mjs")

    with pytest.raises(
        pytest.fail.Exception, match="did not print `ready`(.|\\n)*no-such-provider"
    ):
        broken.start()


def test_a_missing_node_fails_the_test_rather_than_skipping_it(monkeypatch):
    monkeypatch.setattr(fixture.shutil, "which", lambda program: None)

    with pytest.raises(pytest.fail.Exception, match="`node` is not on PATH"):
        fixture.OidcProvider().start()


def test_rotate_keys_signs_with_a_new_kid_and_drops_the_old_key_from_the_jwks(page, provider):
    before = _get_json(f"{provider.issuer}/jwks")["keys"]

    rotated = provider.rotate_keys()

    [key] = _get_json(f"{provider.issuer}/jwks")["keys"]
    assert [k["kid"] for k in before] == [rotated["dropped"]]
    assert key["kid"] == rotated["kid"] != rotated["dropped"]
    params, verifier = _authorize(page, provider, "fay@acme.example")
    id_token = _exchange(provider, params["code"], verifier)[1]["id_token"]
    assert json.loads(_b64url_decode(id_token.split(".")[0]))["kid"] == rotated["kid"]
    assert _verified_payload(provider, id_token)["email"] == "fay@acme.example"


def test_old_key_mode_signs_with_the_key_the_rotation_dropped(page, provider):
    rotated = provider.rotate_keys()
    provider.set_mode("old_key")

    params, verifier = _authorize(page, provider, "gus@acme.example")
    id_token = _exchange(provider, params["code"], verifier)[1]["id_token"]

    assert json.loads(_b64url_decode(id_token.split(".")[0]))["kid"] == rotated["dropped"]
    with pytest.raises(ValueError):  # no key of that kid in the JWKS
        _verified_payload(provider, id_token)


def test_an_amr_that_is_not_a_list_of_strings_is_refused(provider):
    with pytest.raises(AssertionError, match="amr must be a list of strings"):
        provider.set_amr("mfa")
