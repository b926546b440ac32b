"""What Django's middleware does around the usage view, for the fast path, which bypasses it:
refuse a host outside ALLOWED_HOSTS, redirect plain HTTP under SECURE_SSL_REDIRECT, decide
HTTPS behind a proxy (SECURE_PROXY_SSL_HEADER), and put the security headers on answers.

None of it is re-implemented: each decision is Django's own code (`HttpRequest.get_host`,
`is_secure`, `SecurityMiddleware`, `SessionMiddleware`, `XFrameOptionsMiddleware`,
`ContentSecurityPolicyMiddleware`), run on a request holding just the headers they read, for
the middleware that settings.MIDDLEWARE lists, in its order. A new Django setting or a
changed default reaches both doors at once; tests/tokens/test_usage_fastpath.py compares every
header of the two doors' answers.

Decisions are cached per distinct (scheme, path, read headers): a gateway sends the same
few; the response headers are computed once per scheme.
"""

from django.conf import settings
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.csp import ContentSecurityPolicyMiddleware
from django.middleware.security import SecurityMiddleware

from tokens.usage_api import protocol

# Middleware that answer instead of the view (SSL redirect, through get_host a bad host) or
# add headers to its answers. Any other middleware leaves the API's answers alone (the
# equivalence test says so).
_HEADER_MIDDLEWARE = (
    SecurityMiddleware,
    SessionMiddleware,
    XFrameOptionsMiddleware,
    ContentSecurityPolicyMiddleware,
)
_CACHED = 100  # decisions kept: hosts are chosen by clients, so the cache is bounded


def _unused(request):  # the middleware's get_response: only its hooks are called
    raise AssertionError("the gate never calls a view")


class _Request(HttpRequest):
    """An HttpRequest with only what Django's host and HTTPS checks read (as ASGIRequest
    fills them from the scope)."""

    def __init__(self, scheme: str, path: str, meta: dict[str, str]):
        super().__init__()
        self._scheme = scheme
        self.path = self.path_info = path
        self.META = meta

    def _get_scheme(self) -> str:
        return self._scheme


class Gate:
    """Django's answer to a request's host and scheme, and Django's headers on an answer.
    Settings are read when it is built: build a new one after a setting changes."""

    def __init__(self):
        paths = {f"{cls.__module__}.{cls.__name__}": cls for cls in _HEADER_MIDDLEWARE}
        self._middleware = [paths[p](_unused) for p in settings.MIDDLEWARE if p in paths]
        self._security = next(
            (m for m in self._middleware if isinstance(m, SecurityMiddleware)), None
        )
        # The request headers Django reads to decide: lowercase names, and their META keys.
        names = {"host": "HTTP_HOST", "x-forwarded-host": "HTTP_X_FORWARDED_HOST"}
        if settings.SECURE_PROXY_SSL_HEADER:
            meta_name = settings.SECURE_PROXY_SSL_HEADER[0]
            names[meta_name.removeprefix("HTTP_").replace("_", "-").lower()] = meta_name
        self._meta_names = names
        self.header_names = frozenset(name.encode() for name in names)
        self._decisions: dict[tuple, tuple[bool, bool]] = {}
        self._headers = {secure: self._answer_headers(secure) for secure in (False, True)}

    def decide(self, scope: dict, headers: dict[str, str]) -> tuple[bool, bool]:
        """(whether Django would let the request reach the view, whether it is HTTPS)."""
        key = (scope.get("scheme"), scope["path"], *(headers.get(n) for n in self._meta_names))
        decision = self._decisions.get(key)
        if decision is None:
            decision = self._decide(scope, headers)
            if len(self._decisions) >= _CACHED:
                self._decisions.clear()
            self._decisions[key] = decision
        return decision

    def _decide(self, scope: dict, headers: dict[str, str]) -> tuple[bool, bool]:
        server = scope.get("server") or ("unknown", "0")
        meta = {"SERVER_NAME": server[0], "SERVER_PORT": str(server[1])}
        meta.update((m, headers[n]) for n, m in self._meta_names.items() if n in headers)
        request = _Request(scope.get("scheme") or "http", scope["path"], meta)
        try:
            secure = request.is_secure()
            if self._security is not None and self._security.process_request(request):
                return False, secure  # Django redirects to HTTPS
            request.get_host()
        except Exception:  # DisallowedHost (Django answers 400), or whatever Django says
            return False, False
        return True, secure

    def response_headers(self, secure: bool) -> list[tuple[bytes, bytes]]:
        """The headers Django's middleware put on the view's answers, as ASGI pairs."""
        return self._headers[secure]

    def _answer_headers(self, secure: bool) -> list[tuple[bytes, bytes]]:
        request = _Request("https" if secure else "http", "/", {"SERVER_NAME": "gate"})
        response = HttpResponse(content_type=protocol.CONTENT_TYPE)
        del response["Content-Type"]  # the fast path sends its own, with the length
        for middleware in self._middleware:
            if isinstance(middleware, ContentSecurityPolicyMiddleware):
                middleware.process_request(request)  # the CSP nonce, as for the view
            elif isinstance(middleware, SessionMiddleware):
                # An API request's session: no cookie, nothing stored, but read, as every
                # request's is by the middleware that check request.user (the banned-user
                # logout): SessionMiddleware then adds `Vary: Cookie` to the view's answers.
                request.session = middleware.SessionStore(None)
                request.session.accessed = True
        for middleware in reversed(self._middleware):  # responses go back up the stack
            response = middleware.process_response(request, response)
        return [(name.lower().encode(), value.encode()) for name, value in response.items()]
