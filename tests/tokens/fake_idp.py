"""`fake_idp`: an HTTP server on loopback that answers whatever a test tells it to, for the
IdP that misbehaves (a discovery document with wrong fields, a JWKS too large, a redirect, an
answer that trickles in). The real provider (tests/oidc_provider) is for IdPs that behave."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from accounts.sso_secrets import secret_store
from tests.factories import IdentityProviderFactory
from tokens.sso.client import clients_clear

DISCOVERY = "/.well-known/openid-configuration"


class FakeIdp:
    def __init__(self, server: ThreadingHTTPServer):
        self.server = server
        self.issuer = f"http://127.0.0.1:{server.server_address[1]}"
        self.hits: list[str] = []
        self.routes: dict[str, tuple] = {}
        self.answer_json(DISCOVERY, self.discovery())

    def discovery(self, **changes) -> dict:
        """A discovery document that is right, with `changes` (None removes a field)."""
        document = {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/auth",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "end_session_endpoint": f"{self.issuer}/session/end",
            "id_token_signing_alg_values_supported": ["RS256"],
        }
        document.update(changes)
        return {k: v for k, v in document.items() if v is not None}

    def answer(self, path: str, status: int = 200, body: bytes = b"", headers=None, trickle=0.0):
        """`trickle`: seconds between the body's bytes."""
        self.routes[path] = (status, body, dict(headers or {}), trickle)

    def answer_json(self, path: str, document, status: int = 200) -> None:
        self.answer(
            path, status, json.dumps(document).encode(), {"Content-Type": "application/json"}
        )

    def count(self, path: str) -> int:
        return self.hits.count(path)


def _handler(idp_ref: list):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _answer(self):
            idp = idp_ref[0]
            path = self.path.split("?")[0]
            idp.hits.append(path)
            if length := int(self.headers.get("Content-Length") or 0):
                self.rfile.read(length)
            status, body, headers, trickle = idp.routes.get(path, (404, b"", {}, 0.0))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if "Content-Length" not in headers:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                if not trickle:
                    self.wfile.write(body)
                    return
                for byte in body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(trickle)
            except OSError:  # the app hung up (as it should, past its limits)
                pass

        do_GET = do_POST = _answer

    return Handler


@pytest.fixture
def fake_idp():
    idp_ref: list = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(idp_ref))
    server.daemon_threads = True
    idp_ref.append(FakeIdp(server))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    clients_clear()
    try:
        yield idp_ref[0]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fake_provider(fake_idp, org_a):
    """Org A signs in acme.gov through the fake IdP."""
    return IdentityProviderFactory(
        organization=org_a,
        issuer=fake_idp.issuer,
        client_id="console",
        client_secret=secret_store("console-secret"),
        domains=["acme.gov"],
    )
