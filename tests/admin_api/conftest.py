import pytest
from django.core.cache import cache

from tokens.services import api_keys as api_key_services

BASE = "/api/v1/admin"


@pytest.fixture(autouse=True)
def _fresh_rate_counts():
    """Each test starts with no calls counted (key ids repeat between tests)."""
    cache.clear()
    yield
    cache.clear()


def bearer(secret: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


@pytest.fixture
def key_for(alice, org_a):
    """A secret for org A with the given scopes, created by alice."""

    def make(*scopes: str, org=None, actor=None, name: str | None = None) -> str:
        return api_key_services.api_key_create(
            actor=actor or alice,
            org=org or org_a,
            name=name or "Script " + "+".join(scopes),
            scopes=list(scopes),
        )[1]

    return make


@pytest.fixture
def reader(key_for) -> dict:
    return bearer(key_for("admin:read"))


@pytest.fixture
def writer(key_for) -> dict:
    return bearer(key_for("admin:read", "admin:write"))


@pytest.fixture
def api(client):
    """GET and POST JSON on the admin API with the Django test client."""

    class Api:
        def get(self, path: str, auth: dict, **params):
            return client.get(BASE + path, params, **auth)

        def post(self, path: str, auth: dict, body: dict | None = None):
            return client.post(BASE + path, body or {}, content_type="application/json", **auth)

    return Api()
