"""The admin API's token requests: listed, approved (all or part) and denied with the key
as the decider, through the panel's services."""

import pytest

from audit.models import AuditLog
from tests.admin_api.conftest import bearer
from tests.factories import max_of
from tokens.admin_api import cursors
from tokens.models import EmailDelivery, TokenRequest

pytestmark = pytest.mark.django_db


@pytest.fixture
def bobs_request(bob, org_a):
    return TokenRequest.objects.create(
        organization=org_a,
        user=bob,
        kind="inference",
        amount=100_000,
        reason="A big report",
        current_max=200_000,
    )


def test_it_lists_pending_requests_with_cursor_pages(api, reader, bobs_request, bob, org_a):
    second = TokenRequest.objects.create(
        organization=org_a, user=bob, kind="embedding", amount=5, reason="x", current_max=0
    )
    first_page = api.get("/token-requests", reader, limit=1).json()
    assert [r["id"] for r in first_page["items"]] == [bobs_request.pk]
    assert first_page["items"][0]["email"] == "bob@example.com"
    rest = api.get("/token-requests", reader, cursor=first_page["next_cursor"]).json()
    assert [r["id"] for r in rest["items"]] == [second.pk] and rest["next_cursor"] is None
    assert api.get("/token-requests", reader, status="denied").json()["items"] == []


def test_a_request_cursor_pages_by_id_alone(api, reader, bobs_request, bob, org_a):
    # The id is the whole key of this sort: the cursor's value is not read, as before
    # keyset_page() served every list.
    second = TokenRequest.objects.create(
        organization=org_a, user=bob, kind="embedding", amount=5, reason="x", current_max=0
    )
    odd_value = cursors.encode("id", "not-an-id", bobs_request.pk)
    page = api.get("/token-requests", reader, cursor=odd_value).json()
    assert [r["id"] for r in page["items"]] == [second.pk] and page["next_cursor"] is None
    other_sort = cursors.encode("-created_at", bobs_request.pk, bobs_request.pk)
    response = api.get("/token-requests", reader, cursor=other_sort)
    assert response.status_code == 400 and response.json()["error"] == "invalid_cursor"


def test_approving_raises_the_limit_and_names_the_key(api, writer, bobs_request, bob):
    response = api.post(f"/token-requests/{bobs_request.pk}/approve", writer, {"note": "ok"})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "approved" and response.json()["granted"] == 100_000
    assert response.json()["decided_by"].startswith("API key ask_adm.")
    assert max_of(bob) == 300_000
    log = AuditLog.objects.get(action="token_request.approved")
    assert log.actor is None and log.actor_label.startswith("API key")
    again = api.post(f"/token-requests/{bobs_request.pk}/approve", writer, {})
    assert again.status_code == 422 and "already approved" in again.json()["detail"]


def test_approving_part_of_a_request(api, writer, bobs_request, bob):
    response = api.post(f"/token-requests/{bobs_request.pk}/approve", writer, {"amount": 1000})
    assert response.status_code == 200 and max_of(bob) == 201_000


def test_denying_needs_a_note_and_emails_the_member(api, writer, bobs_request, bob):
    assert api.post(f"/token-requests/{bobs_request.pk}/deny", writer, {}).status_code == 400
    response = api.post(f"/token-requests/{bobs_request.pk}/deny", writer, {"note": "Not now"})
    assert response.status_code == 200 and response.json()["status"] == "denied"
    bobs_request.refresh_from_db()
    assert bobs_request.decided_by is None and bobs_request.decided_by_label.startswith("API")
    assert max_of(bob) == 200_000
    email = EmailDelivery.objects.get(kind="request_denied")
    assert "denied by API key ask_adm." in email.body_text


def test_another_organizations_request_is_not_found(api, key_for, carol, org_b, bobs_request):
    theirs = bearer(key_for("admin:read", "admin:write", org=org_b, actor=carol))
    response = api.post(f"/token-requests/{bobs_request.pk}/approve", theirs, {})
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert api.get("/token-requests", theirs).json()["items"] == []
    bobs_request.refresh_from_db()
    assert bobs_request.status == "pending"
