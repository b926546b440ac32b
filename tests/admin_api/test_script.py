"""Issue 18's "done when": a script using only the documented API exports the users, raises
1,000 users' limits in one call within the pool, and approves a request."""

import csv
import io
import time

import pytest

from audit.models import AuditLog
from tests.factories import MembershipFactory, PurchaseFactory
from tokens.models import TokenRequest

pytestmark = pytest.mark.django_db


def test_a_script_exports_raises_a_thousand_limits_and_approves_a_request(api, writer, org_a, bob):
    PurchaseFactory(organization=org_a, kind="inference", tokens_per_month=300_000_000)
    MembershipFactory.create_batch(1000, organization=org_a)
    TokenRequest.objects.create(
        organization=org_a, user=bob, kind="inference", amount=5_000, reason="r", current_max=0
    )

    export = api.get("/exports/users", writer)
    lines = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert export.status_code == 200 and len(lines) == 1 + 1002  # header, alice, bob, 1,000

    users, cursor = [], None
    while True:
        page = api.get("/users", writer, limit=500, **({"cursor": cursor} if cursor else {}))
        users += page.json()["items"]
        if not (cursor := page.json()["next_cursor"]):
            break
    members = [u for u in users if u["role"] == "member" and u["email"] != "bob@example.com"]
    assert len(members) == 1000
    changes = [
        {"user": u["id"], "expected": u["limits"]["inference"], "new": 250_000} for u in members
    ]
    started = time.perf_counter()
    raised = api.post("/limits", writer, {"kind": "inference", "changes": changes})
    elapsed = time.perf_counter() - started
    print(f"1,000 limits in one call: {elapsed * 1000:.0f} ms")
    assert raised.status_code == 200, raised.content[:300]
    assert raised.json()["changed"] == 1000
    assert AuditLog.objects.filter(batch_id=raised.json()["batch_id"]).count() == 1000

    pending = api.get("/token-requests", writer, status="pending").json()["items"]
    approved = api.post(f"/token-requests/{pending[0]['id']}/approve", writer)
    assert approved.status_code == 200 and approved.json()["granted"] == 5_000
