"""The organization page at /staff/ shows its members a page at a time (issue 16, item 7)."""

from pathlib import Path

import pytest
from django.conf import settings
from django.contrib import admin

from audit.models import AuditLog
from tests.accounts.staff_forms import add_inline_row, form_data, org_url
from tests.factories import MembershipFactory, PurchaseFactory, UserFactory

pytestmark = pytest.mark.django_db


def _members(org, count: int) -> list:
    return [
        MembershipFactory(organization=org, user__email=f"m{i:03}@example.com").user
        for i in range(count)
    ]


def _member_emails(response) -> list[str]:
    formset = next(
        f.formset
        for f in response.context["inline_admin_formsets"]
        if f.formset.prefix == "memberships"
    )
    return [form.instance.user.email for form in formset.initial_forms]


@pytest.fixture
def big_org(alice, bob):
    org = alice.membership.organization
    PurchaseFactory(organization=org, tokens_per_month=100_000_000)
    _members(org, 58)
    return org  # 60 members: alice (admin), bob, m000..m057


def test_the_organization_page_shows_one_page_of_members_admins_first(staff_client, big_org):
    response = staff_client.get(org_url(big_org))

    emails = _member_emails(response)
    assert len(emails) == 25
    assert emails[0] == "alice@example.com"
    body = response.content.decode()
    assert "Members 1–25 of 60" in body
    assert "?membership__organization__id__exact=" in body


def test_the_last_page_of_members_holds_the_rest(staff_client, big_org):
    emails = _member_emails(staff_client.get(org_url(big_org) + "?members_page=3"))

    assert len(emails) == 10
    assert emails[-1] == "m057@example.com"


def test_an_out_of_range_members_page_shows_the_last_page(staff_client, big_org):
    response = staff_client.get(org_url(big_org) + "?members_page=99")

    assert response.status_code == 200
    assert len(_member_emails(response)) == 10


def test_the_organization_page_query_count_does_not_grow_with_members(
    staff_client, alice, bob, django_assert_max_num_queries
):
    org = alice.membership.organization
    PurchaseFactory(organization=org, tokens_per_month=100_000_000)
    with django_assert_max_num_queries(40) as small:
        staff_client.get(org_url(org))
    _members(org, 120)
    with django_assert_max_num_queries(len(small.captured_queries)) as large:
        staff_client.get(org_url(org))
    assert len(large.captured_queries) <= len(small.captured_queries)


def test_a_role_change_on_a_later_page_of_members_is_saved(staff_client, big_org):
    url = org_url(big_org) + "?members_page=2"
    data = form_data(staff_client.get(url))
    index = next(
        int(k.split("-")[1])
        for k, v in data.items()
        if k.endswith("-email") and v == "m030@example.com"
    )
    data[f"memberships-{index}-role"] = "admin"

    assert staff_client.post(url, data).status_code == 302

    assert AuditLog.objects.get(action="membership.role").target_user.email == "m030@example.com"


def test_a_member_added_from_a_later_page_joins_with_the_rules_checked_on_all(
    staff_client, big_org
):
    nina = UserFactory(email="nina@example.com")
    url = org_url(big_org) + "?members_page=3"
    data = form_data(staff_client.get(url))
    add_inline_row(data, "memberships", email="nina@example.com", role="member")

    assert staff_client.post(url, data).status_code == 302

    nina.refresh_from_db()
    assert nina.membership.organization == big_org
    assert big_org.memberships.count() == 61


def test_demoting_the_only_admin_from_the_first_page_is_refused_though_others_are_unseen(
    staff_client, big_org, alice
):
    url = org_url(big_org)
    data = form_data(staff_client.get(url))
    index = next(
        int(k.split("-")[1]) for k, v in data.items() if k.endswith("-email") and v == alice.email
    )
    data[f"memberships-{index}-role"] = "member"

    response = staff_client.post(url, data)

    assert response.status_code == 200
    assert "needs at least 1 admin" in response.content.decode()
    alice.membership.refresh_from_db()
    assert alice.membership.role == "admin"


def test_the_tabular_inline_override_differs_from_djangos_only_in_its_named_headers():
    """The project's copy names the two empty column headers; on a Django upgrade this says
    to copy the new template again."""
    ours = (settings.BASE_DIR / "templates/admin/edit_inline/tabular.html").read_text()
    django_template = (
        Path(admin.__file__).parent / "templates/admin/edit_inline/tabular.html"
    ).read_text()
    changed = {
        line.strip() for line in ours.splitlines()[1:] if line not in django_template.splitlines()
    }

    assert len(ours.splitlines()) == len(django_template.splitlines()) + 1
    assert len(changed) == 2
    assert all("visually-hidden" in line for line in changed)


def test_each_member_row_input_is_named_for_assistive_technology(staff_client, big_org):
    html = staff_client.get(org_url(big_org)).content.decode()

    assert 'aria-label="Role of alice@example.com"' in html
    assert 'aria-label="Remove bob@example.com"' in html
    assert 'aria-label="Role of the new member"' in html


def test_plain_sales_staff_page_through_members_and_add_one_on_a_later_page(client, sales, big_org):
    client.force_login(sales)
    url = org_url(big_org) + "?members_page=2"
    response = client.get(url)
    assert len(_member_emails(response)) == 25
    assert "All 60 members in the users list" in response.content.decode()
    UserFactory(email="nina@example.com")
    data = add_inline_row(form_data(response), "memberships", email="nina@example.com")

    assert client.post(url, {**data, "memberships-25-role": "member"}).status_code == 302

    assert big_org.memberships.filter(user__email="nina@example.com").exists()
    assert AuditLog.objects.get(action="membership.added").actor == sales


def test_the_all_members_link_opens_the_users_list_filtered_to_the_organization(
    staff_client, big_org, carol
):
    html = staff_client.get(org_url(big_org)).content.decode()
    link = html.split("All 60 members in the users list")[0].rsplit('href="', 1)[1].split('"')[0]

    response = staff_client.get(link.replace("&amp;", "&"))

    assert response.status_code == 200
    assert response.context["cl"].result_count == 60
