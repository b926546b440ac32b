"""`oidc_provider`: a real OpenID Connect provider (npm's oidc-provider) on loopback, started
and stopped by the tests themselves, so the SSO tests meet a real provider, not a mock."""

import json
import re
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
READY = re.compile(r"^ready (http://127\.0\.0\.1:\d+)$")
START_TIMEOUT = 30  # seconds; a cold node start with oidc-provider takes about one
NPM_TIMEOUT = 300
MODES = ("normal", "wrong_aud", "expired", "old_key")


def _require(program: str) -> str:
    # Never a skip: CI fails on skipped tests, and SSO untested is SSO broken.
    found = shutil.which(program)
    if not found:
        pytest.fail(
            f"`{program}` is not on PATH: the OIDC tests run a real provider on Node.js "
            "(apt-get install nodejs npm, or see tests/oidc_provider/README.md).",
            pytrace=False,
        )
    return found


def install_if_needed() -> None:
    """`npm ci` when node_modules is missing or older than the lock file."""
    lock = HERE / "package-lock.json"
    installed = HERE / "node_modules" / ".package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    npm = _require("npm")
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=NPM_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"npm ci failed in {HERE}:\n{done.stdout}\n{done.stderr}", pytrace=False)


class OidcProvider:
    """The running provider: its issuer, and the control endpoints provider.mjs serves."""

    def __init__(self, script: str = "provider.mjs"):
        self.script = script
        self.issuer = ""
        self.process: subprocess.Popen | None = None
        self.output: list[str] = []
        self._ready = threading.Event()

    def start(self) -> None:
        node = _require("node")
        self.process = subprocess.Popen(
            [node, self.script, "0", "--exit-with-stdin"],
            cwd=HERE,
            stdin=subprocess.PIPE,  # closed when this process dies: the provider then exits
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read_output, daemon=True).start()
        if not self._ready.wait(START_TIMEOUT) or not self.issuer:
            self.stop()
            output = "".join(self.output) or "(no output)"
            pytest.fail(
                f"the OIDC provider did not print `ready` within {START_TIMEOUT}s:\n{output}",
                pytrace=False,
            )

    def _read_output(self) -> None:
        # Drains the pipe for the provider's whole life, so it never blocks on a full pipe.
        for line in self.process.stdout:
            self.output.append(line)
            match = READY.match(line.strip())
            if match and not self.issuer:
                self.issuer = match.group(1)
                self._ready.set()
        self._ready.set()  # the process ended: start() stops waiting and reports

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def _call(self, method: str, path: str, payload: dict | None = None) -> dict:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            f"{self.issuer}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{method} {path}: {error.code} {error.read()!r}") from error

    def add_client(
        self,
        client_id: str,
        client_secret: str,
        redirect_uri: str | list[str],
        *,
        auth_method: str = "client_secret_basic",
        post_logout_redirect_uri: str = "",
    ) -> dict:
        """A confidential client, authorization code, response type code; adding an existing
        client_id replaces it. `auth_method` may be "client_secret_post";
        `post_logout_redirect_uri`, where the end-session endpoint may send the browser."""
        uris = [redirect_uri] if isinstance(redirect_uri, str) else list(redirect_uri)
        payload = {
            "client_id": client_id,
            "client_secret": client_secret,
            "redirect_uris": uris,
            "token_endpoint_auth_method": auth_method,
            "post_logout_redirect_uris": [post_logout_redirect_uri]
            * bool(post_logout_redirect_uri),
        }
        return self._call("POST", "/__test__/clients", payload)

    def set_mode(self, mode: str) -> None:
        """normal | wrong_aud (id_token aud is another client) | expired (exp an hour ago) |
        old_key (signed by the key the last `rotate_keys` dropped, with its kid)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self._call("POST", "/__test__/mode", {"mode": mode})

    def set_amr(self, amr: list[str] | None) -> None:
        """Every id_token from now on carries this `amr` claim (RFC 8176, e.g. ["pwd", "mfa"]);
        None: none (the default, and after `reset()`)."""
        self._call("POST", "/__test__/amr", {"amr": amr})

    def rotate_keys(self) -> dict:
        """A new signing key with a new kid; the current one leaves the JWKS. Returns
        {"kid": new, "dropped": old}. `reset()` keeps the new key (the app's clients are
        built afresh for each test and fetch the JWKS again)."""
        return self._call("POST", "/__test__/rotate_keys")

    def stats(self) -> dict:
        """Hits since the last reset: jwks_requests, discovery_requests, token_requests."""
        return self._call("GET", "/__test__/stats")

    def reset(self) -> None:
        """Back to mode `normal`, no `amr`, every counter at zero (clients stay)."""
        self._call("POST", "/__test__/reset")

    def logout_in_browser(self, page, *, timeout: float = 10_000) -> None:
        """On the provider's logout page (where the app sent `page`): "Yes, sign me out", and
        wait until the provider has sent the browser back to the post_logout_redirect_uri."""
        page.wait_for_url(f"{self.issuer}/session/end**", timeout=timeout)
        page.get_by_role("button", name="Yes, sign me out").click()
        page.wait_for_url(lambda url: not url.startswith(self.issuer), timeout=timeout)

    def login_in_browser(self, page, email: str, *, timeout: float = 10_000) -> None:
        """On the provider's login form (where the app sent `page`): sign in as `email`, and
        wait until the provider has sent the browser back to the app's redirect_uri."""
        page.wait_for_url(f"{self.issuer}/interaction/**", timeout=timeout)
        page.get_by_role("textbox", name="Enter any login").fill(email)
        page.get_by_placeholder("and password").fill("any password")
        page.get_by_role("button", name="Sign-in").click()
        page.wait_for_url(lambda url: not url.startswith(self.issuer), timeout=timeout)


@pytest.fixture(scope="session")
def oidc_provider():
    """One provider per pytest session; each test calls `reset()` (and adds its clients)."""
    install_if_needed()
    provider = OidcProvider()
    provider.start()
    try:
        yield provider
    finally:
        provider.stop()
