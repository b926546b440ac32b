"""User Management sorted by Total usage reads its page among the first members by lifetime
total (a top-N of the membership table alone): whatever the page asked for, it shows exactly
the rows the plain sort shows."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Membership
from tests.factories import MembershipFactory

URL = reverse("tokens:users")
MEMBERS = 120  # with Alice: 121 rows, three pages of 50


@pytest.fixture
def many_members(org_a, alice):
    """120 members whose totals repeat (ties are broken by the user, as the table does)."""
    members = MembershipFactory.create_batch(MEMBERS, organization=org_a)
    for n, membership in enumerate(members):
        membership.total_used = (n * 7) % 40 * 1_000
    Membership.objects.bulk_update(members, ["total_used"])
    return members


def emails_shown(response) -> list[str]:
    html = response.content.decode()
    table = html[html.index('id="users-grid"') : html.index("</table>")]
    return list(dict.fromkeys(re.findall(r"[\w.+-]+@example\.\w+", table)))


def expected(org, *, descending: bool) -> list[str]:
    rows = Membership.objects.filter(organization=org).select_related("user")
    ordered = sorted(rows, key=lambda m: (m.total_used, m.user_id), reverse=descending)
    return [m.user.email for m in ordered]


@pytest.mark.parametrize("sort", ["total_used", "-total_used"])
def test_every_page_sorted_by_total_usage_shows_the_plain_sorts_rows(
    alice_client, org_a, many_members, sort
):
    every = expected(org_a, descending=sort.startswith("-"))
    assert len(every) == MEMBERS + 1
    for page, first in ((1, 0), (2, 50), (3, 100)):
        shown = emails_shown(alice_client.get(URL, {"sort": sort, "page": page}))
        assert shown == every[first : first + 50], f"page {page}"


@pytest.mark.parametrize(
    ("page", "first"),
    [("999", 100), ("-1", 100), ("0", 100), ("abc", 0), ("99999999999999999999", 100)],
)
def test_a_page_number_out_of_range_sorted_by_total_usage_shows_what_django_tables2_resolves(
    alice_client, org_a, many_members, page, first
):
    """Past the end, below 1 or absurd: the last page; not a number: the first."""
    every = expected(org_a, descending=True)
    response = alice_client.get(URL, {"sort": "-total_used", "page": page})
    assert response.status_code == 200
    assert emails_shown(response) == every[first : first + 50]


def test_the_page_sorted_by_total_usage_limits_the_membership_sort_itself(
    alice_client, org_a, many_members
):
    """The LIMIT sits on a query of the membership table alone, inside the page's query."""
    with CaptureQueriesContext(connection) as queries:
        alice_client.get(URL, {"sort": "-total_used", "page": 2})
    page_query = next(
        q["sql"] for q in queries.captured_queries if "u_inf" in q["sql"] and "LIMIT" in q["sql"]
    )
    inner = page_query[page_query.index(" IN (SELECT") :]
    assert re.search(
        r'FROM "accounts_membership" (\w+) WHERE .*ORDER BY \1\."total_used" DESC.* LIMIT 100\)',
        inner,
    )


def test_a_filtered_table_sorted_by_total_usage_keeps_the_plain_sort(
    alice_client, org_a, many_members
):
    """A search narrows the rows first: the top-N of all members would miss some."""
    target = many_members[-1].user
    shown = emails_shown(alice_client.get(URL, {"sort": "-total_used", "q": target.email}))
    assert shown == [target.email]
