"""The usage API refuses a key created without the `usage` scope (403 `scope_missing`),
through both doors, on both databases, and counts nothing; the PostgreSQL statement never
reads scopes: the key's secret carries its mark (`ADMIN_ONLY_PREFIX`)."""

import json
import uuid

import pytest
from django.urls import reverse

from tests.factories import used
from tokens.models import ApiKey, UsageEvent
from tokens.services import api_keys as api_key_services
from tokens.usage_api.keys import ADMIN_ONLY_PREFIX, api_key_authenticate

pytestmark = pytest.mark.django_db(transaction=True)

REPORT = {"user": "bob@example.com", "kind": "inference", "tokens": 1000, "model": "gpt-4o"}


@pytest.fixture
def admin_key(alice, org_a):
    return api_key_services.api_key_create(
        actor=alice, org=org_a, name="Script", scopes=["admin:read", "admin:write"]
    )[1]


def test_a_key_without_usage_carries_the_mark_and_a_gateway_key_never_does(admin_key, alice):
    assert admin_key.startswith(ADMIN_ONLY_PREFIX)
    key = ApiKey.objects.get(name="Script")
    assert key.scopes == ["admin:read", "admin:write"] and key.prefix == admin_key[:16]
    both = api_key_services.api_key_create(
        actor=alice, org=alice.membership.organization, name="Both", scopes=["usage", "admin:read"]
    )[1]
    assert not both.startswith(ADMIN_ONLY_PREFIX)
    assert api_key_authenticate(both).has_scope("admin:read")


def test_the_django_view_refuses_it_and_counts_nothing(client, admin_key, bob):
    response = client.post(
        reverse("api:usage"),
        json.dumps(REPORT),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {admin_key}",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )
    assert response.status_code == 403, response.content
    assert response.json()["error"] == "scope_missing"
    assert used(bob) == 0 and not UsageEvent.objects.exists()
    balance = client.get(
        reverse("api:balance", args=["bob@example.com"]), HTTP_AUTHORIZATION=f"Bearer {admin_key}"
    )
    assert balance.status_code == 403 and balance.json()["error"] == "scope_missing"


def test_the_asgi_door_refuses_it_too(asgi, admin_key, bob):
    """On PostgreSQL the fast path hands such a key to Django, which refuses it."""
    answer = asgi.request(
        "POST",
        "/api/v1/usage",
        json.dumps(REPORT),
        authorization=f"Bearer {admin_key}",
        idempotency_key=uuid.uuid4().hex,
    )
    assert answer.status == 403 and answer.json()["error"] == "scope_missing"
    assert used(bob) == 0 and not UsageEvent.objects.exists()


def test_a_forged_mark_is_an_unknown_key(client, bob, alice, org_a):
    """Adding the mark to a gateway key changes its hash: 401, not a scope question."""
    gateway = api_key_services.api_key_create(actor=alice, org=org_a, name="Gateway")[1]
    forged = ADMIN_ONLY_PREFIX + gateway.removeprefix("ask_")
    response = client.post(
        reverse("api:usage"),
        json.dumps(REPORT),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {forged}",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )
    assert response.status_code == 401 and response.json()["error"] == "invalid_key"


def test_keys_made_before_scopes_are_gateway_keys(alice, org_a):
    """The migration's default: every existing key has `usage` only."""
    key = ApiKey.objects.create(organization=org_a, name="old", prefix="ask_x", key_hash="h")
    key.refresh_from_db()
    assert key.scopes == ["usage"]
