"""The User Management table: columns, search, filters, sort, paging, tenant isolation."""

import pytest
from django.db import connection
from django.urls import reverse

from accounts.models import Membership, User
from asksage_admin.lib.months import current_month
from tests.factories import MembershipFactory, MonthlyUsageFactory, PurchaseFactory

URL = reverse("tokens:users")


def table_of(response) -> str:
    """The user table's markup alone (the sidebar also names the viewer)."""
    html = response.content.decode()
    return html[html.index('id="users-grid"') : html.index("</table>")]


def test_it_lists_the_organizations_users_with_their_limits(alice_client, alice, bob, bob_usage):
    response = alice_client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert "bob@example.com" in html and "alice@example.com" in html
    assert "180,000" in html  # Bob's inference used this month
    assert "Max Inference Tokens" in html and "Max Embedding Tokens" in html


def test_it_hides_other_organizations_users(alice_client, alice, carol, dave):
    html = alice_client.get(URL).content.decode()
    assert "carol@example.com" not in html
    assert "dave@example.com" not in html


def test_pool_summary_shows_purchased_allocated_available(alice_client, alice, bob):
    html = alice_client.get(URL).content.decode()
    # Org A: 4M inference purchased, alice and bob at 200K each.
    assert "4,000,000" in html and "400,000" in html and "3,600,000" in html


def test_search_finds_by_name_or_email(alice_client, alice, bob):
    html = table_of(alice_client.get(URL, {"q": "Bob Mem"}))
    assert "bob@example.com" in html and "alice@example.com" not in html
    html = table_of(alice_client.get(URL, {"q": "ALICE@"}))
    assert "alice@example.com" in html and "bob@example.com" not in html


@pytest.mark.parametrize(
    ("params", "shown", "hidden"),
    [
        ({"role": "admin"}, "alice@", "bob@"),
        ({"banned": "yes"}, "bob@", "alice@"),
        ({"paid": "no"}, "bob@", "alice@"),
        ({"near_limit": "on"}, "bob@", "alice@"),
    ],
)
def test_filters_narrow_the_table(alice_client, alice, bob, bob_usage, params, shown, hidden):
    bob.is_banned = True
    bob.is_paid = False
    bob.save()
    html = table_of(alice_client.get(URL, params))
    assert shown in html and hidden not in html


