"""Who calls the admin API: an organization's API key with the operation's scope, at most
`ADMIN_API_RATE` calls per key.

The key is authenticated as the usage API authenticates it (`api_key_authenticate`, one
query); the organization is always the key's. The rate limit is django-ninja's throttle
(a sliding window kept in Django's cache, keyed by the key's id): with the default
local-memory cache each worker process counts on its own, so N workers allow up to N times
the rate; a shared cache (CACHES) makes it one count.
"""

from django.conf import settings
from django.http import HttpRequest
from ninja.security import HttpBearer
from ninja.throttling import SimpleRateThrottle

from asksage_admin.lib.http import client_ip
from tokens.models import ApiKey, ApiKeyScope
from tokens.usage_api.keys import api_key_authenticate

READ = ApiKeyScope.ADMIN_READ.value
WRITE = ApiKeyScope.ADMIN_WRITE.value


class ScopedKey(HttpBearer):
    """`Authorization: Bearer <key>` for a key holding `scope`; else 401 or 403 (the usage
    API's errors)."""

    def __init__(self, scope: str):
        self.scope = scope
        super().__init__()

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey:
        return api_key_authenticate(token.strip(), scope=self.scope)


class KeyRateThrottle(SimpleRateThrottle):
    """Calls per authenticated key; the rate is read at each call (settings may change)."""

    scope = "admin_api"

    def get_rate(self) -> str:
        return settings.ADMIN_API_RATE

    def get_cache_key(self, request: HttpRequest) -> str | None:
        key = getattr(request, "auth", None)
        if not isinstance(key, ApiKey):
            return None
        return self.cache_format % {"scope": self.scope, "ident": key.pk}

    def allow_request(self, request: HttpRequest) -> bool:
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request)


def key_of(request: HttpRequest) -> ApiKey:
    return request.auth


def actor_label(key: ApiKey) -> str:
    """How the audit trail and a decided request name the key (at most 50 characters)."""
    return f"API key {key.prefix}… ({key.name})"[:50]


def ip_of(request: HttpRequest) -> str | None:
    return client_ip(request)
