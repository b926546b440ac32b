"""The admin API's users and limits: listing with filters, sort and cursors; limits set for
many users in one call through the Save Changes rules; undo by batch id."""

import pytest

from audit.models import AuditLog
from tests.admin_api.conftest import bearer
from tests.factories import MembershipFactory, MonthlyUsageFactory, PurchaseFactory, max_of
from tokens.admin_api import cursors

pytestmark = pytest.mark.django_db


def test_it_lists_the_organizations_users_with_limits_and_usage(api, reader, alice, bob, carol):
    MonthlyUsageFactory(user=bob, organization=bob.membership.organization, used=1234)
    response = api.get("/users", reader)
    assert response.status_code == 200, response.content
    items = response.json()["items"]
    assert [u["email"] for u in items] == ["alice@example.com", "bob@example.com"]
    bob_row = items[1]
    assert bob_row["limits"] == {"inference": 200_000, "embedding": 0}
    assert bob_row["used"] == {"inference": 1234, "embedding": 0}
    assert bob_row["role"] == "member" and response.json()["next_cursor"] is None


def test_it_filters_and_sorts_like_the_user_table(api, reader, alice, bob):
    assert [u["email"] for u in api.get("/users", reader, q="bob").json()["items"]] == [
        "bob@example.com"
    ]
    assert [u["email"] for u in api.get("/users", reader, role="admin").json()["items"]] == [
        "alice@example.com"
    ]
    listed = api.get("/users", reader, sort="-email").json()["items"]
    assert [u["email"] for u in listed] == ["bob@example.com", "alice@example.com"]


@pytest.mark.parametrize("sort", ["email", "-inference_max", "inference_used", "-name"])
def test_cursor_pages_cover_every_user_once(api, reader, org_a, alice, sort):
    for i, user in enumerate(MembershipFactory.create_batch(7, organization=org_a)):
        user.max_inference_tokens = 200_000 + (i % 3) * 1000  # ties: ids break them
        user.save()
    seen, cursor = [], None
    while True:
        params = {"sort": sort, "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = api.get("/users", reader, **params).json()
        seen += [u["id"] for u in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 8


def test_a_cursor_of_another_sort_is_refused_in_words(api, reader, alice, bob):
    cursor = api.get("/users", reader, limit=1).json()["next_cursor"]
    response = api.get("/users", reader, sort="-email", cursor=cursor)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_cursor"
    assert api.get("/users", reader, cursor="not-a-cursor").status_code == 400


@pytest.mark.parametrize(
    "sort, value",
    [
        ("inference_max", "abc"),
        ("inference_used", "abc"),
        ("inference_max", None),
        ("-embedding_used", True),
        ("email", 1.5),
        ("name", 7),
    ],
)
def test_a_forged_cursor_value_is_refused_in_words_not_a_500(api, reader, alice, sort, value):
    forged = cursors.encode(sort, value, alice.pk)
    response = api.get("/users", reader, sort=sort, cursor=forged)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_cursor"


def test_setting_limits_changes_every_cell_audits_each_and_undoes(api, writer, alice, bob, org_a):
    body = {
        "kind": "inference",
        "changes": [
            {"user": alice.pk, "expected": 200_000, "new": 300_000},
            {"user": bob.pk, "expected": 200_000, "new": 250_000},
        ],
    }
    response = api.post("/limits", writer, body)
    assert response.status_code == 200, response.content
    batch_id = response.json()["batch_id"]
    assert response.json()["changed"] == 2
    assert (max_of(alice), max_of(bob)) == (300_000, 250_000)
    rows = AuditLog.objects.filter(action="allocation.changed", batch_id=batch_id)
    assert rows.count() == 2
    assert all(r.actor is None and r.actor_label.startswith("API key ask_adm.") for r in rows)

    undone = api.post(f"/limits/batches/{batch_id}/undo", writer)
    assert undone.status_code == 200, undone.content
    assert (max_of(alice), max_of(bob)) == (200_000, 200_000)
    assert api.post(f"/limits/batches/{batch_id}/undo", writer).status_code == 422


def test_a_stale_expected_value_refuses_the_whole_call(api, writer, alice, bob):
    body = {
        "changes": [
            {"user": alice.pk, "expected": 200_000, "new": 300_000},
            {"user": bob.pk, "expected": 111_111, "new": 250_000},
        ]
    }
    response = api.post("/limits", writer, body)
    assert response.status_code == 412
    assert response.json()["error"] == "stale_value"
    assert set(response.json()["cells"]) == {str(bob.pk)}
    assert (max_of(alice), max_of(bob)) == (200_000, 200_000)
    assert not AuditLog.objects.filter(action="allocation.changed").exists()


def test_floor_and_pool_refuse_the_whole_call_in_words(api, writer, alice, bob):
    under = {"changes": [{"user": bob.pk, "expected": 200_000, "new": 5}]}
    response = api.post("/limits", writer, under)
    assert response.status_code == 422 and response.json()["error"] == "batch_rejected"
    assert "minimum" in response.json()["detail"]
    over = {"changes": [{"user": bob.pk, "expected": 200_000, "new": 9_000_000}]}
    response = api.post("/limits", writer, over)
    assert response.status_code == 422 and "pool" in response.json()["detail"]
    assert max_of(bob) == 200_000


def test_another_organizations_user_is_not_found_and_nothing_changes(api, writer, alice, carol):
    body = {
        "changes": [
            {"user": alice.pk, "expected": 200_000, "new": 300_000},
            {"user": carol.pk, "expected": 200_000, "new": 300_000},
        ]
    }
    response = api.post("/limits", writer, body)
    assert response.status_code == 422 and response.json()["error"] == "refused"
    assert (max_of(alice), max_of(carol)) == (200_000, 200_000)


def test_a_batch_of_another_organization_cannot_be_undone(api, writer, key_for, carol, org_b):
    theirs = bearer(key_for("admin:write", org=org_b, actor=carol))
    body = {"changes": [{"user": carol.pk, "expected": 200_000, "new": 300_000}]}
    batch_id = api.post("/limits", theirs, body).json()["batch_id"]
    assert api.post(f"/limits/batches/{batch_id}/undo", writer).status_code == 404
    assert max_of(carol) == 300_000


def test_a_thousand_users_limits_change_in_one_call_in_few_queries(
    api, writer, org_a, django_assert_max_num_queries
):
    PurchaseFactory(organization=org_a, kind="inference", tokens_per_month=400_000_000)
    users = MembershipFactory.create_batch(1000, organization=org_a)
    body = {"changes": [{"user": m.user_id, "expected": 200_000, "new": 250_000} for m in users]}
    with django_assert_max_num_queries(40):
        response = api.post("/limits", writer, body)
    assert response.status_code == 200, response.content[:300]
    assert response.json()["changed"] == 1000
    assert AuditLog.objects.filter(batch_id=response.json()["batch_id"]).count() == 1000


def test_a_batch_of_many_different_values_sets_each_one(api, writer, org_a):
    """Past a few distinct values the write is Django's bulk_update: every cell still lands."""
    users = [m.user for m in MembershipFactory.create_batch(12, organization=org_a)]
    changes = [
        {"user": u.pk, "expected": 200_000, "new": 200_000 + 1000 * i} for i, u in enumerate(users)
    ]
    response = api.post("/limits", writer, {"changes": changes})
    assert response.status_code == 200, response.content
    assert [max_of(u) for u in users] == [200_000 + 1000 * i for i in range(12)]
