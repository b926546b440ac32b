"""The access sweep for the admin API's keys: every route of `/api/v1/admin/`, GET and POST,
with every kind of key that must not get org A's data or change anything:

- org B's key with every admin scope (the outsider): 404 for org A's objects, org B's own
  (empty) lists otherwise, never org A's data;
- org A's gateway key (`usage` only): 403 `scope_missing` everywhere;
- org A's `admin:read` key: 403 on every write;
- a revoked org A key with every scope, and an unknown key: 401.

The database must not change. A new admin API route joins this sweep by itself (and fails
it if its expectations are unknown).
"""

import pytest
from django.test import Client
from django.urls import get_resolver

from tests.security.test_access_sweep import SECRET, cast, fill, snapshot, walk  # noqa: F401
from tokens.services import api_keys as api_key_services

pytestmark = [pytest.mark.mfa, pytest.mark.django_db]

ALL = ["usage", "admin:read", "admin:write"]
DOCS = {"admin_api:openapi-json", "admin_api:openapi-view", "admin_api:api-root"}
WRITES = {"admin_api:set_limits", "admin_api:undo_limits", "admin_api:approve", "admin_api:deny"}
ORG_A_PARAMS = {"batch_id", "request_id"}


def _secret(actor, org, name, scopes):
    return api_key_services.api_key_create(actor=actor, org=org, name=name, scopes=scopes)[1]


@pytest.fixture
def keys(cast, alice, carol, org_a, org_b, settings):  # noqa: F811 - the sweep's cast
    settings.ADMIN_API_RATE = "100000/m"
    revoked = _secret(alice, org_a, "Revoked", ALL)
    key = org_a.api_keys.get(name="Revoked")
    api_key_services.api_key_revoke(actor=alice, org=org_a, key_id=key.pk)
    return {
        "outsider": _secret(carol, org_b, "Theirs", ALL),
        "gateway": _secret(alice, org_a, "Gateway", ["usage"]),
        "reader": _secret(alice, org_a, "Reader", ["admin:read"]),
        "revoked": revoked,
        "unknown": "ask_adm.nothing-like-a-key",
    }


def expected(name: str, who: str, method: str, used: set[str]) -> set[int]:
    write = name in WRITES
    if (method == "POST") != write:
        return {405}
    if who in {"revoked", "unknown"}:
        return {401}
    if who == "gateway":
        return {403}
    if who == "reader":
        return {403} if write else {200}
    if who == "outsider":
        # 400: a body checked before the object is looked up (a deny without a note).
        return {400, 404} if used & ORG_A_PARAMS else {200, 400}
    raise AssertionError(f"no expectation for {name} as {who}")


def test_every_admin_api_route_refuses_keys_without_its_scope_or_organization(cast, keys):  # noqa: F811
    _, values, _ = cast
    client = Client()
    before = snapshot()
    problems, checked = [], 0
    routes = [(r, n) for r, n in walk(get_resolver().url_patterns) if n.startswith("admin_api:")]
    assert len(routes) > len(DOCS)
    for route, name in routes:
        if name in DOCS:
            continue
        path, used = fill(route, values)
        for who, secret in keys.items():
            for method in ("GET", "POST"):
                auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
                if method == "GET":
                    response = client.get(path, **auth)
                else:
                    response = client.post(path, {}, content_type="application/json", **auth)
                streaming = getattr(response, "streaming", False)
                body = b"".join(response.streaming_content) if streaming else response.content
                allowed = expected(name, who, method, used)
                if response.status_code not in allowed:
                    problems.append(f"{method} {path} as {who}: {response.status_code} {allowed}")
                if SECRET.encode() in body and who != "reader":
                    problems.append(f"{method} {path} as {who}: shows org A's data")
                checked += 1
    assert not problems, "\n".join(problems)
    changed = [t for t, digest in snapshot().items() if before.get(t) != digest]
    assert changed == [] or set(changed) <= {"tokens_apikey"}, changed  # last_used_at
    assert checked