def test_an_unknown_filter_value_shows_an_error_and_no_rows(alice_client, alice, bob):
    response = alice_client.get(URL, {"role": "superuser"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "not understood" in html
    assert "bob@example.com" not in html


def test_sorting_by_max_inference_tokens_orders_rows(alice_client, alice, bob, org_a):
    m = bob.membership
    m.max_inference_tokens = 900_000
    m.save()
    html = table_of(alice_client.get(URL, {"sort": "-max_inference_tokens"}))
    assert html.index("bob@example.com") < html.index("alice@example.com")
    html = table_of(alice_client.get(URL, {"sort": "max_inference_tokens"}))
    assert html.index("alice@example.com") < html.index("bob@example.com")


@pytest.mark.parametrize(
    "sort",
    [
        "name",
        "role",
        "is_paid",
        "is_banned",
        "max_inference_tokens",
        "inf_used",
        "inf_prev",
        "max_embedding_tokens",
        "emb_used",
        "total_used",
        "last_login",
        "-total_used",
        "bogus",
    ],
)
def test_every_column_sorts_without_error(alice_client, alice, bob, bob_usage, sort):
    assert alice_client.get(URL, {"sort": sort}).status_code == 200


def test_htmx_requests_get_only_the_table(alice_client, alice, bob):
    response = alice_client.get(URL, {"q": "bob"}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert 'id="user-table"' in html
    assert "<html" not in html and 'id="pool-summary"' not in html


def test_pages_hold_fifty_rows(alice_client, alice, many_members, org_a):
    PurchaseFactory(organization=org_a, tokens_per_month=20_000_000)
    many_members(60)
    html = alice_client.get(URL).content.decode()
    assert html.count('name="users"') == 50
    assert "Page 1 of 2" in html
    html = alice_client.get(URL, {"page": 2}).content.decode()
    assert html.count('name="users"') == 11


def test_a_page_out_of_range_or_malformed_does_not_fail(alice_client, alice):
    beyond = alice_client.get(URL, {"page": "999"})
    assert beyond.status_code == 200 and "alice@example.com" in table_of(beyond)  # last page
    garbage = alice_client.get(URL, {"page": "abc"})
    assert garbage.status_code == 200 and "alice@example.com" in table_of(garbage)  # first page


@pytest.mark.parametrize("size", [10, 500])
@pytest.mark.parametrize(
    "params", [{}, {"sort": "-max_inference_tokens"}, {"sort": "-total_used"}, {"q": "user"}]
)
def test_page_query_count_is_constant(
    alice_client, alice, org_a, size, params, django_assert_max_num_queries
):
    PurchaseFactory(organization=org_a, tokens_per_month=200_000_000)
    for i, m in enumerate(MembershipFactory.create_batch(size, organization=org_a)):
        MonthlyUsageFactory(user=m.user, organization=org_a, used=i * 10)
    # 15: session, user, membership, count, rows, pending edits, pending summary, pools (2),
    # the sidebar's pending-requests badge, the open invitations, the header bell's unread
    # count, and the session save. (Sign-in and second factor are annotations on the rows'
    # query, not queries per row.)
    with django_assert_max_num_queries(15):
        response = alice_client.get(URL, params)
    assert response.status_code == 200


def test_sorting_by_total_usage_orders_rows_by_the_lifetime_total_in_this_organization(
    alice_client, alice, bob, org_a, org_b
):
    """Both kinds, every month, only this organization's; ties broken by the user."""
    last_month = current_month().replace(year=current_month().year - 1)
    MonthlyUsageFactory(user=alice, organization=org_a, used=500)
    MonthlyUsageFactory(user=bob, organization=org_a, used=300)
    MonthlyUsageFactory(user=bob, organization=org_a, kind="embedding", used=150)
    MonthlyUsageFactory(user=bob, organization=org_a, month=last_month, used=100)
    MonthlyUsageFactory(user=bob, organization=org_b, month=last_month, used=9_000)  # not here
    assert Membership.objects.get(user=bob).total_used == 550  # 300 + 150 + 100

    html = table_of(alice_client.get(URL, {"sort": "-total_used"}))
    assert html.index("bob@example.com") < html.index("alice@example.com")
    html = table_of(alice_client.get(URL, {"sort": "total_used"}))
    assert html.index("alice@example.com") < html.index("bob@example.com")


def test_anonymous_is_sent_to_login(client, alice):
    response = client.get(URL)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_member_is_refused(client, bob):
    client.force_login(bob)
    assert client.get(URL).status_code == 403


def test_carol_sees_only_her_own_organization(client, carol, alice, bob):
    client.force_login(carol)
    html = table_of(client.get(URL))
    assert "carol@example.com" in html and "alice@example.com" not in html


@pytest.fixture
def auditor(org_a):
    return MembershipFactory(
        organization=org_a, role="auditor", user__email="audrey@example.com", user__name="Audrey"
    ).user


def test_an_auditor_sees_the_table_without_edit_controls(client, auditor, alice, bob):
    client.force_login(auditor)
    response = client.get(URL)
    assert response.status_code == 200
    html = table_of(response)
    assert "bob@example.com" in html
    assert "cells/max_inference_tokens/edit" not in html  # no editors
    assert 'name="users"' not in html  # no bulk selection
    assert "data-select-page" not in html  # nor a "select all on this page" box
    assert "disabled" in html  # toggles shown, disabled


def test_an_auditor_cannot_write_anything(client, auditor, bob):
    client.force_login(auditor)
    posts = [
        reverse("tokens:cell", args=[bob.pk, "max_inference_tokens"]),
        reverse("tokens:user_flag", args=[bob.pk, "banned"]),
        reverse("tokens:batch_save", args=["max_inference_tokens"]),
        reverse("tokens:bulk"),
    ]
    for url in posts:
        assert client.post(url, {"value": "on"}).status_code == 403, url
    bob.refresh_from_db()
    assert not bob.is_banned
    assert bob.membership.max_inference_tokens == 200_000


def test_the_export_link_follows_the_filters_of_the_table_it_sits_in(alice_client, alice, bob):
    html = alice_client.get(URL, {"q": "bob"}, headers={"HX-Request": "true"}).content.decode()
    assert "/panel/exports/users.csv?q=bob" in html  # inside the swapped #user-table


def test_the_search_is_case_insensitive_and_indexed_on_postgresql(alice_client, alice, bob):
    """icontains is UPPER(column::text) LIKE …: on PostgreSQL the GIN trigram indexes
    (accounts 0006) are on that expression, so a search at 100,000 users reads the index, not
    every user. SQLite gets no such index (the migration does nothing there) and finds the
    same users by a scan."""
    for query in ("bOB mEMBER", "BOB@EXAMPLE", "member"):
        html = table_of(alice_client.get(URL, {"q": query}))
        assert "bob@example.com" in html and "alice@example.com" not in html, query
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, User._meta.db_table)
    trigram = {name for name in constraints if name.endswith("_trgm_idx")}
    if connection.vendor != "postgresql":
        assert trigram == set()
        return
    assert trigram == {"user_name_trgm_idx", "user_email_trgm_idx"}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexdef LIKE %s",
            [User._meta.db_table, "%gin_trgm_ops%"],
        )
        found = dict(cursor.fetchall())
    assert set(found) == {"user_name_trgm_idx", "user_email_trgm_idx"}
    assert all("upper(" in definition for definition in found.values())


def test_the_count_is_the_organizations_members_unfiltered_and_the_matches_filtered(
    alice_client, alice, bob, carol, many_members, org_a
):
    PurchaseFactory(organization=org_a, tokens_per_month=20_000_000)
    many_members(3)  # 5 members in org A; carol is org B's
    assert alice_client.get(URL).context["total"] == 5
    assert alice_client.get(URL, {"q": ""}).context["total"] == 5
    assert alice_client.get(URL, {"q": "bob"}).context["total"] == 1
    assert alice_client.get(URL, {"role": "admin"}).context["total"] == 1
    assert alice_client.get(URL, {"role": "superuser"}).context["total"] == 0
