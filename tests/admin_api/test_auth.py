"""Who may call the admin API: a key of the organization with the operation's scope, at most
ADMIN_API_RATE calls a minute; every refusal in the usage API's shape."""

import json

import pytest
from django.core.cache import cache

from tests.admin_api.conftest import bearer
from tokens.services import api_keys as api_key_services

pytestmark = pytest.mark.django_db


def test_no_key_is_401_with_the_usual_error_shape(api):
    response = api.get("/users", {})
    assert response.status_code == 401
    assert response.json()["error"] == "missing_key" and response.json()["detail"]
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_an_unknown_or_revoked_key_is_401(api, key_for, alice, org_a):
    assert api.get("/users", bearer("ask_adm.nothing")).json()["error"] == "invalid_key"
    secret = key_for("admin:read", name="Soon revoked")
    key = org_a.api_keys.get(name="Soon revoked")
    api_key_services.api_key_revoke(actor=alice, org=org_a, key_id=key.pk)
    assert api.get("/users", bearer(secret)).json()["error"] == "key_revoked"


def test_a_gateway_key_cannot_read_and_a_reader_cannot_write(api, key_for, reader, alice):
    gateway = bearer(key_for("usage"))
    response = api.get("/users", gateway)
    assert response.status_code == 403 and response.json()["error"] == "scope_missing"
    body = {"changes": [{"user": alice.pk, "expected": 200_000, "new": 300_000}]}
    response = api.post("/limits", reader, body)
    assert response.status_code == 403 and "admin:write" in response.json()["detail"]


def test_a_suspended_organizations_keys_are_refused(api, reader, org_a):
    org_a.status = "suspended"
    org_a.save()
    assert api.get("/users", reader).json()["error"] == "organization_inactive"


def test_calls_past_the_rate_are_429_with_retry_after(api, reader, settings, alice):
    cache.clear()
    settings.ADMIN_API_RATE = "3/m"
    statuses = [api.get("/users", reader).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = api.get("/users", reader)
    assert response.json()["error"] == "rate_limited" and int(response["Retry-After"]) >= 1
    cache.clear()


def test_bad_input_is_400_in_words_never_500(api, reader, writer):
    assert api.get("/users", reader, limit="lots").json()["error"] == "invalid_request"
    assert api.get("/users", reader, q="a\x00b").status_code == 400
    assert api.post("/limits", writer, {"changes": []}).status_code == 400
    response = api.post("/limits", writer, {"changes": [{"user": 1, "expected": -1, "new": 2}]})
    assert response.status_code == 400 and "expected" in response.json()["detail"]


def test_the_openapi_document_and_docs_are_served_without_a_cdn(client):
    document = client.get("/api/v1/admin/openapi.json")
    assert document.status_code == 200
    # No key twice in one object (Swagger UI refuses such a document: "duplicated mapping key").
    repeated = []

    def no_repeats(pairs):
        keys = [k for k, _ in pairs]
        repeated.extend(k for k in set(keys) if keys.count(k) > 1)
        return dict(pairs)

    json.loads(document.content, object_pairs_hook=no_repeats)
    assert repeated == []
    assert "/api/v1/admin/limits" in document.json()["paths"]
    docs = client.get("/api/v1/admin/docs")
    assert docs.status_code == 200
    assert b"cdn." not in docs.content and b"/static/ninja/" in docs.content
    assert b'<html lang="en">' in docs.content and b"<main>" in docs.content
