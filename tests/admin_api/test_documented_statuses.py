"""Every status the OpenAPI document declares for an operation is one the API really
answers: each is reached here, and the test fails when the document gains one it cannot
reach (or an operation this table does not know)."""

import pytest
from django.core.cache import cache
from django.test import Client

from asksage_admin.admin_api import api as admin_api
from tests.admin_api.conftest import BASE, bearer
from tokens.models import AllocationBatch, TokenRequest

pytestmark = pytest.mark.django_db

NO_BATCH = "00000000-0000-4000-8000-000000000000"


def _documented() -> dict[str, tuple[str, str, set[int]]]:
    """operationId → (method, path, declared statuses)."""
    paths = admin_api.get_openapi_schema(path_prefix="")["paths"]
    return {
        op["operationId"]: (method.upper(), path, {int(code) for code in op["responses"]})
        for path, methods in paths.items()
        for method, op in methods.items()
    }


@pytest.fixture
def world(alice, bob, org_a, key_for):
    request = TokenRequest.objects.create(
        organization=org_a, user=bob, kind="inference", amount=10, reason="r", current_max=0
    )
    decided = TokenRequest.objects.create(
        organization=org_a,
        user=bob,
        kind="inference",
        amount=10,
        reason="r",
        current_max=0,
        status="denied",
    )
    batch = AllocationBatch.objects.create(
        organization=org_a,
        column="max_inference_tokens",
        changes=[{"user": bob.pk, "old": 200_000, "new": 300_000}],  # as setLimits makes it
    )
    return {
        "key": bearer(key_for("admin:read", "admin:write")),
        "gateway": bearer(key_for("usage")),
        "request": request.pk,
        "decided": decided.pk,
        "batch": str(batch.pk),
        "bob": bob.pk,
    }


def _call(client: Client, method: str, path: str, auth: dict, body=None, **query):
    if method == "GET":
        return client.get(BASE + path, query, **auth)
    suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    return client.post(BASE + path + suffix, body or {}, content_type="application/json", **auth)


def _specific(world) -> dict[tuple[str, int], tuple]:
    """(operation, status) → (path, body, query) for the statuses an operation has its own
    way to reach; 200 included."""
    bob, req, done, batch = world["bob"], world["request"], world["decided"], world["batch"]
    raise_bob = {"changes": [{"user": bob, "expected": 200_000, "new": 300_000}]}
    return {
        ("listUsers", 200): ("/users", None, {}),
        ("setLimits", 200): ("/limits", raise_bob, {}),
        ("setLimits", 412): ("/limits", {"changes": [{"user": bob, "expected": 1, "new": 2}]}, {}),
        ("setLimits", 422): (
            "/limits",
            {"changes": [{"user": bob, "expected": 300_000, "new": 1}]},
            {},
        ),
        ("undoLimits", 200): (f"/limits/batches/{batch}/undo", None, {}),
        ("undoLimits", 404): (f"/limits/batches/{NO_BATCH}/undo", None, {}),
        ("undoLimits", 422): (f"/limits/batches/{batch}/undo", None, {}),  # undone just before
        ("listTokenRequests", 200): ("/token-requests", None, {}),
        ("approveTokenRequest", 200): (f"/token-requests/{req}/approve", None, {}),
        ("approveTokenRequest", 404): ("/token-requests/999999/approve", None, {}),
        ("approveTokenRequest", 422): (f"/token-requests/{done}/approve", None, {}),
        ("denyTokenRequest", 200): (f"/token-requests/{req}/deny", {"note": "no"}, {}),
        ("denyTokenRequest", 404): ("/token-requests/999999/deny", {"note": "no"}, {}),
        ("denyTokenRequest", 422): (f"/token-requests/{done}/deny", {"note": "no"}, {}),
        ("listActivity", 200): ("/activity", None, {}),
        ("startExport", 200): ("/exports/users", None, {}),
    }


def _concrete(path: str, world) -> str:
    return (
        path.removeprefix(BASE)
        .replace("{batch_id}", world["batch"])
        .replace("{request_id}", str(world["request"]))
        .replace("{what}", "users")
    )


def test_every_documented_status_of_every_operation_is_reachable(world, settings, client):
    documented = _documented()
    specific = _specific(world)
    reached: dict[str, set[int]] = {op: set() for op in documented}
    # Own ways first, in the table's order (an undo after its batch's first undo: 422).
    for (op, status), (path, body, query) in specific.items():
        method = documented[op][0]
        auth = world["key"]
        if op == "denyTokenRequest" and status == 200:
            world["request"] = TokenRequest.objects.create(
                organization_id=TokenRequest.objects.get(pk=world["decided"]).organization_id,
                user_id=world["bob"],
                kind="inference",
                amount=10,
                reason="r",
                current_max=0,
            ).pk
            path = f"/token-requests/{world['request']}/deny"
        response = _call(client, method, path, auth, body, **query)
        reached[op].add(response.status_code)
        assert response.status_code == status, (op, status, response.content[:300])
    # The shared ones: no key, a key without the scope, an unknown parameter, the rate.
    for op, (method, path, _) in documented.items():
        path = _concrete(path, world)
        body = {"note": "x"}
        reached[op].add(_call(client, method, path, {}, body).status_code)
        reached[op].add(_call(client, method, path, world["gateway"], body).status_code)
        reached[op].add(_call(client, method, path, world["key"], body, bogus=1).status_code)
        cache.clear()
        settings.ADMIN_API_RATE = "1/m"
        _call(client, method, path, world["key"], body, bogus=1)
        reached[op].add(_call(client, method, path, world["key"], body, bogus=1).status_code)
        settings.ADMIN_API_RATE = "1000/m"
    for op, (_, _, statuses) in documented.items():
        assert statuses <= reached[op], f"{op}: {sorted(statuses - reached[op])} never reached"
        assert reached[op] <= statuses, f"{op}: answered {sorted(reached[op] - statuses)}"
