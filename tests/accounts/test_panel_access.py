"""Who may open the Admin Panel, and what the member's home page shows."""

import pytest
from django.urls import reverse

from accounts.models import Membership
from tests.factories import MonthlyUsageFactory

pytestmark = pytest.mark.django_db

PANEL_PAGES = {
    "tokens:users": "User Management",
    "tokens:distribution": "Token Distribution",
    "tokens:requests": "Token Requests",
    "analytics:statistics": "Token Statistics",
    "analytics:activity": "Activity Logs",
}
panel_page = pytest.mark.parametrize("name", list(PANEL_PAGES))


@panel_page
def test_an_anonymous_visitor_is_sent_to_login(client, name):
    url = reverse(name)
    response = client.get(url)
    assert response.status_code == 302
    assert response.url == f"{reverse('accounts:login')}?next={url}"


@panel_page
def test_a_member_is_refused(client, bob, name):
    client.force_login(bob)
    response = client.get(reverse(name))
    assert response.status_code == 403
    assert "Only organization admins can open the Admin Panel" in response.content.decode()


@panel_page
def test_someone_outside_any_organization_is_refused(client, sam, name):
    client.force_login(sam)
    assert client.get(reverse(name)).status_code == 403


@panel_page
def test_an_admin_of_an_active_organization_gets_the_page(alice_client, name):
    response = alice_client.get(reverse(name))
    assert response.status_code == 200
    assert f"<h1>{PANEL_PAGES[name]}</h1>" in response.content.decode()


@panel_page
def test_an_admin_of_a_pending_organization_is_told_it_awaits_activation(
    client, pending_admin, name
):
    client.force_login(pending_admin)
    response = client.get(reverse(name))
    assert response.status_code == 403
    assert "waiting for activation" in response.content.decode()


@panel_page
def test_an_admin_of_a_suspended_organization_is_told_it_is_suspended(
    client, suspended_admin, name
):
    client.force_login(suspended_admin)
    response = client.get(reverse(name))
    assert response.status_code == 403
    assert "This enterprise account is suspended" in response.content.decode()


def test_the_panel_root_leads_to_user_management(alice_client):
    response = alice_client.get(reverse("tokens:panel"))
    assert response.status_code in (301, 302)
    assert response.url == reverse("tokens:users")


def test_the_home_page_shows_the_members_own_max_and_usage(client, bob, alice, org_a):
    Membership.objects.filter(user=bob).update(
        max_inference_tokens=345_000, max_embedding_tokens=250_000
    )
    MonthlyUsageFactory(user=bob, organization=org_a, kind="inference", used=12_345)
    MonthlyUsageFactory(user=bob, organization=org_a, kind="embedding", used=6_789)
    MonthlyUsageFactory(user=alice, organization=org_a, kind="inference", used=99_999)
    client.force_login(bob)
    response = client.get(reverse("member:home"))
    assert response.status_code == 200
    content = response.content.decode()
    assert "12,345 <span>of 345,000 used this month" in content
    assert "6,789 <span>of 250,000 used this month" in content
    assert "332,655" in content  # remaining inference
    assert "99,999" not in content


def test_the_home_page_asks_anonymous_visitors_to_log_in(client):
    response = client.get(reverse("member:home"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login"))


def test_the_account_menu_offers_the_admin_panel_to_an_admin(alice_client):
    content = alice_client.get(reverse("member:home")).content.decode()
    assert f'<a href="{reverse("tokens:users")}">Admin Panel</a>' in content


def test_the_account_menu_hides_the_admin_panel_from_a_member(client, bob):
    client.force_login(bob)
    content = client.get(reverse("member:home")).content.decode()
    assert "Admin Panel" not in content
    assert "Log out" in content
